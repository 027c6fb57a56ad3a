#ifndef ROUTEGUIDE_SERVER_IDLE_SWEEP_H_
#define ROUTEGUIDE_SERVER_IDLE_SWEEP_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/alarm.h"
#include "grpcpp/completion_queue.h"
#include "stream_registry.h"
#include "tagged_call.h"

namespace routeguide {

// The server's idle sweep (StreamRegistry::EndIdle) every `period`, run by
// a completion queue's pollers when an alarm on that queue goes off: no
// thread of its own, which took 0.1-0.2 ms off a start-up on one core
// (docs/benchmarks.md, run W).
//
// The alarm's tag is this object. It is posted by Start, and again by each
// pass until Stop; every posted tag comes back exactly once, and after
// Stop either way (cancelled, or already gone off), starting no pass. The
// queue's shutdown waits for it, so the object must outlive the draining
// of its queue.
//
// What it costs that queue: one tag always pending (Debian's gRPC scans
// the pending tags at each completion, stream_timers.h; one is in the
// noise of the instruction check, where an alarm per idle stream was not),
// and its poller busy for each pass, a try-lock and a time comparison per
// stream, `--stream_idle_timeout` / 8 apart.
class IdleSweep final : public CompletionTag {
 public:
  // `cq` must be polled until it has been drained after Stop.
  IdleSweep(StreamRegistry* streams, grpc::CompletionQueue* cq,
            absl::Duration period);
  IdleSweep(const IdleSweep&) = delete;
  IdleSweep& operator=(const IdleSweep&) = delete;

  // Sets the first alarm.
  void Start() ABSL_LOCKS_EXCLUDED(mu_);
  // No pass starts after this returns (one under way may still be running;
  // it sets no alarm), and the alarm set, if any, is cancelled.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  void OnComplete(bool ok) override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Sets the alarm for the next pass, unless stopped.
  void ArmLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  StreamRegistry* const streams_;
  grpc::CompletionQueue* const cq_;
  const absl::Duration period_;

  absl::Mutex mu_;
  // Set and cancelled only under mu_, so that Stop cannot miss an alarm a
  // pass is setting.
  grpc::Alarm alarm_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_IDLE_SWEEP_H_
