#ifndef ROUTEGUIDE_SERVER_PROCESS_MEMORY_H_
#define ROUTEGUIDE_SERVER_PROCESS_MEMORY_H_

#include <cstddef>
#include <functional>

#include "absl/time/time.h"

namespace routeguide {

// The allocator as the trimmer sees it; glibc's by default, a fake in
// tests.
struct Heap {
  // Free bytes in every arena (pages trimmed or not).
  std::function<size_t()> free_bytes;
  // Hands free pages back to the system.
  std::function<void()> trim;
};
Heap GlibcHeap();

// The server's memory-trim policy: hands freed heap memory back to the
// system after a wave. glibc keeps what a burst of calls, connections or
// buffered messages freed, so RSS would stay at the burst's peak. Every
// `interval` (OnTick) it trims once the heap's free bytes have grown
// kTrimAfterFreedBytes above their lowest since the last trim; a trim walks
// the heap under the allocator's locks, so it is meant for a periodic tick,
// not every event. A zero interval never trims on a tick. Not thread-safe.
class HeapTrimmer {
 public:
  static constexpr size_t kTrimAfterFreedBytes = 16 * 1024 * 1024;

  explicit HeapTrimmer(absl::Duration interval, Heap heap = GlibcHeap());

  // How long the caller may wait before the next OnTick (an hour when
  // ticks do nothing, so a loop that also waits for signals stays simple).
  absl::Duration tick_interval() const;
  // One interval has passed: trims if enough was freed. Returns whether
  // it trimmed.
  bool OnTick();
  // Trims at once (after loading the database, before a status report).
  void TrimNow();

 private:
  const absl::Duration interval_;
  const Heap heap_;
  size_t low_;  // The fewest free bytes seen since the last trim.
};

// The process's resident set size, from /proc; -1 when unknown.
long ResidentKiB();

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_PROCESS_MEMORY_H_
