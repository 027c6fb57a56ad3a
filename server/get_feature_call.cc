// GetFeature, unary (see unary_server_call.h for the call's life): the
// feature at a point, an unnamed one where there is none, or an error for
// a missing token, bytes that are no Point, or a point out of range.
//
// The method is raw: the request is read by ParsePointWire, and a feature
// found goes out as the encoding FeatureWireCache keeps of it, so the call
// copies no record and encodes nothing.
#include <cstddef>
#include <cstdint>
#include <optional>

#include "call_spawners.h"
#include "proto_convert.h"
#include "route_guide.pb.h"
#include "unary_server_call.h"
#include "wire_messages.h"

namespace routeguide {
namespace {

class GetFeatureCall final
    : public UnaryServerCall<GetFeatureCall, grpc::ByteBuffer, EncodedMessage> {
 public:
  GetFeatureCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq)
      : UnaryServerCall(env, cq, Method::kGetFeature) {}

 private:
  friend class ServerCall<GetFeatureCall, UnaryEvent>;
  friend class UnaryServerCall<GetFeatureCall, grpc::ByteBuffer, EncodedMessage>;

  void RequestLocked(void* tag) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    env_.service->RequestGetFeatureEncoded(&context_, &request_, &responder_,
                                           cq_, cq_, tag);
  }

  grpc::Status Answer(EncodedMessage* reply) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    membership_.CountIn();
    if (grpc::Status allowed = env_.Admit(context_); !allowed.ok()) {
      return allowed;
    }
    const std::optional<GeoPoint> point = ParsePointWire(request_);
    if (!point) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "request is not a routeguide.Point");
    }
    if (absl::Status valid = ValidatePoint(*point); !valid.ok()) {
      return ToGrpcStatus(valid);
    }
    if (std::optional<uint64_t> index = env_.store->FindIndex(*point)) {
      // The feature was in the store before the cache looks, so the cache
      // encodes it (features are never removed); should it ever not, the
      // client gets an error, not a wrong feature.
      if (!env_.wire->Get(*index, reply)) {
        return grpc::Status(grpc::StatusCode::INTERNAL,
                            "a feature's encoding is missing");
      }
      return grpc::Status::OK;
    }
    // Nothing here: an unnamed feature at the point asked for, encoded on
    // the stack (at most 2 + 22 bytes) rather than in a string.
    Feature unnamed;
    ToProto(*point, unnamed.mutable_location());
    uint8_t encoded[32];
    const size_t size = unnamed.ByteSizeLong();
    unnamed.SerializeWithCachedSizesToArray(encoded);
    reply->bytes = grpc::Slice(encoded, size);
    return grpc::Status::OK;
  }
};

}  // namespace

void SpawnGetFeatureCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq) {
  GetFeatureCall::Spawn(env, cq);
}

}  // namespace routeguide
