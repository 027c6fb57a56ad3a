#ifndef ROUTEGUIDE_CLIENT_LOAD_START_H_
#define ROUTEGUIDE_CLIENT_LOAD_START_H_

#include <atomic>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace routeguide {

// Waits for the wall clock to reach `start_at` (--start_at), saying so on
// stderr, and returns as close after it as the kernel wakes the thread
// (well under a millisecond), so that generators given the same time begin
// together. CANCELLED when `interrupt` is set first (checked every 20 ms).
// A time that has already passed (connecting took longer than the time
// left) is reported on stderr and the run starts at once: its report's
// started_at shows how late.
absl::Status WaitForStartAt(absl::Time start_at, const std::atomic<bool>& interrupt);

}  // namespace routeguide

#endif  // ROUTEGUIDE_CLIENT_LOAD_START_H_
