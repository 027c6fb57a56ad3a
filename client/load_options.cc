#include "load_options.h"

#include <arpa/inet.h>

#include <cmath>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "target_check.h"

namespace routeguide {

absl::StatusOr<std::array<double, kNumCallKinds>> ParseMix(
    absl::string_view text) {
  std::array<double, kNumCallKinds> mix = {0, 0, 0, 0};
  std::array<bool, kNumCallKinds> seen = {false, false, false, false};
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    part = absl::StripAsciiWhitespace(part);
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(part, absl::MaxSplits(':', 1));
    int kind = -1;
    for (int k = 0; k < kNumCallKinds; ++k) {
      if (kv.first == kCallKindNames[k]) kind = k;
    }
    if (kind < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--mix: unknown kind '", kv.first,
          "' (expected get, list, record or chat, as in get:70,list:10)"));
    }
    double weight = 0;
    if (!absl::SimpleAtod(kv.second, &weight) || !std::isfinite(weight) ||
        weight < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--mix: weight of ", kv.first, " must be a number >= 0, got '",
                       kv.second, "'"));
    }
    if (seen[kind]) {
      return absl::InvalidArgumentError(
          absl::StrCat("--mix: ", kv.first, " is given twice"));
    }
    seen[kind] = true;
    mix[kind] = weight;
  }
  if (mix[0] + mix[1] + mix[2] + mix[3] <= 0) {
    return absl::InvalidArgumentError("--mix: at least one weight must be > 0");
  }
  return mix;
}

absl::StatusOr<std::pair<std::string, std::string>> ParseMetadata(
    absl::string_view text) {
  std::pair<std::string, std::string> kv =
      absl::StrSplit(text, absl::MaxSplits(':', 1));
  const std::string key = absl::AsciiStrToLower(kv.first);
  if (key.empty() || text.find(':') == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metadata: expected key:value, got '", text, "'"));
  }
  for (char c : key) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-' ||
          c == '_' || c == '.')) {
      return absl::InvalidArgumentError(
          absl::StrCat("--metadata: '", kv.first, "' is not a valid header name"));
    }
  }
  if (absl::StartsWith(key, "grpc-")) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metadata: '", key, "' is reserved by gRPC"));
  }
  // gRPC aborts the process (SIGABRT) on a value it cannot send as an
  // HTTP/2 header, so refuse it here, where the user can be told which
  // entry is wrong. Values of "-bin" keys are base64-encoded by gRPC and
  // may hold any byte.
  if (!absl::EndsWith(key, "-bin")) {
    for (char c : kv.second) {
      const auto byte = static_cast<unsigned char>(c);
      if (byte < 0x20 || byte > 0x7E) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--metadata: the value of '", key, "' in '", absl::CHexEscape(text),
            "' holds byte 0x", absl::Hex(byte, absl::kZeroPad2),
            "; values must be printable ASCII (0x20-0x7E), or give the key a "
            "-bin suffix for binary values"));
      }
    }
  }
  return std::make_pair(key, kv.second);
}

absl::StatusOr<Arrival> ParseArrival(absl::string_view text) {
  if (text == "uniform") return Arrival::kUniform;
  if (text == "poisson") return Arrival::kPoisson;
  return absl::InvalidArgumentError(
      absl::StrCat("--arrival: expected uniform or poisson, got '", text, "'"));
}

const char* ArrivalName(Arrival arrival) {
  return arrival == Arrival::kPoisson ? "poisson" : "uniform";
}

absl::StatusOr<GeoRect> ParseRect(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ',');
  double degrees[4];
  bool parsed = parts.size() == 4;
  for (size_t i = 0; parsed && i < 4; ++i) {
    parsed = absl::SimpleAtod(absl::StripAsciiWhitespace(parts[i]), &degrees[i]) &&
             std::isfinite(degrees[i]);
  }
  if (!parsed) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--list_rect: expected LO_LAT,LO_LON,HI_LAT,HI_LON in degrees, got '",
        text, "'"));
  }
  GeoPoint corners[2];
  for (int i = 0; i < 2; ++i) {
    const double lat = degrees[2 * i], lon = degrees[2 * i + 1];
    if (std::fabs(lat) > 90 || std::fabs(lon) > 180) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--list_rect: corner (", lat, ", ", lon,
          ") is outside latitude +/-90, longitude +/-180"));
    }
    corners[i] = GeoPoint{static_cast<int32_t>(std::lround(lat * 1e7)),
                          static_cast<int32_t>(std::lround(lon * 1e7))};
  }
  return GeoRect::FromCorners(corners[0], corners[1]);
}

absl::StatusOr<absl::Time> ParseStartAt(absl::string_view text, absl::Time now) {
  absl::Time start_at;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &start_at, &error)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--start_at: expected an RFC 3339 time such as 2026-12-02T15:04:05Z or "
        "2026-12-02T16:04:05.250+01:00, got '",
        text, "' (", error, ")"));
  }
  if (start_at <= now) {
    return absl::InvalidArgumentError(
        absl::StrCat("--start_at=", text, " is in the past (now is ",
                     FormatRfc3339Utc(now), ")"));
  }
  // A typo in the date would otherwise leave a generator waiting silently
  // for days.
  if (start_at - now > kMaxStartAhead) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--start_at=", text, " is more than ", absl::FormatDuration(kMaxStartAhead),
        " ahead (now is ", FormatRfc3339Utc(now), ")"));
  }
  return start_at;
}

std::string FormatRfc3339Utc(absl::Time time) {
  return absl::FormatTime(absl::RFC3339_full, time, absl::UTCTimeZone());
}

absl::Status ValidateLoadOptions(const LoadOptions& o) {
  auto bad = [](absl::string_view message) {
    return absl::InvalidArgumentError(message);
  };
  if (o.threads < 1 || o.threads > 256) return bad("--threads must be 1 to 256");
  if (o.channels < 0 || o.channels > 1024) return bad("--channels must be 0 to 1024");
  if (o.rps < 0 || !std::isfinite(o.rps)) return bad("--rps must be >= 0");
  if (o.rps == 0 && (o.concurrency < 1 || o.concurrency > 100000)) {
    return bad("--concurrency must be 1 to 100000");
  }
  if (o.max_in_flight < 1) return bad("--max_in_flight must be >= 1");
  if (o.duration <= absl::ZeroDuration() && o.requests <= 0) {
    return bad("--duration must be positive (or give --requests)");
  }
  if (o.requests < 0) return bad("--requests must be >= 0");
  if (o.warmup < absl::ZeroDuration()) return bad("--warmup must be >= 0");
  if (!(o.hit_ratio >= 0 && o.hit_ratio <= 1)) return bad("--hit_ratio must be 0 to 1");
  if (!(o.rect_degrees > 0 && o.rect_degrees <= 360)) {
    return bad("--rect_degrees must be > 0 and <= 360");
  }
  if (o.route_points < 0 || o.route_points > 1000000) {
    return bad("--route_points must be 0 to 1000000");
  }
  if (o.chat_notes < 0 || o.chat_notes > 1000000) {
    return bad("--chat_notes must be 0 to 1000000");
  }
  if (o.chat_locations < 1) return bad("--chat_locations must be >= 1");
  if (o.deadline <= absl::ZeroDuration()) return bad("--deadline must be positive");
  if (o.connect_timeout <= absl::ZeroDuration()) {
    return bad("--connect_timeout must be positive");
  }
  if (o.learn_deadline <= absl::ZeroDuration()) {
    return bad("--learn_deadline must be positive");
  }
  if (o.max_features_learnt < 1) return bad("--max_features_learnt must be >= 1");
  if (!(o.max_error_rate >= 0 && o.max_error_rate <= 1)) {
    return bad("--max_error_rate must be 0 to 1");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ChannelTarget(absl::string_view target) {
  if (target.empty()) return absl::InvalidArgumentError("--target is empty");
  if (target.find(',') == absl::string_view::npos) return std::string(target);
  std::vector<std::string> v4, v6;
  for (absl::string_view address : absl::StrSplit(target, ',')) {
    address = absl::StripAsciiWhitespace(address);
    const size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos || colon + 1 == address.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--target: '", address, "' in a list must be IP:PORT"));
    }
    if (absl::Status port = CheckHostPort(address); !port.ok()) return port;
    absl::string_view host = address.substr(0, colon);
    absl::string_view port = address.substr(colon + 1);
    if (host == "localhost") host = "127.0.0.1";
    const bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
    const std::string bare(bracketed ? host.substr(1, host.size() - 2) : host);
    unsigned char buffer[sizeof(in6_addr)];
    if (inet_pton(AF_INET, bare.c_str(), buffer) == 1) {
      v4.push_back(absl::StrCat(bare, ":", port));
    } else if (inet_pton(AF_INET6, bare.c_str(), buffer) == 1) {
      v6.push_back(absl::StrCat("[", bare, "]:", port));
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "--target: '", host,
          "' is not an IP address; a list takes IP:PORT items (or give one "
          "gRPC target URI, such as dns:///name:port)"));
    }
  }
  if (!v4.empty() && !v6.empty()) {
    return absl::InvalidArgumentError(
        "--target: a list must be all IPv4 or all IPv6");
  }
  return v4.empty() ? absl::StrCat("ipv6:", absl::StrJoin(v6, ","))
                    : absl::StrCat("ipv4:", absl::StrJoin(v4, ","));
}

}  // namespace routeguide
