// grpc.health.v1.Health/Check, unary (see unary_server_call.h for the
// call's life), served from the same completion queues as RouteGuide
// (gRPC's default health service is callback-based): SERVING, or
// NOT_SERVING once shutdown has begun. No token needed.
#include "absl/strings/str_cat.h"
#include "call_spawners.h"
#include "unary_server_call.h"

namespace routeguide {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

class HealthCheckCall final
    : public UnaryServerCall<HealthCheckCall, HealthCheckRequest,
                             HealthCheckResponse> {
 public:
  HealthCheckCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq)
      : UnaryServerCall(env, cq, Method::kHealthCheck) {}

 private:
  friend class ServerCall<HealthCheckCall, UnaryEvent>;
  friend class UnaryServerCall<HealthCheckCall, HealthCheckRequest,
                               HealthCheckResponse>;

  void RequestLocked(void* tag) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    env_.health->RequestCheck(&context_, &request_, &responder_, cq_, cq_, tag);
  }

  grpc::Status Answer(HealthCheckResponse* reply)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const std::string& service = request_.service();
    if (!service.empty() && service != RouteGuide::service_full_name()) {
      // The health protocol's answer for a service this server lacks.
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("unknown service '", service, "'"));
    }
    reply->set_status(env_.serving.load(std::memory_order_acquire)
                          ? HealthCheckResponse::SERVING
                          : HealthCheckResponse::NOT_SERVING);
    return grpc::Status::OK;
  }
};

}  // namespace

void SpawnHealthCheckCall(CallEnvironment& env,
                          grpc::ServerCompletionQueue* cq) {
  HealthCheckCall::Spawn(env, cq);
}

}  // namespace routeguide
