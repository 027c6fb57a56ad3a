#include "process_memory.h"

#include <malloc.h>

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
  return Heap{[] { return mallinfo2().fordblks; }, [] { malloc_trim(0); }};
}

HeapTrimmer::HeapTrimmer(absl::Duration interval, Heap heap)
    : interval_(interval), heap_(std::move(heap)), low_(heap_.free_bytes()) {}

absl::Duration HeapTrimmer::tick_interval() const {
  return interval_ > absl::ZeroDuration() ? interval_ : absl::Hours(1);
}

bool HeapTrimmer::OnTick() {
  if (interval_ <= absl::ZeroDuration()) return false;
  const size_t free_now = heap_.free_bytes();
  low_ = std::min(low_, free_now);
  if (free_now - low_ < kTrimAfterFreedBytes) return false;
  TrimNow();
  return true;
}

void HeapTrimmer::TrimNow() {
  heap_.trim();
  // Trimmed pages still count as free to the allocator: measure from here.
  low_ = heap_.free_bytes();
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
