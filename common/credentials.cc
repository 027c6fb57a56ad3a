#include "credentials.h"

#include "absl/strings/match.h"
#include "constant_time.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "files.h"

namespace routeguide {

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  auto contents = ReadWholeFile(path);
  if (!contents.ok()) return contents.status();
  absl::string_view token(*contents);
  token = token.substr(0, token.find('\n'));
  token = absl::StripAsciiWhitespace(token);
  if (token.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the first line holds no token"));
  }
  for (char c : token) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": the token must be printable ASCII without spaces"));
    }
  }
  return std::string(token);
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerTls(
    const std::string& cert_path, const std::string& key_path,
    const std::string& client_ca_path) {
  if (cert_path.empty() != key_path.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
  }
  if (cert_path.empty()) {
    return absl::InvalidArgumentError(
        "--tls_client_ca needs --tls_cert and --tls_key");
  }
  auto cert = ReadWholeFile(cert_path);
  if (!cert.ok()) return cert.status();
  auto key = ReadWholeFile(key_path);
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  options.pem_key_cert_pairs.push_back({*key, *cert});
  if (!client_ca_path.empty()) {
    auto ca = ReadWholeFile(client_ca_path);
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *ca;
    options.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientTls(
    const std::string& ca_path, const std::string& cert_path,
    const std::string& key_path) {
  if (cert_path.empty() != key_path.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert and --tls_key go together");
  }
  grpc::SslCredentialsOptions options;
  if (!ca_path.empty()) {
    auto ca = ReadWholeFile(ca_path);
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *ca;
  }
  if (!cert_path.empty()) {
    auto cert = ReadWholeFile(cert_path);
    if (!cert.ok()) return cert.status();
    auto key = ReadWholeFile(key_path);
    if (!key.ok()) return key.status();
    options.pem_cert_chain = *cert;
    options.pem_private_key = *key;
  }
  return grpc::SslCredentials(options);
}

bool BearerTokenMatches(absl::string_view header_value, absl::string_view token) {
  constexpr absl::string_view kScheme = "bearer";
  if (header_value.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(header_value.substr(0, kScheme.size()), kScheme) ||
      header_value[kScheme.size()] != ' ') {
    return false;
  }
  absl::string_view credentials = header_value.substr(kScheme.size());
  while (!credentials.empty() && credentials.front() == ' ') credentials.remove_prefix(1);
  return ConstantTimeEquals(credentials, token);
}

}  // namespace routeguide
