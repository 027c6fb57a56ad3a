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
  // The process's resident bytes, to see what a trim handed back; 0 when
  // unknown.
  std::function<size_t()> resident_bytes;
};
Heap GlibcHeap();

// The server's memory-trim policy: hands freed heap memory back to the
// system after a wave. glibc keeps what a burst of calls, connections or
// buffered messages freed, so RSS would stay at the burst's peak. A trim
// walks the heap under the allocator's locks, so it is meant for a
// periodic tick (OnTick every `interval`), not every event. A tick trims
// when either
//  - the heap's free bytes grew kTrimAfterFreedBytes above their lowest
//    since the last trim: a burst ended; or
//  - the heap holds at least kTrimAfterFreedBytes free and a retry is due.
// Retries exist because free bytes do not say which pages can go back: a
// page goes back only once no live chunk sits on it, so a trim in the
// middle of a release, or before the last small chunks of a burst (a
// client's connection, a call) are freed, leaves pages that a later trim
// returns while free bytes barely move (seen in CI after waves of 5,000
// connections: 28 MiB stayed resident, free bytes never grew the 16 MiB
// that would trim again, and a SIGUSR1 trim handed it back). A trim that
// handed back kUsefulTrimBytes or more is retried on the next tick; one
// that did not doubles the wait, up to kMaxRetryTicks, so a quiet heap
// costs one trim in kMaxRetryTicks ticks (a retry over 90 MiB of free
// heap measured 2-5 ms). A zero interval never trims on a tick. Not
// thread-safe.
class HeapTrimmer {
 public:
  static constexpr size_t kTrimAfterFreedBytes = 16 * 1024 * 1024;
  static constexpr size_t kUsefulTrimBytes = 1024 * 1024;
  static constexpr int kMaxRetryTicks = 16;

  explicit HeapTrimmer(absl::Duration interval, Heap heap = GlibcHeap());

  // How long the caller may wait before the next OnTick (an hour when
  // ticks do nothing, so a loop that also waits for signals stays simple).
  absl::Duration tick_interval() const;
  // One interval has passed: trims if a burst ended or a retry is due.
  // Returns whether it trimmed.
  bool OnTick();
  // Trims at once (after loading the database, before a status report).
  void TrimNow();

 private:
  const absl::Duration interval_;
  const Heap heap_;
  size_t low_;  // The fewest free bytes seen since the last trim.
  int ticks_since_trim_ = 0;
  // Ticks after a trim before the next retry; the longest until a first
  // trim says more.
  int retry_ticks_ = kMaxRetryTicks;
};

// Bytes the program holds from the allocator (glibc's, or ASan's in a
// sanitized build): what is in use, apart from what the allocator keeps
// free or could not hand back.
size_t HeapInUseBytes();

// The process's resident set size, from /proc; -1 when unknown.
long ResidentKiB();

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_PROCESS_MEMORY_H_
