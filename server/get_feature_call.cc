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
#include "call_environment.h"
#include "proto_convert.h"
#include "tagged_call.h"

namespace routeguide {
namespace {

enum class GetFeatureEvent : uint8_t { kRequestArrived, kFinishSent, kDone, kCount };

class GetFeatureCall final
    : public TaggedCall<GetFeatureCall, GetFeatureEvent> {
 public:
  GetFeatureCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq)
      : env_(env), membership_(*env.registry), cq_(cq), responder_(&context_) {}

  void Start() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    context_.AsyncNotifyWhenDone(Post(Event::kDone));
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
        if (context_.IsCancelled()) membership_.MarkCancelled();
        break;
      case Event::kCount:
        break;
    }
  }

  void OnRequestArrived(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!ok) {  // The server is shutting down; the call never started.
      Withdraw(Event::kDone);
      state_ = State::kClosed;
      return;
    }
    membership_.Activate();
    SpawnGetFeatureCall(env_, cq_);

    state_ = State::kAnswering;
    if (grpc::Status allowed = env_.Authorize(context_); !allowed.ok()) {
      responder_.FinishWithError(allowed, Post(Event::kFinishSent));
      return;
    }
    const GeoPoint point = FromProto(request_);
    if (absl::Status valid = ValidatePoint(point); !valid.ok()) {
      responder_.FinishWithError(ToGrpcStatus(valid), Post(Event::kFinishSent));
      return;
    }
    Feature reply;
    if (std::optional<FeatureRecord> found = env_.store->Find(point)) {
      ToProto(*found, &reply);
    } else {
      *reply.mutable_location() = request_;  // Nothing here: empty name.
    }
    responder_.Finish(reply, grpc::Status::OK, Post(Event::kFinishSent));
  }

  CallEnvironment& env_;
  // First after env_, so it is destroyed last: the registry counts the
  // call until all of it is gone.
  CallRegistry::Membership membership_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext context_;
  Point request_;
  grpc::ServerAsyncResponseWriter<Feature> responder_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kAwaitingRequest;
};

}  // namespace

void SpawnGetFeatureCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq) {
  (new GetFeatureCall(env, cq))->Start();
}

}  // namespace routeguide
