#include "reflection_answers.h"

#include <algorithm>
#include <deque>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpcpp/support/status.h"

namespace routeguide {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;
using google::protobuf::FileDescriptorProto;
using grpc::reflection::v1alpha::ServerReflectionRequest;
using grpc::reflection::v1alpha::ServerReflectionResponse;

void SetError(grpc::StatusCode code, std::string message,
              ServerReflectionResponse* response) {
  auto* error = response->mutable_error_response();
  error->set_error_code(static_cast<int32_t>(code));
  error->set_error_message(std::move(message));
}

}  // namespace

ServerReflectionResponse ReflectionAnswers::Answer(
    const ServerReflectionRequest& request) {
  ServerReflectionResponse response;
  response.set_valid_host(request.host());
  *response.mutable_original_request() = request;
  const DescriptorPool* pool = DescriptorPool::generated_pool();

  const FileDescriptor* file = nullptr;
  switch (request.message_request_case()) {
    case ServerReflectionRequest::kListServices:
      for (const std::string& name : services_) {
        response.mutable_list_services_response()->add_service()->set_name(name);
      }
      return response;
    case ServerReflectionRequest::kFileByFilename:
      file = pool->FindFileByName(request.file_by_filename());
      if (file == nullptr) {
        SetError(grpc::StatusCode::NOT_FOUND,
                 absl::StrCat("no file named '", request.file_by_filename(), "'"),
                 &response);
        return response;
      }
      break;
    case ServerReflectionRequest::kFileContainingSymbol:
      file = pool->FindFileContainingSymbol(request.file_containing_symbol());
      if (file == nullptr) {
        SetError(grpc::StatusCode::NOT_FOUND,
                 absl::StrCat("no symbol named '",
                              request.file_containing_symbol(), "'"),
                 &response);
        return response;
      }
      break;
    case ServerReflectionRequest::kFileContainingExtension: {
      const auto& wanted = request.file_containing_extension();
      const Descriptor* type = pool->FindMessageTypeByName(wanted.containing_type());
      const FieldDescriptor* extension =
          type == nullptr ? nullptr
                          : pool->FindExtensionByNumber(type, wanted.extension_number());
      if (extension == nullptr) {
        SetError(grpc::StatusCode::NOT_FOUND,
                 absl::StrCat("no extension ", wanted.extension_number(), " of '",
                              wanted.containing_type(), "'"),
                 &response);
        return response;
      }
      file = extension->file();
      break;
    }
    case ServerReflectionRequest::kAllExtensionNumbersOfType: {
      const Descriptor* type =
          pool->FindMessageTypeByName(request.all_extension_numbers_of_type());
      if (type == nullptr) {
        SetError(grpc::StatusCode::NOT_FOUND,
                 absl::StrCat("no message type named '",
                              request.all_extension_numbers_of_type(), "'"),
                 &response);
        return response;
      }
      std::vector<const FieldDescriptor*> extensions;
      pool->FindAllExtensions(type, &extensions);
      std::vector<int32_t> numbers;
      numbers.reserve(extensions.size());
      for (const FieldDescriptor* extension : extensions) {
        numbers.push_back(extension->number());
      }
      std::sort(numbers.begin(), numbers.end());
      auto* answer = response.mutable_all_extension_numbers_response();
      answer->set_base_type_name(type->full_name());
      answer->mutable_extension_number()->Add(numbers.begin(), numbers.end());
      return response;
    }
    case ServerReflectionRequest::MESSAGE_REQUEST_NOT_SET:
      // Also what a kind of request newer than this protocol parses as.
      SetError(grpc::StatusCode::UNIMPLEMENTED,
               "the request asks for nothing this server knows", &response);
      return response;
  }

  // The file asked for always; what it imports, breadth first, unless this
  // stream sent it already (a client builds its pool as files arrive).
  auto* files = response.mutable_file_descriptor_response();
  std::deque<const FileDescriptor*> queue = {file};
  bool first = true;
  while (!queue.empty()) {
    const FileDescriptor* next = queue.front();
    queue.pop_front();
    const bool unsent = files_sent_.insert(next->name()).second;
    if (!unsent && !first) continue;
    first = false;
    FileDescriptorProto proto;
    next->CopyTo(&proto);
    proto.SerializeToString(files->add_file_descriptor_proto());
    for (int i = 0; i < next->dependency_count(); ++i) {
      queue.push_back(next->dependency(i));
    }
  }
  return response;
}

}  // namespace routeguide
