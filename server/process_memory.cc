#include "process_memory.h"

#include <malloc.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"

namespace routeguide {
namespace {

// Free bytes in every arena (pages trimmed or not).
size_t FreeHeapBytes() { return mallinfo2().fordblks; }

}  // namespace

HeapTrimmer::HeapTrimmer() : low_(FreeHeapBytes()) {}

void HeapTrimmer::MaybeTrim() {
  const size_t free_now = FreeHeapBytes();
  low_ = std::min(low_, free_now);
  if (free_now - low_ < kTrimAfterFreedBytes) return;
  malloc_trim(0);
  // Trimmed pages still count as free to the allocator: measure from here.
  low_ = FreeHeapBytes();
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
