// grpc.health.v1.Health/Check, unary, served from the same completion
// queues as RouteGuide (gRPC's default health service is callback-based).
// The whole life of one call:
//
//   state              event            ok     next
//   kAwaitingRequest   kRequestArrived  true   kAnswering (Finish posted:
//                                              SERVING, or NOT_SERVING once
//                                              shutdown has begun)
//   kAwaitingRequest   kRequestArrived  false  kClosed (server stopping)
//   kAnswering         kFinishSent      any    kClosed
//   any                kDone            -      (noted; nothing to post)
//
// The call is deleted by TaggedCall when its last tag comes back.
#include "absl/strings/str_cat.h"
#include "server_call.h"

namespace routeguide {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

enum class HealthCheckEvent : uint8_t { kRequestArrived, kFinishSent, kDone, kCount };

class HealthCheckCall final
    : public ServerCall<HealthCheckCall, HealthCheckEvent> {
 public:
  HealthCheckCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq)
      : ServerCall(env, cq, Method::kHealthCheck),
        responder_(&context_) {}

  void Start() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    WatchForDoneLocked();
    state_ = State::kAwaitingRequest;
    env_.health->RequestCheck(&context_, &request_, &responder_, cq_, cq_,
                              Post(Event::kRequestArrived));
  }

 private:
  friend class TaggedCall<HealthCheckCall, HealthCheckEvent>;
  using Event = HealthCheckEvent;
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
    if (!AcceptLocked(ok, &SpawnHealthCheckCall)) {  // The server is stopping.
      state_ = State::kClosed;
      return;
    }
    state_ = State::kAnswering;
    const std::string& service = request_.service();
    if (!service.empty() && service != RouteGuide::service_full_name()) {
      // The health protocol's answer for a service this server lacks.
      responder_.FinishWithError(
          Outcome(grpc::Status(grpc::StatusCode::NOT_FOUND,
                       absl::StrCat("unknown service '", service, "'"))),
          Post(Event::kFinishSent));
      return;
    }
    HealthCheckResponse response;
    response.set_status(env_.serving.load(std::memory_order_acquire)
                            ? HealthCheckResponse::SERVING
                            : HealthCheckResponse::NOT_SERVING);
    membership_.CountOut();
    responder_.Finish(response, Outcome(grpc::Status::OK), Post(Event::kFinishSent));
  }

  HealthCheckRequest request_;
  grpc::ServerAsyncResponseWriter<HealthCheckResponse> responder_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kAwaitingRequest;
};

}  // namespace

void SpawnHealthCheckCall(CallEnvironment& env,
                          grpc::ServerCompletionQueue* cq) {
  (new HealthCheckCall(env, cq))->Start();
}

}  // namespace routeguide
