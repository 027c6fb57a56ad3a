// GetFeature, unary: the whole life of one call.
//
//   state              event            ok     next
//   kAwaitingRequest   kRequestArrived  true   kAnswering (Finish posted:
//                                              the feature, or an error for
//                                              a bad point or a missing
//                                              token)
//   kAwaitingRequest   kRequestArrived  false  kClosed (server stopping)
//   kAnswering         kFinishSent      any    kClosed
//   any                kDone            -      (noted; nothing to post)
//
// The call is deleted by TaggedCall when its last tag comes back.
#include "proto_convert.h"
#include "server_call.h"

namespace routeguide {
namespace {

enum class GetFeatureEvent : uint8_t { kRequestArrived, kFinishSent, kDone, kCount };

class GetFeatureCall final
    : public ServerCall<GetFeatureCall, GetFeatureEvent> {
 public:
  GetFeatureCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq)
      : ServerCall(env, cq, Method::kGetFeature),
        responder_(&context_) {}

  void Start() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    WatchForDoneLocked();
    state_ = State::kAwaitingRequest;
    env_.service->RequestGetFeature(&context_, &request_, &responder_, cq_, cq_,
                                    Post(Event::kRequestArrived));
  }

 private:
  friend class TaggedCall<GetFeatureCall, GetFeatureEvent>;
  using Event = GetFeatureEvent;
  enum class State { kAwaitingRequest, kAnswering, kClosed };

  void ProceedLocked(Event event, bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    switch (event) {
      case Event::kRequestArrived:
        OnRequestArrived(ok);
        break;
      case Event::kFinishSent:
        state_ = State::kClosed;
        break;
      case Event::kDone:
        NoteDoneLocked();
        break;
      case Event::kCount:
        break;
    }
  }

  void OnRequestArrived(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!AcceptLocked(ok, &SpawnGetFeatureCall)) {  // The server is stopping.
      state_ = State::kClosed;
      return;
    }
    membership_.CountIn();
    state_ = State::kAnswering;
    if (grpc::Status allowed = env_.Admit(context_); !allowed.ok()) {
      responder_.FinishWithError(Outcome(allowed), Post(Event::kFinishSent));
      return;
    }
    const GeoPoint point = FromProto(request_);
    if (absl::Status valid = ValidatePoint(point); !valid.ok()) {
      responder_.FinishWithError(Outcome(ToGrpcStatus(valid)),
                                 Post(Event::kFinishSent));
      return;
    }
    Feature reply;
    if (std::optional<FeatureRecord> found = env_.store->Find(point)) {
      ToProto(*found, &reply);
    } else {
      *reply.mutable_location() = request_;  // Nothing here: empty name.
    }
    membership_.CountOut();
    responder_.Finish(reply, Outcome(grpc::Status::OK), Post(Event::kFinishSent));
  }

  Point request_;
  grpc::ServerAsyncResponseWriter<Feature> responder_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kAwaitingRequest;
};

}  // namespace

void SpawnGetFeatureCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq) {
  (new GetFeatureCall(env, cq))->Start();
}

}  // namespace routeguide
