// --start_at: parsing (client/load_options.h) and the wait itself
// (client/load_start.h).
#include "load_start.h"

#include <atomic>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "load_options.h"
#include "test_util.h"

namespace routeguide {
namespace {

absl::Time At(const char* rfc3339) {
  absl::Time t;
  std::string error;
  REQUIRE(absl::ParseTime(absl::RFC3339_full, rfc3339, &t, &error));
  return t;
}

TEST_CASE("ParseStartAt takes RFC 3339 times up to an hour ahead", "[start_at]") {
  const absl::Time now = At("2026-12-02T14:00:00Z");
  SECTION("UTC, an offset, fractional seconds") {
    auto utc = ParseStartAt("2026-12-02T14:00:05Z", now);
    REQUIRE(utc.ok());
    CHECK(*utc == now + absl::Seconds(5));
    auto offset = ParseStartAt("2026-12-02T15:30:00.250+01:00", now);
    REQUIRE(offset.ok());
    CHECK(*offset == now + absl::Minutes(30) + absl::Milliseconds(250));
    auto hour = ParseStartAt("2026-12-02T15:00:00Z", now);
    CHECK(hour.ok());  // Exactly an hour ahead is still allowed.
  }
  SECTION("refused: past, now, too far ahead, malformed") {
    for (const char* bad :
         {"2026-12-02T13:59:59Z", "2026-12-02T14:00:00Z", "2026-12-02T15:00:00.001Z",
          "2026-12-03T14:00:05Z", "2026-12-02T14:00:05", "2026-12-02 14:00:05Z",
          "14:00:05", "", "now", "2026-12-02T14:00:05Zjunk"}) {
      INFO(bad);
      auto parsed = ParseStartAt(bad, now);
      CHECK(absl::IsInvalidArgument(parsed.status()));
      CHECK_THAT(std::string(parsed.status().message()), Catch::Contains("--start_at"));
    }
  }
}

TEST_CASE("WaitForStartAt returns right at the time, or when interrupted",
          "[start_at]") {
  std::atomic<bool> interrupt{false};
  SECTION("at the time") {
    const absl::Time start_at = absl::Now() + absl::Milliseconds(300);
    REQUIRE(WaitForStartAt(start_at, interrupt).ok());
    const absl::Time woke = absl::Now();
    CHECK(woke >= start_at);
    // A busy 2-core CI host.
    CHECK(woke - start_at < kSanitizerSlowdown * absl::Milliseconds(50));
  }
  SECTION("a time already passed: at once") {
    const absl::Time before = absl::Now();
    REQUIRE(WaitForStartAt(before - absl::Seconds(1), interrupt).ok());
    CHECK(absl::Now() - before < kSanitizerSlowdown * absl::Milliseconds(50));
  }
  SECTION("interrupted: CANCELLED, soon") {
    std::thread signaller([&interrupt] {
      absl::SleepFor(absl::Milliseconds(100));
      interrupt.store(true);
    });
    const absl::Time before = absl::Now();
    const absl::Status waited = WaitForStartAt(before + absl::Seconds(30), interrupt);
    signaller.join();
    CHECK(absl::IsCancelled(waited));
    CHECK(absl::Now() - before < absl::Seconds(1));
  }
}

}  // namespace
}  // namespace routeguide
