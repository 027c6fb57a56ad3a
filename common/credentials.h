#ifndef ROUTEGUIDE_COMMON_CREDENTIALS_H_
#define ROUTEGUIDE_COMMON_CREDENTIALS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace routeguide {

// A bearer token from the first line of `path`, surrounding white space
// dropped; an error when the file is unreadable or the token empty or not
// printable ASCII (it goes into an HTTP/2 header).
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

// Whether an "authorization" header value carries `token` as a bearer
// token: the scheme "Bearer" in any case (HTTP's schemes are
// case-insensitive), one or more spaces, then the token, compared in
// constant time.
bool BearerTokenMatches(absl::string_view header_value, absl::string_view token);

// TLS for the server from PEM files. With `client_ca_path`, clients must
// present a certificate signed by that CA (mutual TLS).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerTls(
    const std::string& cert_path, const std::string& key_path,
    const std::string& client_ca_path);

// TLS for a client: trusts the CA in `ca_path` (the system's roots when
// empty) and, with `cert_path` and `key_path`, presents that certificate.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientTls(
    const std::string& ca_path, const std::string& cert_path,
    const std::string& key_path);

}  // namespace routeguide

#endif  // ROUTEGUIDE_COMMON_CREDENTIALS_H_
