#ifndef ROUTEGUIDE_SERVER_STREAM_TIMERS_H_
#define ROUTEGUIDE_SERVER_STREAM_TIMERS_H_

#include <optional>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/alarm.h"
#include "grpcpp/completion_queue.h"

namespace routeguide {

// The two alarms of a streaming call (see streaming_server_call.h). Each is
// armed only when its event is due, to fire at once, and so hands the event
// to the call's own queue:
//  - idle (RecordRoute, RouteChat, reflection): the server's idle sweep
//    (StreamRegistry::EndIdle) found the client has made no progress for
//    the idle timeout; the call ends with DEADLINE_EXCEEDED, so idle
//    streams cannot pin memory;
//  - stop (every streaming call): shutdown (StreamRegistry::StopAll)
//    ends the stream with UNAVAILABLE before gRPC would cut it off.
// Why not an idle alarm per call, set for the time the timeout runs out:
// Debian's gRPC is built with its debug checks, which scan every tag
// pending on a queue at each completion, so each stream's long-pending
// alarm slowed every call on its queue (GetFeature at 64 in flight lost a
// third of its rate beside 2,000 idle RouteChats; docs/benchmarks.md).
// The alarms are made on first use: most calls never need one.
// Used only under the call's lock. The call posts (counts) each tag it
// hands in and handles the events; every armed alarm comes back once,
// ok == false when cancelled.
class StreamTimers {
 public:
  explicit StreamTimers(absl::Duration idle_timeout)
      : idle_timeout_(idle_timeout) {}

  // Constant: may be read without the call's lock.
  bool idle_enabled() const { return idle_timeout_ != absl::InfiniteDuration(); }
  bool idle_armed() const { return idle_armed_; }
  bool stop_armed() const { return stop_armed_; }

  // The client made progress (sent a message, or for RouteChat took a
  // reply): the idle clock starts again.
  void Touch() { last_activity_ = absl::Now(); }

  // Whether the idle alarm should be armed: no progress for the whole
  // timeout by `now`, and not armed already.
  bool IdleDue(absl::Time now) const {
    return idle_enabled() && !idle_armed_ && now - last_activity_ >= idle_timeout_;
  }
  void ArmIdle(grpc::CompletionQueue* cq, void* tag) {
    idle_armed_ = true;
    if (!idle_) idle_.emplace();
    idle_->Set(cq, absl::ToChronoTime(absl::Now()), tag);
  }
  // On the idle event: whether the stream is still idle (it may have made
  // progress since the sweep armed the alarm).
  bool IdleFired() {
    idle_armed_ = false;
    return absl::Now() - last_activity_ >= idle_timeout_;
  }
  // When the call ends: brings an armed idle tag back now.
  void CancelIdle() {
    if (idle_armed_) idle_->Cancel();
  }

  void ArmStop(grpc::CompletionQueue* cq, void* tag) {
    stop_armed_ = true;
    if (!stop_) stop_.emplace();
    stop_->Set(cq, absl::ToChronoTime(absl::Now()), tag);
  }
  void StopFired() { stop_armed_ = false; }

  absl::Duration idle_timeout() const { return idle_timeout_; }

 private:
  const absl::Duration idle_timeout_;
  absl::Time last_activity_ = absl::Now();
  std::optional<grpc::Alarm> idle_;
  std::optional<grpc::Alarm> stop_;
  bool idle_armed_ = false;
  bool stop_armed_ = false;
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_STREAM_TIMERS_H_
