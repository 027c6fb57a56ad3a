#include "call_environment.h"

#include "constant_time.h"

namespace routeguide {

grpc::Status CallEnvironment::Authorize(
    const grpc::ServerContext& context) const {
  if (auth_token.empty()) return grpc::Status::OK;
  constexpr absl::string_view kScheme = "Bearer ";
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it != metadata.end()) {
    const absl::string_view value(it->second.data(), it->second.size());
    if (value.size() > kScheme.size() &&
        value.substr(0, kScheme.size()) == kScheme &&
        ConstantTimeEquals(value.substr(kScheme.size()), auth_token)) {
      return grpc::Status::OK;
    }
  }
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      "this server needs an authorization: Bearer <token> "
                      "header with the right token");
}

}  // namespace routeguide
