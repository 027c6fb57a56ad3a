// StreamTimers, the idle and stop alarms of a streaming call, on a real
// completion queue.
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "grpcpp/completion_queue.h"
#include "stream_timers.h"
#include "test_util.h"

namespace routeguide {
namespace {

struct Completion {
  bool arrived = false;
  void* tag = nullptr;
  bool ok = false;
};

Completion Next(grpc::CompletionQueue& cq,
                absl::Duration timeout = absl::Seconds(10)) {
  Completion completion;
  completion.arrived =
      cq.AsyncNext(&completion.tag, &completion.ok,
                   absl::ToChronoTime(absl::Now() + timeout)) ==
      grpc::CompletionQueue::GOT_EVENT;
  return completion;
}

int idle_tag = 0;
int stop_tag = 0;

TEST_CASE("An infinite idle timeout turns the idle alarm off",
          "[stream_timers]") {
  StreamTimers never(absl::InfiniteDuration());
  CHECK(!never.idle_enabled());
  CHECK(!never.IdleDue(absl::InfiniteFuture()));
  CHECK(StreamTimers(absl::Seconds(1)).idle_enabled());
}

TEST_CASE("The idle alarm is due once the timeout has passed since the "
          "last activity, and not while it is armed", "[stream_timers]") {
  grpc::CompletionQueue cq;
  {
    StreamTimers timers(absl::Minutes(1));
    timers.Touch();
    const absl::Time touched = absl::Now();
    CHECK(!timers.IdleDue(touched));
    CHECK(!timers.IdleDue(touched + absl::Seconds(30)));
    CHECK(timers.IdleDue(touched + absl::Minutes(2)));
    SECTION("activity starts the clock again") {
      absl::SleepFor(absl::Milliseconds(20));
      timers.Touch();
      // Due a minute after the new activity, not after the first.
      CHECK(!timers.IdleDue(touched + absl::Minutes(1) + absl::Milliseconds(10)));
      CHECK(timers.IdleDue(absl::Now() + absl::Minutes(1)));
    }
    SECTION("armed, it is not due again until it fires") {
      timers.ArmIdle(&cq, &idle_tag);
      CHECK(timers.idle_armed());
      CHECK(!timers.IdleDue(touched + absl::Minutes(2)));
      const Completion fired = Next(cq);
      REQUIRE(fired.arrived);
      CHECK(fired.tag == &idle_tag);
      // It fires at once, long before the minute: the call was active
      // after all, by the time it handles the event.
      CHECK(!timers.IdleFired());
      CHECK(!timers.idle_armed());
      CHECK(timers.IdleDue(touched + absl::Minutes(2)));
    }
  }
  ShutdownAndDrain(cq);
}

TEST_CASE("The idle alarm fires at once, and says idle when no activity "
          "came since", "[stream_timers]") {
  grpc::CompletionQueue cq;
  {
    StreamTimers timers(absl::Milliseconds(50));
    timers.Touch();
    absl::SleepFor(absl::Milliseconds(60));
    REQUIRE(timers.IdleDue(absl::Now()));
    timers.ArmIdle(&cq, &idle_tag);
    const Completion fired = Next(cq, absl::Seconds(5));
    REQUIRE(fired.arrived);
    CHECK(fired.tag == &idle_tag);
    CHECK(fired.ok);
    CHECK(timers.IdleFired());
  }
  ShutdownAndDrain(cq);
}

// Armed to fire at once, the alarm has usually fired by the time of the
// cancel: this pins that the tag comes back once either way, not that the
// cancel itself hastens it.
TEST_CASE("An armed idle alarm, cancelled when the call ends, brings its "
          "tag back exactly once", "[stream_timers]") {
  grpc::CompletionQueue cq;
  {
    StreamTimers timers(absl::Hours(1));
    timers.Touch();
    timers.ArmIdle(&cq, &idle_tag);
    timers.CancelIdle();
    const Completion back = Next(cq);
    REQUIRE(back.arrived);
    CHECK(back.tag == &idle_tag);
    CHECK(!Next(cq, absl::Milliseconds(100)).arrived);
    timers.IdleFired();
    CHECK(!timers.idle_armed());
    timers.CancelIdle();  // Not armed: nothing to bring back.
  }
  ShutdownAndDrain(cq);
}

TEST_CASE("The stop alarm fires at once", "[stream_timers]") {
  grpc::CompletionQueue cq;
  {
    StreamTimers timers(absl::InfiniteDuration());
    CHECK(!timers.stop_armed());
    timers.ArmStop(&cq, &stop_tag);
    CHECK(timers.stop_armed());
    const Completion fired = Next(cq);
    REQUIRE(fired.arrived);
    CHECK(fired.tag == &stop_tag);
    CHECK(fired.ok);
    timers.StopFired();
    CHECK(!timers.stop_armed());
  }
  ShutdownAndDrain(cq);
}

}  // namespace
}  // namespace routeguide
