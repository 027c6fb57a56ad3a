// Checks of --target before and while connecting: a bad address is refused
// at once, and a server that cannot be reached or used is reported with
// what went wrong, not only that it did.
#ifndef ROUTEGUIDE_CLIENT_TARGET_CHECK_H_
#define ROUTEGUIDE_CLIENT_TARGET_CHECK_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"

namespace routeguide {

// INVALID_ARGUMENT naming `flag` when `target`, a HOST:PORT or [IPV6]:PORT
// (the port after the last ':', as --target lists read "::1:2" too)
// (a gRPC URI with a scheme such as dns: or unix: is left to gRPC), has no
// port or one outside 1-65535. gRPC would otherwise try port 443 for a
// missing port and fail on a bad one only after the connect timeout.
absl::Status CheckHostPort(absl::string_view target,
                           absl::string_view flag = "--target");

// True when `target` starts with a scheme gRPC resolves (dns:, ipv4:,
// ipv6:, unix:, unix-abstract:, vsock:, xds:) or holds "://".
bool IsTargetUri(absl::string_view target);

// Waits until `deadline` for `channel` to connect. UNAVAILABLE otherwise,
// naming `target` and why: the channel's state and the status of one call
// made without waiting for a connection, which carries gRPC's last error
// (connection refused, a TLS handshake that failed, a server that does
// not speak HTTP/2, ...).
// `connect_timeout` is named in the message; `tls` says whether the
// client spoke TLS, for a hint when the server ended the connection at
// once (as a server of the other kind does).
absl::Status WaitForConnectedOrExplain(grpc::Channel& channel,
                                       absl::string_view target,
                                       absl::Time deadline,
                                       absl::Duration connect_timeout, bool tls);

// The single-address targets of a channel target: "ipv4:A,B" gives
// "ipv4:A" and "ipv4:B"; anything else, itself.
std::vector<std::string> SplitAddressList(absl::string_view channel_target);

// For a channel target that lists several addresses: connects to each on
// a channel of its own (from `new_channel`), all at once, and warns on
// stderr about each that cannot be reached within `timeout`, with why;
// gRPC's round_robin would otherwise send all calls to the others without
// a word. UNAVAILABLE when none can be reached. `flag_value` is --target
// as given, for messages.
absl::Status ProbeAddressList(
    absl::string_view channel_target, absl::string_view flag_value,
    const std::function<std::shared_ptr<grpc::Channel>(const std::string&)>&
        new_channel,
    absl::Duration timeout, bool tls);

}  // namespace routeguide

#endif  // ROUTEGUIDE_CLIENT_TARGET_CHECK_H_
