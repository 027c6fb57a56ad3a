// CallTags: tags that name a call and an operation, and the count of what
// is in flight.
#include <cstddef>
#include <set>

#include "call_tags.h"
#include "catch2/catch.hpp"

namespace routeguide {
namespace {

enum class Op { kStart, kRead, kWrite, kFinish, kCount };
using Tags = CallTags<Op, static_cast<int>(Op::kCount)>;

TEST_CASE("CallTags names the call and the operation of each tag",
          "[call_tags]") {
  Tags tags;
  std::set<void*> seen;
  for (size_t call : {size_t{0}, size_t{1}, size_t{7}, size_t{123456}}) {
    for (Op op : {Op::kStart, Op::kRead, Op::kWrite, Op::kFinish}) {
      void* tag = tags.Post(call, op);
      CHECK(tag != nullptr);
      CHECK(seen.insert(tag).second);  // Every tag differs.
      const Tags::Completion completion = tags.Complete(tag);
      CHECK(completion.call == call);
      CHECK(completion.op == op);
    }
  }
  CHECK(tags.InFlight() == 0);
}

TEST_CASE("CallTags counts operations in flight by call and by kind",
          "[call_tags]") {
  Tags tags;
  void* read0 = tags.Post(0, Op::kRead);
  void* write0 = tags.Post(0, Op::kWrite);
  void* read5 = tags.Post(5, Op::kRead);
  CHECK(tags.InFlight() == 3);
  CHECK(tags.InFlight(Op::kRead) == 2);
  CHECK(tags.InFlight(Op::kWrite) == 1);
  CHECK(tags.InFlight(Op::kFinish) == 0);
  CHECK(tags.InFlight(0, Op::kWrite));
  CHECK_FALSE(tags.InFlight(5, Op::kWrite));
  CHECK_FALSE(tags.AnyInFlight(3));
  CHECK_FALSE(tags.AnyInFlight(99));  // Never posted.

  tags.Complete(write0);
  CHECK_FALSE(tags.InFlight(0, Op::kWrite));
  CHECK(tags.AnyInFlight(0));
  tags.Complete(read0);
  CHECK_FALSE(tags.AnyInFlight(0));
  CHECK(tags.InFlight(Op::kRead) == 1);
  tags.Complete(read5);
  CHECK(tags.InFlight() == 0);
  CHECK_FALSE(tags.AnyInFlight(5));
}

}  // namespace
}  // namespace routeguide
