#ifndef ROUTEGUIDE_SERVER_STREAMING_SERVER_CALL_H_
#define ROUTEGUIDE_SERVER_STREAMING_SERVER_CALL_H_

#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server_call.h"
#include "stream_registry.h"
#include "stream_timers.h"

namespace routeguide {

// Whether a call's events include kIdleAlarm (ListFeatures has no idle
// timeout, so no idle event).
template <typename Event, typename = void>
struct HasIdleAlarm : std::false_type {};
template <typename Event>
struct HasIdleAlarm<Event, std::void_t<decltype(Event::kIdleAlarm)>>
    : std::true_type {};

// What the streaming calls (ListFeatures, RecordRoute, RouteChat, server
// reflection) share:
// membership in the stream registry, so that shutdown can end them with
// UNAVAILABLE rather than have gRPC reset them and the idle sweep can end
// them with DEADLINE_EXCEEDED, and the two alarms of StreamTimers by which
// those requests reach the call's queue (stop, and idle where the call has
// an idle timeout).
//
// `Call` defines, besides ServerCall's hooks:
//   bool StoppableLocked();   whether the call is live: it can still be
//                             ended early (not yet finishing or closed)
//   void EndEarlyLocked(const grpc::Status&);  ends the live call
//   void EndForShutdownLocked(const grpc::Status&);  optional: how the
//                             stop alarm ends it (default: EndEarlyLocked)
// and has Event::kStopAlarm, and Event::kIdleAlarm if it has an idle
// timeout. Its handler calls OnStopAlarmLocked and OnIdleAlarmLocked.
template <typename Call, typename Event>
class StreamingServerCall : public ServerCall<Call, Event>,
                            public StreamRegistry::Member {
 public:
  // The stop alarm's tag is counted like any other, so the call lives
  // until it comes back.
  // A member always has a tag pending: it leaves the registry, under its
  // own lock, when its last tag comes back (OnLastTagLocked), before any of
  // it is destroyed.
  ABSL_NO_THREAD_SAFETY_ANALYSIS bool TryRequestStop() override {
    if (!this->mu_.TryLock()) return false;
    if (!timers_.stop_armed() && static_cast<Call*>(this)->StoppableLocked()) {
      timers_.ArmStop(this->cq_, this->Post(Event::kStopAlarm));
    }
    this->mu_.Unlock();
    return true;
  }

  // The idle sweep, on its own thread: arms the idle alarm, to fire at
  // once, when the client has made no progress for the timeout.
  ABSL_NO_THREAD_SAFETY_ANALYSIS void TryEndIfIdle(absl::Time now) override {
    if (!timers_.idle_enabled() || !this->mu_.TryLock()) return;
    if constexpr (HasIdleAlarm<Event>::value) {
      if (timers_.IdleDue(now) && static_cast<Call*>(this)->StoppableLocked()) {
        timers_.ArmIdle(this->cq_, this->Post(Event::kIdleAlarm));
      }
    }
    this->mu_.Unlock();
  }

 protected:
  StreamingServerCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq,
                      Method method, absl::Duration idle_timeout)
      : ServerCall<Call, Event>(env, cq, method), timers_(idle_timeout) {}

  friend class TaggedCall<Call, Event>;

  // TaggedCall's hook, as the last tag comes back: the registry must not
  // reach the call once its destruction has begun. Lock order: the call's,
  // then the registry's, as in JoinStreamsLocked.
  void OnLastTagLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(this->mu_) {
    if (in_registry_) this->env_.streams->Remove(this);
    in_registry_ = false;
  }

  // Once the call is admitted: shutdown may now stop it.
  void JoinStreamsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(this->mu_) {
    in_registry_ = true;
    this->env_.streams->Add(this);
  }

  // The call started, or its client made progress: the idle clock starts
  // (again). The idle sweep reads it.
  void TouchLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(this->mu_) { timers_.Touch(); }

  // When the call finishes: brings the idle alarm's tag back now.
  void StopIdleClockLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(this->mu_) {
    timers_.CancelIdle();
  }

  // Event::kStopAlarm: shutdown asked; a live call ends with UNAVAILABLE.
  void OnStopAlarmLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(this->mu_) {
    timers_.StopFired();
    if (static_cast<Call*>(this)->StoppableLocked()) {
      static_cast<Call*>(this)->EndForShutdownLocked(grpc::Status(
          grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
    }
  }

  void EndForShutdownLocked(const grpc::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this->mu_) {
    static_cast<Call*>(this)->EndEarlyLocked(status);
  }

  // Event::kIdleAlarm: a live call idle for the whole timeout ends with
  // DEADLINE_EXCEEDED ("<what> for <timeout>"); one that made progress
  // since the sweep armed the alarm goes on (a later sweep looks again).
  // ok == false: cancelled at the end.
  void OnIdleAlarmLocked(bool ok, absl::string_view what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this->mu_) {
    const bool idle = timers_.IdleFired();
    if (!ok || !idle || !static_cast<Call*>(this)->StoppableLocked()) return;
    static_cast<Call*>(this)->EndEarlyLocked(grpc::Status(
        grpc::StatusCode::DEADLINE_EXCEEDED,
        absl::StrCat(what, " for ", absl::FormatDuration(timers_.idle_timeout()))));
  }

 private:
  StreamTimers timers_;  // Under mu_.
  bool in_registry_ = false;  // Set once, under mu_.
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_STREAMING_SERVER_CALL_H_
