// RecordRoute, client streaming: the whole life of one call.
//
//   state              event            ok     next
//   kAwaitingRequest   kRequestArrived  true   kReading (Read posted), or
//                                              kClosing (FinishWithError:
//                                              missing token)
//   kAwaitingRequest   kRequestArrived  false  kClosed (server stopping)
//   kReading           kReadDone        true   kReading (next Read), or
//                                              kClosing (FinishWithError
//                                              for a point out of range)
//   kReading           kReadDone        false  kClosing (the client ended
//                                              its stream: Finish with the
//                                              summary; on a cancelled
//                                              call that Finish just fails)
//   kClosing           kFinishSent      any    kClosed
//   any                kDone            -      (noted; nothing to post)
//
// The call is deleted by TaggedCall when its last tag comes back.
#include <cstdint>
#include <optional>

#include "absl/time/clock.h"
#include "call_environment.h"
#include "proto_convert.h"
#include "tagged_call.h"

namespace routeguide {
namespace {

enum class RecordRouteEvent : uint8_t {
  kRequestArrived,
  kReadDone,
  kFinishSent,
  kDone,
  kCount
};

class RecordRouteCall final
    : public TaggedCall<RecordRouteCall, RecordRouteEvent> {
 public:
  RecordRouteCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq)
      : env_(env), membership_(*env.registry), cq_(cq), reader_(&context_) {}

  void Start() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    context_.AsyncNotifyWhenDone(Post(Event::kDone));
    state_ = State::kAwaitingRequest;
    env_.service->RequestRecordRoute(&context_, &reader_, cq_, cq_,
                                     Post(Event::kRequestArrived));
  }

 private:
  friend class TaggedCall<RecordRouteCall, RecordRouteEvent>;
  using Event = RecordRouteEvent;
  enum class State { kAwaitingRequest, kReading, kClosing, kClosed };

  void ProceedLocked(Event event, bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    switch (event) {
      case Event::kRequestArrived:
        OnRequestArrived(ok);
        break;
      case Event::kReadDone:
        OnReadDone(ok);
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
    SpawnRecordRouteCall(env_, cq_);
    if (grpc::Status allowed = env_.Authorize(context_); !allowed.ok()) {
      state_ = State::kClosing;
      reader_.FinishWithError(allowed, Post(Event::kFinishSent));
      return;
    }
    start_ = absl::Now();
    state_ = State::kReading;
    reader_.Read(&point_, Post(Event::kReadDone));
  }

  void OnReadDone(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    state_ = State::kClosing;
    if (!ok) {
      reader_.Finish(Summary(), grpc::Status::OK, Post(Event::kFinishSent));
      return;
    }
    const GeoPoint point = FromProto(point_);
    if (absl::Status valid = ValidatePoint(point); !valid.ok()) {
      reader_.FinishWithError(ToGrpcStatus(valid), Post(Event::kFinishSent));
      return;
    }
    ++point_count_;
    if (env_.store->Contains(point)) ++feature_count_;
    if (previous_) distance_meters_ += HaversineMeters(*previous_, point);
    previous_ = point;
    state_ = State::kReading;
    reader_.Read(&point_, Post(Event::kReadDone));
  }

  RouteSummary Summary() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    RouteSummary summary;
    summary.set_point_count(SaturateToInt32(point_count_));
    summary.set_feature_count(SaturateToInt32(feature_count_));
    summary.set_distance(SaturateToInt32(distance_meters_));
    summary.set_elapsed_time(SaturateToInt32(static_cast<uint64_t>(
        absl::ToInt64Seconds(absl::Now() - start_))));
    return summary;
  }

  CallEnvironment& env_;
  // First after env_, so it is destroyed last: the registry counts the
  // call until all of it is gone.
  CallRegistry::Membership membership_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext context_;
  grpc::ServerAsyncReader<RouteSummary, Point> reader_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kAwaitingRequest;
  Point point_ ABSL_GUARDED_BY(mu_);  // Filled by the pending Read.
  absl::Time start_ ABSL_GUARDED_BY(mu_);
  uint64_t point_count_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t feature_count_ ABSL_GUARDED_BY(mu_) = 0;
  double distance_meters_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<GeoPoint> previous_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

void SpawnRecordRouteCall(CallEnvironment& env,
                          grpc::ServerCompletionQueue* cq) {
  (new RecordRouteCall(env, cq))->Start();
}

}  // namespace routeguide
