// GetFeature from the client side, unary: the whole life of one call.
//
//   state       event        next
//   kWaiting    kFinished    kDone (on_done runs with status and reply)
//
// The call is deleted by TaggedCall when its last tag comes back.
#include <memory>

#include "client_calls.h"
#include "tagged_call.h"

namespace routeguide {
namespace {

enum class GetFeatureClientEvent : uint8_t { kFinished, kCount };

class GetFeatureClientCall final
    : public TaggedCall<GetFeatureClientCall, GetFeatureClientEvent> {
 public:
  using DoneCallback = std::function<void(const grpc::Status&, const Feature&)>;

  explicit GetFeatureClientCall(DoneCallback on_done)
      : on_done_(std::move(on_done)) {}

  void Start(RouteGuide::Stub& stub, grpc::CompletionQueue& cq,
             const CallOptions& options, const Point& point)
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    options.ApplyTo(context_);
    responder_ = stub.PrepareAsyncGetFeature(&context_, point, &cq);
    responder_->StartCall();
    state_ = State::kWaiting;
    responder_->Finish(&reply_, &status_, Post(Event::kFinished));
  }

 private:
  friend class TaggedCall<GetFeatureClientCall, GetFeatureClientEvent>;
  using Event = GetFeatureClientEvent;
  enum class State { kWaiting, kDone };

  void ProceedLocked(Event event, bool /*ok*/)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // A unary Finish always completes with ok; the outcome is in status_.
    if (event == Event::kFinished) {
      state_ = State::kDone;
      on_done_(status_, reply_);
    }
  }

  DoneCallback on_done_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Feature>> responder_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kWaiting;
  Feature reply_;
  grpc::Status status_;
};

}  // namespace

void StartGetFeature(
    RouteGuide::Stub& stub, grpc::CompletionQueue& cq,
    const CallOptions& options, const Point& point,
    std::function<void(const grpc::Status&, const Feature&)> on_done) {
  (new GetFeatureClientCall(std::move(on_done)))
      ->Start(stub, cq, options, point);
}

}  // namespace routeguide
