#ifndef ROUTEGUIDE_SERVER_PROCESS_MEMORY_H_
#define ROUTEGUIDE_SERVER_PROCESS_MEMORY_H_

#include <cstddef>

namespace routeguide {

// Hands freed heap memory back to the system after a wave: glibc keeps
// what a burst of calls, connections or buffered messages freed, so RSS
// would stay at the burst's peak. MaybeTrim trims once the heap's free
// bytes have grown kTrimAfterFreedBytes above their lowest since the last
// trim; a trim walks the heap under the allocator's locks, so it is meant
// for a periodic tick, not every event. Not thread-safe.
class HeapTrimmer {
 public:
  static constexpr size_t kTrimAfterFreedBytes = 16 * 1024 * 1024;

  HeapTrimmer();
  void MaybeTrim();

 private:
  size_t low_;
};

// The process's resident set size, from /proc; -1 when unknown.
long ResidentKiB();

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_PROCESS_MEMORY_H_
