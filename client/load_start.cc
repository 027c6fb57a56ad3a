#include "load_start.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "load_options.h"

namespace routeguide {

absl::Status WaitForStartAt(absl::Time start_at, const std::atomic<bool>& interrupt) {
  const std::string when = FormatRfc3339Utc(start_at);
  const absl::Duration left = start_at - absl::Now();
  if (left <= absl::ZeroDuration()) {
    std::fprintf(stderr,
                 "routeguide-client: --start_at=%s passed %s ago, while "
                 "connecting; starting now\n",
                 when.c_str(), absl::FormatDuration(-left).c_str());
    return absl::OkStatus();
  }
  std::fprintf(stderr, "routeguide-client: waiting %s, until %s (--start_at), to start\n",
               absl::FormatDuration(absl::Trunc(left, absl::Milliseconds(1))).c_str(),
               when.c_str());
  std::fflush(stderr);
  // Short sleeps: a signal must end the wait soon, and the last one ends
  // right at the time rather than a whole step after it.
  for (absl::Duration rest = left; rest > absl::ZeroDuration();
       rest = start_at - absl::Now()) {
    if (interrupt.load(std::memory_order_relaxed)) {
      return absl::CancelledError(
          absl::StrCat("interrupted while waiting for --start_at=", when));
    }
    absl::SleepFor(std::min(rest, absl::Milliseconds(20)));
  }
  return absl::OkStatus();
}

}  // namespace routeguide
