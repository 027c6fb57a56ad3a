#include "idle_sweep.h"

#include "absl/time/clock.h"

namespace routeguide {

IdleSweep::IdleSweep(StreamRegistry* streams, grpc::CompletionQueue* cq,
                     absl::Duration period)
    : streams_(streams), cq_(cq), period_(period) {}

void IdleSweep::Start() {
  absl::MutexLock lock(&mu_);
  ArmLocked();
}

void IdleSweep::Stop() {
  absl::MutexLock lock(&mu_);
  stopped_ = true;
  // Its tag comes back with ok == false; a no-op when the alarm already
  // went off and its pass is under way (that pass sets no new one).
  alarm_.Cancel();
}

void IdleSweep::OnComplete(bool ok) {
  if (!ok) return;  // Cancelled by Stop: nothing more is posted.
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
  }
  // Without mu_: a pass try-locks every stream and must not hold up Stop.
  streams_->EndIdle(absl::Now());
  absl::MutexLock lock(&mu_);
  ArmLocked();
}

void IdleSweep::ArmLocked() {
  if (stopped_) return;
  // The alarm that went off may be set again once its tag is delivered.
  alarm_.Set(cq_, absl::ToChronoTime(absl::Now() + period_), this);
}

}  // namespace routeguide
