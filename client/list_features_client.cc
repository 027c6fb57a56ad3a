// ListFeatures from the client side, server streaming: the whole life of
// one call.
//
//   state       event        ok     next
//   kStarting   kStarted     true   kReading (Read posted)
//   kStarting   kStarted     false  kFinishing (Finish posted)
//   kReading    kReadDone    true   kReading (on_feature, next Read), or
//                                   kFinishing (on_feature said stop: the
//                                   call is cancelled, Finish posted)
//   kReading    kReadDone    false  kFinishing (the stream ended)
//   kFinishing  kFinished    -      kDone (on_done runs)
//
// CallOptions::canceller may cancel the call from another thread at any
// time; its completions then come back as above, with ok false.
//
// The state says which one operation is in flight, so it decides what a
// completion means; any other pair of state and event ends the process
// (DieOnImpossibleEvent). The call is deleted by TaggedCall when its last
// tag comes back.
#include <memory>

#include "client_calls.h"
#include "impossible_event.h"
#include "tagged_call.h"

namespace routeguide {
namespace {

enum class ListFeaturesClientEvent : uint8_t {
  kStarted,
  kReadDone,
  kFinished,
  kCount
};

class ListFeaturesClientCall final
    : public TaggedCall<ListFeaturesClientCall, ListFeaturesClientEvent> {
 public:
  ListFeaturesClientCall(std::function<bool(const Feature&)> on_feature,
                         std::function<void(const grpc::Status&)> on_done)
      : on_feature_(std::move(on_feature)), on_done_(std::move(on_done)) {}

  void Start(RouteGuide::Stub& stub, grpc::CompletionQueue& cq,
             const CallOptions& options, const Rectangle& rectangle)
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    options.ApplyTo(context_);
    reader_ = stub.PrepareAsyncListFeatures(&context_, rectangle, &cq);
    state_ = State::kStarting;
    reader_->StartCall(Post(Event::kStarted));
    canceller_ = options.canceller;
    if (canceller_ != nullptr) canceller_->Attach(&context_);
  }

 private:
  friend class TaggedCall<ListFeaturesClientCall, ListFeaturesClientEvent>;
  using Event = ListFeaturesClientEvent;
  enum class State { kStarting, kReading, kFinishing, kDone };

  void ProceedLocked(Event event, bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    switch (state_) {
      case State::kStarting:
        if (event != Event::kStarted) break;
        ok ? ReadNext() : PostFinish();
        return;
      case State::kReading:
        if (event != Event::kReadDone) break;
        if (!ok) {
          PostFinish();  // The stream ended; Finish reads how.
          return;
        }
        if (on_feature_(feature_)) {
          ReadNext();
        } else {
          // The caller wants no more: a server that streams without end
          // must not keep the call (and the caller's memory) growing.
          context_.TryCancel();
          PostFinish();
        }
        return;
      case State::kFinishing:
        if (event != Event::kFinished) break;
        state_ = State::kDone;
        if (canceller_ != nullptr) canceller_->Detach();
        on_done_(status_);
        return;
      case State::kDone:
        break;
    }
    DieOnImpossibleEvent("ListFeatures client", state_, event, ok);
  }

  void ReadNext() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    state_ = State::kReading;
    reader_->Read(&feature_, Post(Event::kReadDone));
  }

  void PostFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    state_ = State::kFinishing;
    reader_->Finish(&status_, Post(Event::kFinished));
  }

  std::function<bool(const Feature&)> on_feature_;
  std::function<void(const grpc::Status&)> on_done_;
  grpc::ClientContext context_;
  std::shared_ptr<CallCanceller> canceller_;  // Attached while the call lives.
  std::unique_ptr<grpc::ClientAsyncReader<Feature>> reader_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kStarting;
  Feature feature_ ABSL_GUARDED_BY(mu_);  // Filled by the pending Read.
  grpc::Status status_;
};

}  // namespace

void StartListFeatures(RouteGuide::Stub& stub, grpc::CompletionQueue& cq,
                       const CallOptions& options, const Rectangle& rectangle,
                       std::function<void(const Feature&)> on_feature,
                       std::function<void(const grpc::Status&)> on_done) {
  StartListFeaturesWhile(
      stub, cq, options, rectangle,
      [on_feature = std::move(on_feature)](const Feature& feature) {
        on_feature(feature);
        return true;
      },
      std::move(on_done));
}

void StartListFeaturesWhile(RouteGuide::Stub& stub, grpc::CompletionQueue& cq,
                            const CallOptions& options,
                            const Rectangle& rectangle,
                            std::function<bool(const Feature&)> on_feature,
                            std::function<void(const grpc::Status&)> on_done) {
  (new ListFeaturesClientCall(std::move(on_feature), std::move(on_done)))
      ->Start(stub, cq, options, rectangle);
}

}  // namespace routeguide
