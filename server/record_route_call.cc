// RecordRoute, client streaming: the whole life of one call.
//
//   state              event            ok     next
//   kAwaitingRequest   kRequestArrived  true   kReading (Read posted, idle
//                                              alarm set), or kClosing
//                                              (FinishWithError: missing
//                                              token)
//   kAwaitingRequest   kRequestArrived  false  kClosed (server stopping)
//   kReading           kReadDone        true   kReading (next Read), or
//                                              kClosing (FinishWithError
//                                              for a point out of range or
//                                              bytes that are no Point)
//   kReading           kReadDone        false  kClosing (the client ended
//                                              its stream: Finish with the
//                                              summary; on a cancelled
//                                              call that Finish just fails)
//   kReading           kIdleAlarm       true   kClosing (FinishWithError
//                                              DEADLINE_EXCEEDED) when idle
//                                              long enough, else set again
//   kReading           kStopAlarm       -      kClosing (FinishWithError
//                                              UNAVAILABLE: shutdown)
//   kClosing           kReadDone        any    kClosing (the Read that was
//                                              pending when the call ended
//                                              early; nothing to do)
//   kClosing           kFinishSent      any    kClosed
//   any other          kIdleAlarm, kStopAlarm, kDone  (noted; nothing to post)
//
// Ending early posts Finish while a Read is pending; that Read then comes
// back (usually with ok == false) and is ignored. The call is deleted by
// TaggedCall when its last tag comes back.
#include <algorithm>
#include <cstdint>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proto_convert.h"
#include "stream_timers.h"
#include "server_call.h"
#include "wire_messages.h"

namespace routeguide {
namespace {

enum class RecordRouteEvent : uint8_t {
  kRequestArrived,
  kReadDone,
  kIdleAlarm,
  kStopAlarm,
  kFinishSent,
  kDone,
  kCount
};

class RecordRouteCall final
    : public ServerCall<RecordRouteCall, RecordRouteEvent>,
      public StreamRegistry::Member {
 public:
  RecordRouteCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq)
      : ServerCall(env, cq, Method::kRecordRoute),
        reader_(&context_),
        timers_(env.stream_idle_timeout) {}

  ~RecordRouteCall() override {
    if (registered_) env_.streams->Remove(this);  // Before anything goes.
  }

  void Start() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    WatchForDoneLocked();
    state_ = State::kAwaitingRequest;
    env_.service->RequestRecordRoute(&context_, &reader_, cq_, cq_,
                                     Post(Event::kRequestArrived));
  }

  ABSL_NO_THREAD_SAFETY_ANALYSIS bool TryRequestStop() override {
    if (!mu_.TryLock()) return false;
    // PendingLocked() == 0: the call is being deleted; leave it be.
    if (state_ == State::kReading && !timers_.stop_armed() && PendingLocked() > 0) {
      timers_.ArmStop(cq_, Post(Event::kStopAlarm));
    }
    mu_.Unlock();
    return true;
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
      case Event::kIdleAlarm:
        OnIdleAlarm(ok);
        break;
      case Event::kStopAlarm:
        timers_.StopFired();
        if (state_ == State::kReading) {
          EndEarly(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                "the server is shutting down"));
        }
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
    if (!AcceptLocked(ok, &SpawnRecordRouteCall)) {  // The server is stopping.
      state_ = State::kClosed;
      return;
    }
    if (grpc::Status allowed = env_.Admit(context_); !allowed.ok()) {
      state_ = State::kClosing;
      reader_.FinishWithError(Outcome(allowed), Post(Event::kFinishSent));
      return;
    }
    registered_ = true;
    env_.streams->Add(this);
    start_ = absl::Now();
    timers_.Touch();
    if (timers_.idle_enabled()) timers_.ArmIdle(cq_, Post(Event::kIdleAlarm));
    state_ = State::kReading;
    reader_.Read(&incoming_, Post(Event::kReadDone));
  }

  void OnReadDone(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (state_ != State::kReading) return;  // Ended early meanwhile.
    if (!ok) {
      Finish(Summary(), grpc::Status::OK);
      return;
    }
    if (!ParseWire(incoming_, &point_)) {
      EndEarly(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            absl::StrCat("message ", point_count_ + 1,
                                         " of the stream is not a routeguide.Point")));
      return;
    }
    const GeoPoint point = FromProto(point_);
    if (absl::Status valid = ValidatePoint(point); !valid.ok()) {
      EndEarly(ToGrpcStatus(valid));
      return;
    }
    timers_.Touch();
    membership_.CountIn();
    ++point_count_;
    if (env_.store->Contains(point)) ++feature_count_;
    if (previous_) distance_meters_ += HaversineMeters(*previous_, point);
    previous_ = point;
    reader_.Read(&incoming_, Post(Event::kReadDone));
  }

  void OnIdleAlarm(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const bool idle = timers_.IdleFired();
    if (!ok || state_ != State::kReading) return;  // Cancelled at the end.
    if (idle) {
      EndEarly(grpc::Status(
          grpc::StatusCode::DEADLINE_EXCEEDED,
          absl::StrCat("no point received for ",
                       absl::FormatDuration(timers_.idle_timeout()))));
      return;
    }
    timers_.ArmIdle(cq_, Post(Event::kIdleAlarm));
  }

  // Ends the call with an error while its Read is still pending.
  void EndEarly(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    state_ = State::kClosing;
    timers_.CancelIdle();
    reader_.FinishWithError(Outcome(status), Post(Event::kFinishSent));
  }

  void Finish(const RouteSummary& summary, const grpc::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    state_ = State::kClosing;
    timers_.CancelIdle();
    membership_.CountOut();
    reader_.Finish(ToWire(summary), Outcome(status), Post(Event::kFinishSent));
  }

  RouteSummary Summary() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    RouteSummary summary;
    summary.set_point_count(SaturateToInt32(point_count_));
    summary.set_feature_count(SaturateToInt32(feature_count_));
    summary.set_distance(SaturateToInt32(distance_meters_));
    // Clamped at zero: the wall clock can step back.
    summary.set_elapsed_time(SaturateToInt32(static_cast<uint64_t>(
        std::max<int64_t>(0, absl::ToInt64Seconds(absl::Now() - start_)))));
    return summary;
  }

  // Raw: see wire_messages.h.
  grpc::ServerAsyncReader<grpc::ByteBuffer, grpc::ByteBuffer> reader_;
  StreamTimers timers_ ABSL_GUARDED_BY(mu_);
  bool registered_ = false;  // In env_.streams; set once, under mu_.
  State state_ ABSL_GUARDED_BY(mu_) = State::kAwaitingRequest;
  grpc::ByteBuffer incoming_ ABSL_GUARDED_BY(mu_);  // Filled by the pending Read.
  Point point_ ABSL_GUARDED_BY(mu_);
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
