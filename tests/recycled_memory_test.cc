// Call objects' memory kept per thread (common/recycled_memory.h), as
// TaggedCall's new and delete use it.
#include <malloc.h>

#include <cstdint>
#include <thread>
#include <vector>

#include "catch2/catch.hpp"
#include "recycled_memory.h"
#include "tagged_call.h"

namespace routeguide {
namespace {

enum class BlobEvent : uint8_t { kOnly, kCount };

// A call larger than any server call object, past glibc's per-thread cache.
class BlobCall final : public TaggedCall<BlobCall, BlobEvent> {
 public:
  ~BlobCall() override = default;
  void ProceedLocked(BlobEvent /*event*/, bool /*ok*/) {}

  char payload[4096] = {};
};

using Memory = RecycledMemory<BlobCall>;

// Deletes whatever this thread keeps, so each case starts from nothing.
void EmptyThisThread() {
  while (Memory::KeptOnThisThread() > 0) {
    ::operator delete(Memory::Allocate(sizeof(BlobCall)));  // Past the cache.
  }
}

size_t HeapInUse() { return mallinfo2().uordblks; }

TEST_CASE("a deleted call's memory is kept for the next call of its kind",
          "[recycled_memory]") {
  EmptyThisThread();
  if (!Memory::kRecycles) {  // AddressSanitizer: plain new and delete.
    delete new BlobCall;
    CHECK(Memory::KeptOnThisThread() == 0);
    return;
  }

  SECTION("the same block comes back on the same thread") {
    auto* first = new BlobCall;
    void* block = first;
    delete first;
    CHECK(Memory::KeptOnThisThread() == 1);
    auto* second = new BlobCall;
    CHECK(static_cast<void*>(second) == block);
    CHECK(Memory::KeptOnThisThread() == 0);
    delete second;
  }

  SECTION("a thread keeps at most kKeptPerThread blocks") {
    std::vector<BlobCall*> calls;
    for (int i = 0; i < Memory::kKeptPerThread + 4; ++i) {
      calls.push_back(new BlobCall);
    }
    for (BlobCall* call : calls) delete call;
    CHECK(Memory::KeptOnThisThread() == Memory::kKeptPerThread);
    // The kept blocks are the first ones deleted, handed out last first.
    std::vector<BlobCall*> again;
    for (int i = 0; i < Memory::kKeptPerThread; ++i) {
      again.push_back(new BlobCall);
      CHECK(again.back() == calls[Memory::kKeptPerThread - 1 - i]);
    }
    CHECK(Memory::KeptOnThisThread() == 0);
    for (BlobCall* call : again) delete call;
  }

  SECTION("blocks of another size are not kept") {
    Memory::Free(::operator new(64), 64);
    CHECK(Memory::KeptOnThisThread() == 0);
  }

  SECTION("blocks deleted on another thread go back to malloc when it ends") {
    // A thread's first malloc gives it an arena of glibc's for good: let
    // one thread pay for that before measuring.
    std::thread([] { delete new BlobCall; }).join();
    std::vector<BlobCall*> calls;
    for (int i = 0; i < Memory::kKeptPerThread; ++i) {
      calls.push_back(new BlobCall);
    }
    const size_t in_use_with_calls = HeapInUse();
    int kept_there = -1;
    std::thread deleter([&] {
      for (BlobCall* call : calls) delete call;
      kept_there = Memory::KeptOnThisThread();
    });
    deleter.join();
    CHECK(kept_there == Memory::kKeptPerThread);
    CHECK(Memory::KeptOnThisThread() == 0);
    // The thread's cache was freed when it ended. mallinfo2 sees glibc's
    // heap only: with another malloc preloaded there is nothing to compare.
    if (in_use_with_calls >= Memory::kKeptPerThread * sizeof(BlobCall)) {
      CHECK(HeapInUse() + Memory::kKeptPerThread * sizeof(BlobCall) <=
            in_use_with_calls);
    }
  }
  EmptyThisThread();
}

}  // namespace
}  // namespace routeguide
