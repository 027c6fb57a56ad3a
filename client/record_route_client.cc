// RecordRoute from the client side, client streaming: the whole life of
// one call.
//
//   state         event           ok     next
//   kStarting     kStarted        true   kWriting (first point) or
//                                        kClosing (WritesDone: no points)
//   kStarting     kStarted        false  kFinishing (Finish posted)
//   kWriting      kWriteDone      true   kWriting (next point) or
//                                        kClosing (WritesDone)
//   kWriting      kWriteDone      false  kFinishing (the server ended the
//                                        call; Finish reads why)
//   kClosing      kWritesDoneDone any    kFinishing (Finish posted)
//   kFinishing    kFinished       -      kDone (on_done runs)
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

enum class RecordRouteClientEvent : uint8_t {
  kStarted,
  kWriteDone,
  kWritesDoneDone,
  kFinished,
  kCount
};

class RecordRouteClientCall final
    : public TaggedCall<RecordRouteClientCall, RecordRouteClientEvent> {
 public:
  using DoneCallback =
      std::function<void(const grpc::Status&, const RouteSummary&)>;

  RecordRouteClientCall(std::vector<Point> points,
                        std::function<void(const Point&)> on_point,
                        DoneCallback on_done)
      : points_(std::move(points)),
        on_point_(std::move(on_point)),
        on_done_(std::move(on_done)) {}

  void Start(RouteGuide::Stub& stub, grpc::CompletionQueue& cq,
             const CallOptions& options) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    options.ApplyTo(context_);
    batch_writes_ = options.batch_writes;
    writer_ = stub.PrepareAsyncRecordRoute(&context_, &summary_, &cq);
    state_ = State::kStarting;
    writer_->StartCall(Post(Event::kStarted));
  }

 private:
  friend class TaggedCall<RecordRouteClientCall, RecordRouteClientEvent>;
  using Event = RecordRouteClientEvent;
  enum class State { kStarting, kWriting, kClosing, kFinishing, kDone };

  void ProceedLocked(Event event, bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    switch (state_) {
      case State::kStarting:
        if (event != Event::kStarted) break;
        ok ? WriteNext() : PostFinish();
        return;
      case State::kWriting:
        if (event != Event::kWriteDone) break;
        // Not ok: the server ended the call; Finish reads why.
        ok ? WriteNext() : PostFinish();
        return;
      case State::kClosing:
        if (event != Event::kWritesDoneDone) break;
        PostFinish();
        return;
      case State::kFinishing:
        if (event != Event::kFinished) break;
        state_ = State::kDone;
        on_done_(status_, summary_);
        return;
      case State::kDone:
        break;
    }
    DieOnImpossibleEvent("RecordRoute client", state_, event, ok);
  }

  void WriteNext() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (next_ == points_.size()) {
      state_ = State::kClosing;
      writer_->WritesDone(Post(Event::kWritesDoneDone));
      return;
    }
    const Point& point = points_[next_++];
    on_point_(point);
    state_ = State::kWriting;
    writer_->Write(point, StreamWriteOptions(batch_writes_), Post(Event::kWriteDone));
  }

  void PostFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    state_ = State::kFinishing;
    writer_->Finish(&status_, Post(Event::kFinished));
  }

  const std::vector<Point> points_;
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
  bool batch_writes_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void(const Point&)> on_point_;
  DoneCallback on_done_;
  grpc::ClientContext context_;
  RouteSummary summary_;
  std::unique_ptr<grpc::ClientAsyncWriter<Point>> writer_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kStarting;
  grpc::Status status_;
};

}  // namespace

void StartRecordRoute(
    RouteGuide::Stub& stub, grpc::CompletionQueue& cq,
    const CallOptions& options, std::vector<Point> points,
    std::function<void(const Point&)> on_point,
    std::function<void(const grpc::Status&, const RouteSummary&)> on_done) {
  (new RecordRouteClientCall(std::move(points), std::move(on_point),
                             std::move(on_done)))
      ->Start(stub, cq, options);
}

}  // namespace routeguide
