#include "target_check.h"

#include <algorithm>
#include <cstdio>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpcpp/client_context.h"
#include "route_guide.grpc.pb.h"

namespace routeguide {
namespace {

const char* StateName(grpc_connectivity_state state) {
  switch (state) {
    case GRPC_CHANNEL_IDLE:
      return "idle";
    case GRPC_CHANNEL_CONNECTING:
      return "still connecting";
    case GRPC_CHANNEL_READY:
      return "ready";
    case GRPC_CHANNEL_TRANSIENT_FAILURE:
      return "failing to connect";
    case GRPC_CHANNEL_SHUTDOWN:
      return "shut down";
  }
  return "in an unknown state";
}

}  // namespace

bool IsTargetUri(absl::string_view target) {
  if (absl::StrContains(target, "://")) return true;
  for (absl::string_view scheme : {"dns:", "ipv4:", "ipv6:", "unix:",
                                   "unix-abstract:", "vsock:", "xds:"}) {
    if (absl::StartsWithIgnoreCase(target, scheme)) return true;
  }
  return false;
}

absl::Status CheckHostPort(absl::string_view target, absl::string_view flag) {
  absl::string_view port;
  if (absl::StartsWith(target, "[")) {
    const size_t close = target.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": '", target, "' has no closing ']'"));
    }
    if (close + 1 == target.size() || target[close + 1] != ':') {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, ": '", target, "' has no port; give [IPV6]:PORT"));
    }
    port = target.substr(close + 2);
  } else {
    const size_t colon = target.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, ": '", target, "' has no port; give HOST:PORT"));
    }
    // "::1:50051" could mean port 50051 of ::1 or no port of ::1:50051.
    if (target.substr(0, colon).find(':') != absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, ": '", target,
          "' looks like an IPv6 address without brackets; give [IPV6]:PORT"));
    }
    port = target.substr(colon + 1);
  }
  int number = 0;
  if (port.empty() || !absl::c_all_of(port, absl::ascii_isdigit) ||
      !absl::SimpleAtoi(port, &number) || number < 1 || number > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": port '", port, "' of '", target, "' is not 1 to 65535"));
  }
  return absl::OkStatus();
}

absl::Status WaitForConnectedOrExplain(grpc::Channel& channel,
                                       absl::string_view target,
                                       absl::Time deadline,
                                       absl::Duration connect_timeout, bool tls) {
  if (channel.WaitForConnected(absl::ToChronoTime(deadline))) {
    return absl::OkStatus();
  }
  // A call that does not wait for a connection fails at once with the
  // channel's last connection error while it is failing to connect; one
  // that is still connecting (a handshake that never finishes) runs into
  // its deadline instead.
  const grpc_connectivity_state state = channel.GetState(false);
  grpc::ClientContext context;
  context.set_wait_for_ready(false);
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  Feature feature;
  const grpc::Status status = RouteGuide::NewStub(
      std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}))
      ->GetFeature(&context, Point(), &feature);
  std::string why = absl::StrCat("the channel is ", StateName(state));
  if (!status.ok()) {
    absl::StrAppend(
        &why, "; a first call failed with ",
        absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
        ": ", status.error_message());
    // gRPC only sees a connection closed or reset when one side speaks
    // TLS and the other does not.
    const std::string& message = status.error_message();
    if (absl::StrContains(message, "Socket closed") ||
        absl::StrContains(message, "Connection reset") ||
        absl::StrContains(message, "wrong version number")) {
      absl::StrAppend(&why, tls ? " (the client spoke TLS: is the server "
                                  "plaintext?)"
                                : " (the client spoke plaintext: does the "
                                  "server want TLS, --tls_ca?)");
    }
  }
  return absl::UnavailableError(absl::StrCat("cannot reach a server at ", target,
                                             " within --connect_timeout=",
                                             absl::FormatDuration(connect_timeout),
                                             ": ",
                                             why));
}

std::vector<std::string> SplitAddressList(absl::string_view channel_target) {
  for (absl::string_view scheme : {"ipv4:", "ipv6:"}) {
    if (!absl::StartsWith(channel_target, scheme)) continue;
    std::vector<std::string> targets;
    for (absl::string_view address :
         absl::StrSplit(channel_target.substr(scheme.size()), ',')) {
      targets.push_back(absl::StrCat(scheme, address));
    }
    return targets;
  }
  return {std::string(channel_target)};
}

absl::Status ProbeAddressList(
    absl::string_view channel_target, absl::string_view flag_value,
    const std::function<std::shared_ptr<grpc::Channel>(const std::string&)>&
        new_channel,
    absl::Duration timeout, bool tls) {
  const std::vector<std::string> addresses = SplitAddressList(channel_target);
  if (addresses.size() < 2) return absl::OkStatus();
  std::vector<std::shared_ptr<grpc::Channel>> probes;
  for (const std::string& address : addresses) {
    probes.push_back(new_channel(address));
    probes.back()->GetState(/*try_to_connect=*/true);  // All at once.
  }
  const absl::Time deadline = absl::Now() + timeout;
  size_t unreachable = 0;
  for (size_t i = 0; i < probes.size(); ++i) {
    const absl::Status s =
        WaitForConnectedOrExplain(*probes[i], addresses[i], deadline, timeout, tls);
    if (s.ok()) continue;
    ++unreachable;
    std::fprintf(stderr,
                 "routeguide-client: warning: %s (its share of the calls "
                 "goes to the other addresses of --target)\n",
                 std::string(s.message()).c_str());
  }
  if (unreachable == probes.size()) {
    return absl::UnavailableError(absl::StrCat(
        "cannot reach any address of --target=", flag_value));
  }
  return absl::OkStatus();
}

}  // namespace routeguide
