#ifndef ROUTEGUIDE_COMMON_RECYCLED_MEMORY_H_
#define ROUTEGUIDE_COMMON_RECYCLED_MEMORY_H_

#include <cstddef>
#include <new>

#include "sanitizers.h"

namespace routeguide {

// Memory for objects of type T that come and go by the thousand (call
// objects), kept per thread for the next T. A call object is 2 to 3.5 KiB,
// past glibc's own per-thread cache (up to 1,032 bytes), so every new and
// delete of one went through glibc's bins: 1.1% of a GetFeature's
// instructions on the server (docs/benchmarks.md, levers of round two).
//
// A thread keeps at most kKeptPerThread blocks and frees them when it
// ends. A block freed on another thread than the one that took it simply
// joins that thread's cache (or goes back to malloc when it is full).
// Under AddressSanitizer nothing is kept, so that ASan still sees an
// object used after it was deleted.
template <typename T>
class RecycledMemory {
 public:
  static constexpr int kKeptPerThread = 16;
  static constexpr bool kRecycles = !ROUTEGUIDE_ASAN;

  static void* Allocate(std::size_t size) {
    if (kRecycles && size == sizeof(T) && cache_.count > 0) {
      return cache_.blocks[--cache_.count];
    }
    return ::operator new(size);
  }

  static void Free(void* block, std::size_t size) noexcept {
    if (kRecycles && size == sizeof(T) && cache_.count >= 0 &&
        cache_.count < kKeptPerThread) {
      reaper_.Arm();  // So that the thread frees its blocks when it ends.
      cache_.blocks[cache_.count++] = block;
      return;
    }
    ::operator delete(block);
  }

  // Blocks this thread keeps now (for tests).
  static int KeptOnThisThread() { return cache_.count > 0 ? cache_.count : 0; }

 private:
  // Trivially destructible, so that it can still be read while the thread
  // ends, after the reaper has run (count is then -1: keep nothing more).
  struct Cache {
    void* blocks[kKeptPerThread];
    int count;
  };
  struct Reaper {
    void Arm() {}
    ~Reaper() {
      while (cache_.count > 0) ::operator delete(cache_.blocks[--cache_.count]);
      cache_.count = -1;
    }
  };

  static thread_local Cache cache_;
  static thread_local Reaper reaper_;
};

template <typename T>
thread_local typename RecycledMemory<T>::Cache RecycledMemory<T>::cache_{};
template <typename T>
thread_local typename RecycledMemory<T>::Reaper RecycledMemory<T>::reaper_;

}  // namespace routeguide

#endif  // ROUTEGUIDE_COMMON_RECYCLED_MEMORY_H_
