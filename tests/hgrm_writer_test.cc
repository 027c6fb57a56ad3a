// client/hgrm_writer.h: HdrHistogram's percentile-distribution text from
// our histogram, read back as a plotter would.
#include "hgrm_writer.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <string>

#include "catch2/catch.hpp"
#include "hgrm_text.h"
#include "histogram.h"

namespace routeguide {
namespace {

using testing::HgrmText;
using testing::ParseHgrm;

// The row's value, in nanoseconds, is Histogram::Percentile's at the row's
// percentile. The percentile is read back from 12 decimals, so a rank on
// the edge of a bucket may round either way: either neighbour's value is
// accepted, within the 0.5 us the milliseconds are rounded to.
void CheckRowsMatchPercentile(const Histogram& h, const HgrmText& parsed) {
  for (const testing::HgrmRow& row : parsed.rows) {
    INFO("row " << row.fraction << " " << row.value_ms);
    const double value_ns = row.value_ms * 1e6;
    const double percent = row.fraction * 100;
    const double lo = static_cast<double>(h.Percentile(percent - 1e-8)) - 500.5;
    const double hi = static_cast<double>(h.Percentile(percent + 1e-8)) + 500.5;
    CHECK(value_ns >= lo);
    CHECK(value_ns <= hi);
  }
}

TEST_CASE("An .hgrm of many latencies parses and agrees with Percentile",
          "[hgrm]") {
  Histogram h;
  std::mt19937_64 random(7);
  // Log-normal-ish latencies from ~50 us to ~1 s, nanoseconds.
  std::lognormal_distribution<double> latency(std::log(2e6), 1.2);
  for (int i = 0; i < 100000; ++i) {
    h.Record(static_cast<uint64_t>(std::min(latency(random), 1e9)));
  }
  const HgrmText parsed = ParseHgrm(FormatHgrm(h));
  CHECK(parsed.total == h.count());
  CHECK(parsed.rows.back().count == h.count());
  CHECK(parsed.max_ms == Approx(h.max() / 1e6).margin(0.0005));
  CHECK(parsed.mean_ms == Approx(h.mean() / 1e6).margin(0.0005));
  CHECK(parsed.buckets == 57);
  CHECK(parsed.sub_buckets == 256);
  CheckRowsMatchPercentile(h, parsed);
  // The tail: rows up to the last half-distance the 100000 values reach.
  CHECK(parsed.rows.size() > 60);
  CHECK(parsed.rows.size() < 200);
}

TEST_CASE("The .hgrm rows step as HdrHistogram's, 5 ticks per half distance",
          "[hgrm]") {
  Histogram h;
  // 1 ms to 10 s, evenly: every percentile has a value of its own.
  for (uint64_t ms = 1; ms <= 10000; ++ms) h.Record(ms * 1000000);
  const HgrmText parsed = ParseHgrm(FormatHgrm(h));
  // 10% steps to 50%, 5% to 75%, 2.5% to 87.5%, 1.25% to 93.75%, ...
  const double expected[] = {0,    0.1,   0.2,    0.3, 0.4,     0.5,     0.55,
                             0.6,  0.65,  0.7,    0.75, 0.775,  0.8,     0.825,
                             0.85, 0.875, 0.8875, 0.9, 0.9125, 0.925, 0.9375};
  REQUIRE(parsed.rows.size() > std::size(expected));
  for (size_t i = 0; i < std::size(expected); ++i) {
    INFO("row " << i);
    CHECK(parsed.rows[i].fraction == Approx(expected[i]).margin(1e-12));
    CHECK(std::stod(parsed.rows[i].inverse) ==
          Approx(1 / (1 - expected[i])).margin(0.006));
  }
  CHECK(parsed.rows[5].value_ms == Approx(5000).epsilon(0.004));
  // Counted to the end of the median's bucket, 2^25 ns (33 values) wide.
  CHECK(parsed.rows[5].count >= 5000);
  CHECK(parsed.rows[5].count <= 5034);
  // Evenly spread 1..N: the standard deviation is N/sqrt(12).
  CHECK(parsed.stddev_ms == Approx(10000 / std::sqrt(12.0)).epsilon(0.01));
  CHECK(parsed.mean_ms == Approx(5000.5).margin(0.0005));
  CheckRowsMatchPercentile(h, parsed);
}

TEST_CASE("An .hgrm of one value, and of none", "[hgrm]") {
  SECTION("one value: the 0 and the 1.0 rows") {
    Histogram h;
    h.Record(1234567);
    const HgrmText parsed = ParseHgrm(FormatHgrm(h));
    REQUIRE(parsed.rows.size() == 2);
    CHECK(parsed.rows[0].value_ms == Approx(1.234567).margin(0.0006));
    CHECK(parsed.rows[1].count == 1);
    CHECK(parsed.stddev_ms == 0);
    CHECK(parsed.total == 1);
  }
  SECTION("none: the header and the footer") {
    const HgrmText parsed = ParseHgrm(FormatHgrm(Histogram()));
    CHECK(parsed.rows.empty());
    CHECK(parsed.total == 0);
    CHECK(parsed.max_ms == 0);
  }
}

}  // namespace
}  // namespace routeguide
