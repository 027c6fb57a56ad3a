// GetFeature, unary (see unary_server_call.h for the call's life): the
// feature at a point, an unnamed one where there is none, or an error for
// a missing token or a point out of range.
#include "call_spawners.h"
#include "proto_convert.h"
#include "unary_server_call.h"

namespace routeguide {
namespace {

class GetFeatureCall final
    : public UnaryServerCall<GetFeatureCall, Point, Feature> {
 public:
  GetFeatureCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq)
      : UnaryServerCall(env, cq, Method::kGetFeature) {}

 private:
  friend class ServerCall<GetFeatureCall, UnaryEvent>;
  friend class UnaryServerCall<GetFeatureCall, Point, Feature>;

  void RequestLocked(void* tag) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    env_.service->RequestGetFeature(&context_, &request_, &responder_, cq_,
                                    cq_, tag);
  }

  grpc::Status Answer(Feature* reply) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    membership_.CountIn();
    if (grpc::Status allowed = env_.Admit(context_); !allowed.ok()) {
      return allowed;
    }
    const GeoPoint point = FromProto(request_);
    if (absl::Status valid = ValidatePoint(point); !valid.ok()) {
      return ToGrpcStatus(valid);
    }
    if (std::optional<FeatureRecord> found = env_.store->Find(point)) {
      ToProto(*found, reply);
    } else {
      *reply->mutable_location() = request_;  // Nothing here: empty name.
    }
    return grpc::Status::OK;
  }
};

}  // namespace

void SpawnGetFeatureCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq) {
  GetFeatureCall::Spawn(env, cq);
}

}  // namespace routeguide
