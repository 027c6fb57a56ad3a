// RecordRoute, client streaming: the whole life of one call.
//
//   state              event            ok     next
//   kAwaitingRequest   kRequestArrived  true   kReading (Read posted, idle
//                                              clock started), or kClosing
//                                              (FinishWithError: refused
//                                              by Admit)
//   kAwaitingRequest   kRequestArrived  false  (server stopping; deleted)
//   kReading           kReadDone        true   kReading (next Read), or
//                                              kClosing (FinishWithError
//                                              for a point out of range or
//                                              bytes that are no Point)
//   kReading           kReadDone        false  kClosing (the client ended
//                                              its stream: Finish with the
//                                              summary; on a cancelled
//                                              call that Finish just fails)
//   kReading           kIdleAlarm       true   kClosing (FinishWithError
//                                              DEADLINE_EXCEEDED) when still
//                                              idle (the idle sweep armed
//                                              it), else nothing
//   kReading           kStopAlarm       -      kClosing (FinishWithError
//                                              UNAVAILABLE: shutdown)
//   kClosing, kClosed  kReadDone        any    (the Read that was pending
//                                              when the call ended early)
//   kClosing           kFinishSent      any    kClosed
//   other              kIdleAlarm, kStopAlarm  (nothing to do)
//   any                kDone            -      (noted; nothing to post)
//   anything else                              impossible: aborts
//
// Ending early posts Finish while a Read is pending; that Read then comes
// back (usually with ok == false) and is ignored. The call is deleted by
// TaggedCall when its last tag comes back.
#include <cstdint>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "call_spawners.h"
#include "proto_convert.h"
#include "streaming_server_call.h"
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
    : public StreamingServerCall<RecordRouteCall, RecordRouteEvent> {
 public:
  RecordRouteCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq)
      : StreamingServerCall(env, cq, Method::kRecordRoute,
                            env.options->stream_idle_timeout),
        reader_(&context_) {}

 private:
  friend class ServerCall<RecordRouteCall, RecordRouteEvent>;
  friend class StreamingServerCall<RecordRouteCall, RecordRouteEvent>;
  using Event = RecordRouteEvent;
  enum class State { kAwaitingRequest, kReading, kClosing, kClosed };

  void RequestLocked(void* tag) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    env_.service->RequestRecordRoute(&context_, &reader_, cq_, cq_, tag);
  }

  void OnStartLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Expect(state_ == State::kAwaitingRequest, state_, Event::kRequestArrived);
    if (grpc::Status allowed = env_.Admit(context_); !allowed.ok()) {
      state_ = State::kClosing;
      reader_.FinishWithError(Outcome(allowed), Post(Event::kFinishSent));
      return;
    }
    JoinStreamsLocked();
    start_ = absl::Now();
    state_ = State::kReading;
    TouchLocked();  // The idle clock starts with the call.
    reader_.Read(&incoming_, Post(Event::kReadDone));
  }

  void OnEventLocked(Event event, bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    switch (event) {
      case Event::kReadDone:
        if (state_ == State::kClosing || state_ == State::kClosed) return;
        Expect(state_ == State::kReading, state_, event);
        OnReadDone(ok);
        return;
      case Event::kIdleAlarm:
        OnIdleAlarmLocked(ok, "no point received");
        return;
      case Event::kStopAlarm:
        OnStopAlarmLocked();
        return;
      case Event::kFinishSent:
        Expect(state_ == State::kClosing, state_, event);
        state_ = State::kClosed;
        return;
      default:
        Expect(false, state_, event);
    }
  }

  void OnReadDone(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!ok) {  // The client ended its stream.
      state_ = State::kClosing;
      StopIdleClockLocked();
      membership_.CountOut();
      reader_.Finish(ToWire(Summary()), Outcome(grpc::Status::OK),
                     Post(Event::kFinishSent));
      return;
    }
    const std::optional<GeoPoint> point = ParsePointWire(incoming_);
    if (!point) {
      EndEarlyLocked(grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("message ", point_count_ + 1,
                       " of the stream is not a routeguide.Point")));
      return;
    }
    if (!IsValidPoint(*point)) {
      EndEarlyLocked(ToGrpcStatus(ValidatePoint(*point)));
      return;
    }
    TouchLocked();
    membership_.CountIn();
    ++point_count_;
    if (env_.store->Contains(*point)) ++feature_count_;
    route_length_.Add(*point);
    reader_.Read(&incoming_, Post(Event::kReadDone));
  }

  bool StoppableLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return state_ == State::kReading;
  }

  // Ends the call with an error, whether or not a Read is pending (a bad
  // point ends it between Reads; an alarm, with one pending).
  void EndEarlyLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    state_ = State::kClosing;
    StopIdleClockLocked();
    reader_.FinishWithError(Outcome(status), Post(Event::kFinishSent));
  }

  RouteSummary Summary() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return MakeRouteSummary(point_count_, feature_count_, route_length_.meters(),
                            start_);
  }

  // Raw: see wire_messages.h.
  grpc::ServerAsyncReader<grpc::ByteBuffer, grpc::ByteBuffer> reader_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kAwaitingRequest;
  grpc::ByteBuffer incoming_ ABSL_GUARDED_BY(mu_);  // Filled by the pending Read.
  absl::Time start_ ABSL_GUARDED_BY(mu_);
  uint64_t point_count_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t feature_count_ ABSL_GUARDED_BY(mu_) = 0;
  RouteLength route_length_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

void SpawnRecordRouteCall(CallEnvironment& env,
                          grpc::ServerCompletionQueue* cq) {
  RecordRouteCall::Spawn(env, cq);
}

}  // namespace routeguide
