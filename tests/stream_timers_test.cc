// StreamTimers, the idle and stop alarms of a streaming call, on a real
// completion queue.
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "grpcpp/completion_queue.h"
#include "stream_timers.h"

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

void ShutDownAndDrain(grpc::CompletionQueue& cq) {
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
}

int idle_tag = 0;
int stop_tag = 0;

TEST_CASE("An infinite idle timeout turns the idle alarm off",
          "[stream_timers]") {
  CHECK(!StreamTimers(absl::InfiniteDuration()).idle_enabled());
  CHECK(StreamTimers(absl::Seconds(1)).idle_enabled());
}

TEST_CASE("The idle alarm fires once the timeout has passed with no "
          "activity", "[stream_timers]") {
  grpc::CompletionQueue cq;
  {
    StreamTimers timers(absl::Milliseconds(50));
    timers.Touch();
    timers.ArmIdle(&cq, &idle_tag);
    CHECK(timers.idle_armed());
    const Completion fired = Next(cq);
    REQUIRE(fired.arrived);
    CHECK(fired.tag == &idle_tag);
    CHECK(fired.ok);
    CHECK(timers.IdleFired());
    CHECK(!timers.idle_armed());
  }
  ShutDownAndDrain(cq);
}

TEST_CASE("Activity after the idle alarm was set makes its firing early: "
          "not idle", "[stream_timers]") {
  grpc::CompletionQueue cq;
  {
    StreamTimers timers(absl::Seconds(1));
    timers.Touch();
    timers.ArmIdle(&cq, &idle_tag);
    // Halfway to the alarm, the client sends something.
    absl::SleepFor(absl::Milliseconds(500));
    timers.Touch();
    const Completion fired = Next(cq);
    REQUIRE(fired.arrived);
    CHECK(fired.ok);
    CHECK(!timers.IdleFired());  // Set again by the call, for the new time.
  }
  ShutDownAndDrain(cq);
}

TEST_CASE("Cancelling the idle alarm brings its tag back at once, not ok",
          "[stream_timers]") {
  grpc::CompletionQueue cq;
  {
    StreamTimers timers(absl::Hours(1));
    timers.Touch();
    timers.ArmIdle(&cq, &idle_tag);
    timers.CancelIdle();
    const Completion cancelled = Next(cq);
    REQUIRE(cancelled.arrived);
    CHECK(cancelled.tag == &idle_tag);
    CHECK(!cancelled.ok);
    timers.IdleFired();
    CHECK(!timers.idle_armed());
    timers.CancelIdle();  // Not armed: nothing to bring back.
  }
  ShutDownAndDrain(cq);
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
  ShutDownAndDrain(cq);
}

}  // namespace
}  // namespace routeguide
