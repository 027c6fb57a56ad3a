#include "call_environment.h"

#include "absl/strings/str_cat.h"
#include "credentials.h"

namespace routeguide {

grpc::Status CallEnvironment::Admit(const grpc::ServerContext& context) const {
  const auto& metadata = context.client_metadata();
  size_t metadata_bytes = 0;
  for (const auto& [name, value] : metadata) {
    metadata_bytes += name.size() + value.size() + 32;
  }
  const size_t max_metadata_bytes = static_cast<size_t>(options->max_metadata_bytes);
  if (metadata_bytes > max_metadata_bytes) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat("request metadata is ", metadata_bytes,
                                     " bytes, over the limit of ", max_metadata_bytes));
  }
  if (options->auth_token.empty()) return grpc::Status::OK;
  auto it = metadata.find("authorization");
  if (it != metadata.end() &&
      BearerTokenMatches(absl::string_view(it->second.data(), it->second.size()),
                         options->auth_token)) {
    return grpc::Status::OK;
  }
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, kUnauthenticatedMessage);
}

}  // namespace routeguide
