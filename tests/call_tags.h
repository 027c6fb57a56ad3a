#ifndef ROUTEGUIDE_TESTS_CALL_TAGS_H_
#define ROUTEGUIDE_TESTS_CALL_TAGS_H_

// Completion-queue tags for many client calls that one thread drives from
// one queue (test and benchmark clients): a tag names the call, by its
// index, and the operation, both packed into the tag's value, so nothing is
// allocated per operation. CallTags also counts what is in flight, per call
// and per kind of operation; a completion for an operation that was not
// posted ends the process, since the bookkeeping is then wrong.
//
//   enum class Op { kStart, kRead, kWrite, kFinish };
//   CallTags<Op, 4> tags;
//   call->Read(&reply, tags.Post(index, Op::kRead));
//   ...
//   const auto [index, op] = tags.Complete(tag);
//
// Not thread-safe: the one thread that polls the queue owns it.

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <type_traits>
#include <vector>

namespace routeguide {

template <typename Op, int kOps>
class CallTags {
  static constexpr int kOpBits = 3;
  static_assert(std::is_enum_v<Op>, "Op is an enum numbered 0..kOps-1");
  static_assert(kOps > 0 && kOps <= (1 << kOpBits), "at most 8 operations");

 public:
  struct Completion {
    size_t call;
    Op op;
  };

  // The tag for `op` on call `call`, marked in flight.
  void* Post(size_t call, Op op) {
    if (call >= in_flight_.size()) in_flight_.resize(call + 1);
    const uint8_t bit = Bit(op);
    if ((in_flight_[call] & bit) != 0) {
      Die("an operation posted twice", call, op);
    }
    in_flight_[call] |= bit;
    ++by_op_[Index(op)];
    // call + 1: no tag is null.
    return reinterpret_cast<void*>(((call + 1) << kOpBits) | Index(op));
  }

  // What `tag` (from Post) names; no longer in flight.
  Completion Complete(void* tag) {
    const auto value = reinterpret_cast<uintptr_t>(tag);
    const Completion completion{(value >> kOpBits) - 1,
                                static_cast<Op>(value & ((1u << kOpBits) - 1))};
    const uint8_t bit = Bit(completion.op);
    if (completion.call >= in_flight_.size() ||
        (in_flight_[completion.call] & bit) == 0) {
      Die("a completion for an operation not in flight", completion.call,
          completion.op);
    }
    in_flight_[completion.call] &= static_cast<uint8_t>(~bit);
    --by_op_[Index(completion.op)];
    return completion;
  }

  bool InFlight(size_t call, Op op) const {
    return call < in_flight_.size() && (in_flight_[call] & Bit(op)) != 0;
  }
  bool AnyInFlight(size_t call) const {
    return call < in_flight_.size() && in_flight_[call] != 0;
  }
  // Operations of one kind, or of all kinds, posted and not yet back.
  int InFlight(Op op) const { return by_op_[Index(op)]; }
  int InFlight() const {
    int total = 0;
    for (int count : by_op_) total += count;
    return total;
  }

 private:
  static uintptr_t Index(Op op) { return static_cast<uintptr_t>(op); }
  static uint8_t Bit(Op op) { return static_cast<uint8_t>(1u << Index(op)); }

  [[noreturn]] static void Die(const char* what, size_t call, Op op) {
    std::fprintf(stderr, "CallTags: %s (call %zu, operation %d)\n", what, call,
                 static_cast<int>(op));
    std::abort();
  }

  std::vector<uint8_t> in_flight_;  // By call: one bit per operation.
  std::array<int, kOps> by_op_{};
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_CALL_TAGS_H_
