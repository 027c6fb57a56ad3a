#ifndef ROUTEGUIDE_SERVER_STREAM_TIMERS_H_
#define ROUTEGUIDE_SERVER_STREAM_TIMERS_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/alarm.h"
#include "grpcpp/completion_queue.h"

namespace routeguide {

// The two alarms of a streaming call (see streaming_server_call.h):
//  - idle (RecordRoute, RouteChat): ends the stream with DEADLINE_EXCEEDED
//    when the client has made no progress for the idle timeout, so idle
//    streams cannot pin memory;
//  - stop (all three streaming calls): set by shutdown (through
//    StreamRegistry) to end the stream with UNAVAILABLE before gRPC would
//    cut it off.
// Used only under the call's lock. The call posts (counts) each tag it
// hands in and handles the events; every armed alarm comes back once,
// ok == false when cancelled.
class StreamTimers {
 public:
  explicit StreamTimers(absl::Duration idle_timeout)
      : idle_timeout_(idle_timeout) {}

  bool idle_enabled() const { return idle_timeout_ != absl::InfiniteDuration(); }
  bool idle_armed() const { return idle_armed_; }
  bool stop_armed() const { return stop_armed_; }

  // The client made progress (sent a message, or for RouteChat took a
  // reply): the idle clock starts again. (The alarm
  // is not moved; when it fires early it is set again for the new time.)
  void Touch() { last_activity_ = absl::Now(); }

  void ArmIdle(grpc::CompletionQueue* cq, void* tag) {
    idle_armed_ = true;
    idle_.Set(cq, absl::ToChronoTime(last_activity_ + idle_timeout_), tag);
  }
  // On the idle event: whether the stream has really been idle that long.
  bool IdleFired() {
    idle_armed_ = false;
    return absl::Now() - last_activity_ >= idle_timeout_;
  }
  // When the call ends: brings the idle tag back now rather than later.
  void CancelIdle() {
    if (idle_armed_) idle_.Cancel();
  }

  void ArmStop(grpc::CompletionQueue* cq, void* tag) {
    stop_armed_ = true;
    stop_.Set(cq, absl::ToChronoTime(absl::Now()), tag);
  }
  void StopFired() { stop_armed_ = false; }

  absl::Duration idle_timeout() const { return idle_timeout_; }

 private:
  const absl::Duration idle_timeout_;
  absl::Time last_activity_ = absl::Now();
  grpc::Alarm idle_;
  grpc::Alarm stop_;
  bool idle_armed_ = false;
  bool stop_armed_ = false;
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_STREAM_TIMERS_H_
