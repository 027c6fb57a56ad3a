// GetFeature from the client side, unary: the whole life of one call.
//
//   event       ok     what happens
//   kFinished   -      on_done runs with the status and the reply
//
// One event, so no state: Start posts Finish, and its completion is the
// call's last. A unary Finish always completes with ok; the outcome is in
// the status. The call is deleted by TaggedCall when that tag comes back.
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
    responder_->Finish(&reply_, &status_, Post(Event::kFinished));
  }

 private:
  friend class TaggedCall<GetFeatureClientCall, GetFeatureClientEvent>;
  using Event = GetFeatureClientEvent;

  void ProceedLocked(Event /*event*/, bool /*ok*/)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    on_done_(status_, reply_);  // kFinished, the only event.
  }

  DoneCallback on_done_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Feature>> responder_;
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
