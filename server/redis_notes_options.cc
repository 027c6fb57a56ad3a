// The Redis notes store's inputs: --notes_store addresses, the key of a
// location's notes, and the options' checks.
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "redis_notes_store.h"

namespace routeguide {

std::string RedisAddress::ToString() const {
  if (!unix_path.empty()) return absl::StrCat("unix://", unix_path);
  const bool ipv6 = absl::StrContains(host, ':');
  return absl::StrCat("redis://", ipv6 ? "[" : "", host, ipv6 ? "]" : "", ":",
                      port, database != 0 ? absl::StrCat("/", database) : "");
}

absl::StatusOr<std::optional<RedisAddress>> ParseNotesStore(absl::string_view spec) {
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--notes_store=", spec, ": ", why,
        " (expected memory, redis://HOST:PORT[/DB] or unix:///path/to/redis.sock)"));
  };
  if (spec == "memory") return std::nullopt;
  RedisAddress address;
  absl::string_view rest = spec;
  if (absl::ConsumePrefix(&rest, "unix://")) {
    if (!absl::StartsWith(rest, "/")) return bad("the socket path must be absolute");
    address.unix_path = std::string(rest);
    return address;
  }
  if (!absl::ConsumePrefix(&rest, "redis://")) return bad("unknown store");
  if (absl::StrContains(rest, '@')) {
    return bad("put the password in --notes_store_password_file, not in the address");
  }
  absl::string_view host_port = rest;
  if (const size_t slash = rest.find('/'); slash != absl::string_view::npos) {
    host_port = rest.substr(0, slash);
    absl::string_view db = rest.substr(slash + 1);
    if (!absl::SimpleAtoi(db, &address.database) || address.database < 0) {
      return bad("the database must be a number >= 0");
    }
  }
  absl::string_view port_text;
  if (absl::ConsumePrefix(&host_port, "[")) {  // [IPv6]:port
    const size_t close = host_port.find(']');
    if (close == absl::string_view::npos) return bad("no ']' after an IPv6 address");
    address.host = std::string(host_port.substr(0, close));
    absl::string_view after = host_port.substr(close + 1);
    if (!after.empty() && !absl::ConsumePrefix(&after, ":")) return bad("junk after ']'");
    port_text = after;
  } else {
    const size_t colon = host_port.rfind(':');
    address.host = std::string(host_port.substr(0, colon));
    if (colon != absl::string_view::npos) port_text = host_port.substr(colon + 1);
  }
  if (address.host.empty()) return bad("no host");
  if (!port_text.empty() &&
      (!absl::SimpleAtoi(port_text, &address.port) || address.port < 1 ||
       address.port > 65535)) {
    return bad("the port must be 1..65535");
  }
  return address;
}

std::string NotesKey(const GeoPoint& point) {
  return absl::StrCat("routeguide:notes:", point.latitude, ":", point.longitude);
}

absl::Status ValidateRedisNotesStoreOptions(const RedisNotesStoreOptions& options) {
  if (options.timeout < absl::Milliseconds(1) || options.timeout > absl::Minutes(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--notes_store_timeout must be between 1ms and 1m (got ",
        absl::FormatDuration(options.timeout), ")"));
  }
  if (options.ttl < absl::Seconds(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--notes_ttl must be at least 1s (got ", absl::FormatDuration(options.ttl), ")"));
  }
  if (options.max_pending < 1) {
    return absl::InvalidArgumentError("--notes_store_max_pending must be at least 1");
  }
  if (options.max_notes_per_location < 1) {
    return absl::InvalidArgumentError("--max_notes_per_location must be at least 1");
  }
  return absl::OkStatus();
}

}  // namespace routeguide
