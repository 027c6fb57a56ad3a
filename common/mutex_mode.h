#ifndef ROUTEGUIDE_COMMON_MUTEX_MODE_H_
#define ROUTEGUIDE_COMMON_MUTEX_MODE_H_

#include "absl/synchronization/mutex.h"

namespace routeguide {

// Debian builds abseil without NDEBUG, which leaves absl::Mutex's deadlock
// detector on: every Lock and Unlock then updates one process-wide
// lock-order graph under a global lock. gRPC's own mutexes are absl::Mutex
// too, so this cost about a tenth of the server's CPU in a GetFeature
// profile. The binaries turn it off first thing; the tests leave it on,
// where it catches lock-order inversions.
inline void DisableMutexDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace routeguide

#endif  // ROUTEGUIDE_COMMON_MUTEX_MODE_H_
