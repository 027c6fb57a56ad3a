// StreamRegistry: StopAll asks every member, comes back for the busy ones,
// and never asks one that has left; EndIdle asks every member once, with
// the time it was given.
#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "stream_registry.h"

namespace routeguide {
namespace {

// A member that is busy (refuses) `busy_times` times before it accepts.
class FakeStream final : public StreamRegistry::Member {
 public:
  explicit FakeStream(int busy_times = 0) : busy_left_(busy_times) {}

  bool TryRequestStop() override {
    asked_.fetch_add(1);
    if (busy_left_.load() > 0) {
      busy_left_.fetch_sub(1);
      return false;
    }
    stopped_.store(true);
    return true;
  }
  void TryEndIfIdle(absl::Time now) override { idle_checks_.push_back(now); }

  int asked() const { return asked_.load(); }
  bool stopped() const { return stopped_.load(); }
  // The times EndIdle passed, in order (EndIdle runs on the test's thread).
  const std::vector<absl::Time>& idle_checks() const { return idle_checks_; }

 private:
  std::vector<absl::Time> idle_checks_;
  std::atomic<int> busy_left_;
  std::atomic<int> asked_{0};
  std::atomic<bool> stopped_{false};
};

// A member whose lock another thread may hold, as a call's is while it
// handles a completion: it then answers "busy", never blocks.
class LockedStream final : public StreamRegistry::Member {
 public:
  ABSL_NO_THREAD_SAFETY_ANALYSIS bool TryRequestStop() override {
    asked_.fetch_add(1);
    if (!mu_.TryLock()) return false;
    stopped_.store(true);
    mu_.Unlock();
    return true;
  }
  ABSL_NO_THREAD_SAFETY_ANALYSIS void TryEndIfIdle(absl::Time) override {
    if (!mu_.TryLock()) return;
    idle_checked_.store(true);
    mu_.Unlock();
  }

  absl::Mutex mu_;
  std::atomic<bool> idle_checked_{false};
  std::atomic<int> asked_{0};
  std::atomic<bool> stopped_{false};
};

TEST_CASE("StopAll with no streams returns at once", "[stream_registry]") {
  StreamRegistry registry;
  registry.StopAll();
}

TEST_CASE("StopAll asks every stream, and asks the busy ones again until "
          "they accept", "[stream_registry]") {
  StreamRegistry registry;
  FakeStream idle;
  FakeStream busy_twice(2);
  registry.Add(&idle);
  registry.Add(&busy_twice);
  registry.StopAll();
  CHECK(idle.stopped());
  CHECK(busy_twice.stopped());
  CHECK(busy_twice.asked() == 3);
  // Asking again is harmless (TryRequestStop is idempotent), and each
  // round asks everyone.
  CHECK(idle.asked() == 3);
}

TEST_CASE("A stream that has left is not asked", "[stream_registry]") {
  StreamRegistry registry;
  FakeStream staying;
  FakeStream leaving;
  registry.Add(&staying);
  registry.Add(&leaving);
  registry.Remove(&leaving);
  registry.StopAll();
  CHECK(staying.stopped());
  CHECK(leaving.asked() == 0);
  // Removing what is not there is harmless.
  registry.Remove(&leaving);
}

TEST_CASE("StopAll waits, without blocking on it, for a stream whose lock "
          "is held", "[stream_registry]") {
  StreamRegistry registry;
  LockedStream stream;
  registry.Add(&stream);
  std::atomic<bool> returned{false};
  stream.mu_.Lock();
  std::thread stopper([&] {
    registry.StopAll();
    returned.store(true);
  });
  // It keeps asking while the lock is held...
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (stream.asked_.load() < 3 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  CHECK(stream.asked_.load() >= 3);
  CHECK(!returned.load());
  CHECK(!stream.stopped_.load());
  // ...and returns once it gets through.
  stream.mu_.Unlock();
  stopper.join();
  CHECK(returned.load());
  CHECK(stream.stopped_.load());
}

TEST_CASE("EndIdle asks each stream still there once, with the time given",
          "[stream_registry][idle]") {
  const absl::Time t1 = absl::FromUnixSeconds(1000);
  const absl::Time t2 = absl::FromUnixSeconds(1001);
  StreamRegistry registry;
  FakeStream leaving;
  FakeStream staying[2];
  for (FakeStream& stream : staying) registry.Add(&stream);
  registry.Add(&leaving);
  registry.EndIdle(t1);
  registry.Remove(&leaving);
  registry.EndIdle(t2);
  for (const FakeStream& stream : staying) {
    CHECK(stream.idle_checks() == std::vector<absl::Time>{t1, t2});
    // The idle sweep never asks to stop.
    CHECK(stream.asked() == 0);
  }
  CHECK(leaving.idle_checks() == std::vector<absl::Time>{t1});
}

// EndIdle's side only: that it goes on past a member that declines. The
// real calls' try-lock is StreamingServerCall::TryEndIfIdle, and the
// server's idle tests (server_stream_limits_test.cc) end real streams.
TEST_CASE("EndIdle skips, without blocking, a stream whose lock is held",
          "[stream_registry][idle]") {
  StreamRegistry registry;
  LockedStream stream;
  registry.Add(&stream);
  stream.mu_.Lock();
  registry.EndIdle(absl::Now());  // Returns: a busy stream is making progress.
  CHECK(!stream.idle_checked_.load());
  stream.mu_.Unlock();
  registry.EndIdle(absl::Now());
  CHECK(stream.idle_checked_.load());
}

}  // namespace
}  // namespace routeguide
