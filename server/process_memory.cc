#include "process_memory.h"

#include <malloc.h>

#include "sanitizers.h"
#if ROUTEGUIDE_ASAN
#include <sanitizer/allocator_interface.h>
#endif

#include <algorithm>
#include <fstream>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"

namespace routeguide {

Heap GlibcHeap() {
  return Heap{[] { return mallinfo2().fordblks; }, [] { malloc_trim(0); },
              [] {
                const long kib = ResidentKiB();
                return kib > 0 ? static_cast<size_t>(kib) * 1024 : size_t{0};
              }};
}

HeapTrimmer::HeapTrimmer(absl::Duration interval, Heap heap)
    : interval_(interval), heap_(std::move(heap)), low_(heap_.free_bytes()) {}

absl::Duration HeapTrimmer::tick_interval() const {
  return interval_ > absl::ZeroDuration() ? interval_ : absl::Hours(1);
}

bool HeapTrimmer::OnTick() {
  if (interval_ <= absl::ZeroDuration()) return false;
  ++ticks_since_trim_;
  const size_t free_now = heap_.free_bytes();
  low_ = std::min(low_, free_now);
  const bool burst_ended = free_now - low_ >= kTrimAfterFreedBytes;
  const bool retry_due =
      free_now >= kTrimAfterFreedBytes && ticks_since_trim_ >= retry_ticks_;
  if (!burst_ended && !retry_due) return false;
  TrimNow();
  return true;
}

void HeapTrimmer::TrimNow() {
  const size_t resident_before = heap_.resident_bytes();
  heap_.trim();
  const size_t resident_after = heap_.resident_bytes();
  // Trimmed pages still count as free to the allocator: measure from here.
  low_ = heap_.free_bytes();
  ticks_since_trim_ = 0;
  const bool useful = resident_after < resident_before &&
                      resident_before - resident_after >= kUsefulTrimBytes;
  retry_ticks_ = useful ? 1 : std::min(2 * retry_ticks_, kMaxRetryTicks);
}

size_t HeapInUseBytes() {
#if ROUTEGUIDE_ASAN
  return __sanitizer_get_current_allocated_bytes();
#else
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
#endif
}

long ResidentKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (absl::StartsWith(line, "VmRSS:")) {
      long kib = -1;
      return absl::SimpleAtoi(absl::StripAsciiWhitespace(
                                  absl::StripSuffix(line.substr(6), "kB")),
                              &kib)
                 ? kib
                 : -1;
    }
  }
  return -1;
}

}  // namespace routeguide
