#include "spin_window.h"

#include <vector>

#include "absl/time/time.h"
#include "catch2/catch.hpp"

namespace routeguide {
namespace {

constexpr absl::Duration kMax = absl::Microseconds(100);

absl::Duration Us(int64_t us) { return absl::Microseconds(us); }

// Feeds `waits` over and over, `rounds` times, and returns the polling
// wasted in the last round: the window at the start of each wait it did
// not catch.
absl::Duration WastedInLastRound(SpinWindow& spin,
                                 const std::vector<absl::Duration>& waits,
                                 int rounds) {
  absl::Duration wasted;
  for (int round = 0; round < rounds; ++round) {
    wasted = absl::ZeroDuration();
    for (const absl::Duration waited : waits) {
      if (waited > spin.window()) wasted += spin.window();
      spin.Record(waited);
    }
  }
  return wasted;
}

TEST_CASE("The spin window starts closed and follows the waits it is shown",
          "[spin]") {
  SpinWindow spin(kMax);
  CHECK(spin.window() == absl::ZeroDuration());

  SECTION("a wait within the maximum that it did not catch doubles it, from "
          "the first window up to the maximum") {
    spin.Record(Us(90));
    CHECK(spin.window() == SpinWindow::kFirstSpinWindow);
    spin.Record(Us(90));
    CHECK(spin.window() == 2 * SpinWindow::kFirstSpinWindow);
    for (int i = 0; i < 10; ++i) spin.Record(Us(99));
    CHECK(spin.window() == kMax);
    spin.Record(kMax);  // Caught, just.
    CHECK(spin.window() == kMax);
  }
  SECTION("a wait it caught leaves it as it is") {
    for (int i = 0; i < 3; ++i) spin.Record(Us(90));
    REQUIRE(spin.window() == Us(40));
    spin.Record(Us(40));
    spin.Record(Us(1));
    spin.Record(absl::ZeroDuration());
    CHECK(spin.window() == Us(40));
  }
  SECTION("a wait past the maximum closes it") {
    for (int i = 0; i < 10; ++i) spin.Record(Us(90));
    REQUIRE(spin.window() == kMax);
    spin.Record(kMax + absl::Nanoseconds(1));
    CHECK(spin.window() == absl::ZeroDuration());
    spin.Record(absl::Hours(1));
    CHECK(spin.window() == absl::ZeroDuration());
  }
}

TEST_CASE("A zero maximum never polls", "[spin]") {
  SpinWindow spin(absl::ZeroDuration());
  for (const absl::Duration waited :
       {absl::ZeroDuration(), Us(1), Us(50), absl::Seconds(1)}) {
    spin.Record(waited);
    CHECK(spin.window() == absl::ZeroDuration());
  }
}

TEST_CASE("A maximum below the first window caps it", "[spin]") {
  SpinWindow spin(Us(3));
  spin.Record(Us(2));
  CHECK(spin.window() == Us(3));
}

TEST_CASE("Calls made one at a time settle at a window catching every wait; "
          "calls spread wider than the maximum waste little",
          "[spin]") {
  SpinWindow spin(kMax);
  SECTION("one at a time: the answer 20 us after the request, the next "
          "request 60 us after the answer") {
    const absl::Duration wasted =
        WastedInLastRound(spin, {Us(20), Us(60)}, 10);
    CHECK(wasted == absl::ZeroDuration());
    CHECK(spin.window() >= Us(60));
  }
  SECTION("spread: the next request 1 ms after the answer") {
    // Each call grows the window to its first size for the answer, then
    // polls that long for a request that comes too late.
    const absl::Duration wasted =
        WastedInLastRound(spin, {Us(20), absl::Milliseconds(1)}, 10);
    CHECK(wasted <= SpinWindow::kFirstSpinWindow);
    CHECK(spin.window() == absl::ZeroDuration());
  }
  SECTION("idle: nothing but long waits") {
    CHECK(WastedInLastRound(spin, {absl::Seconds(1)}, 10) ==
          absl::ZeroDuration());
  }
}

}  // namespace
}  // namespace routeguide
