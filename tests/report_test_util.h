// Known load reports for the report tests: made from seeded samples, and
// read back through the JSON a run writes.
#ifndef ROUTEGUIDE_TESTS_REPORT_TEST_UTIL_H_
#define ROUTEGUIDE_TESTS_REPORT_TEST_UTIL_H_

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "histogram.h"
#include "load_generator.h"
#include "load_report.h"
#include "report_file.h"

namespace routeguide {
namespace testing {

inline const absl::Time kStart = absl::FromUnixSeconds(1780000000) + absl::Milliseconds(250);

// Latencies from 100 ns to 100 ms, spread evenly in log scale.
inline std::vector<uint64_t> Samples(uint64_t seed, int n) {
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<double> exponent(2, 8);
  std::vector<uint64_t> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(static_cast<uint64_t>(std::pow(10, exponent(random))));
  }
  return out;
}

// A report whose kind k recorded samples seed*10+k, n of them, with a
// histogram in every place a report has one.
inline LoadReport MakeReport(uint64_t seed, int n, absl::Time started_at = kStart) {
  LoadReport r;
  r.options.target = "127.0.0.1:50051";
  r.options.rps = 1000;
  r.options.arrival = Arrival::kPoisson;
  r.options.metadata = {{"x-run", "a:b"}};
  r.options.list_rect = GeoRect::FromCorners({400000000, -750000000}, {420000000, -740000000});
  r.channel_target = "127.0.0.1:50051";
  r.features_known = 100;
  r.started_at = started_at;
  r.measured = absl::Milliseconds(2500);
  for (int k = 0; k < kNumCallKinds; ++k) {
    KindStats& s = r.kinds[k];
    for (uint64_t v : Samples(seed * 10 + k, n)) s.latency.Record(v);
    s.started = s.ok = static_cast<uint64_t>(n) - 1;
    s.failed_by_code[14] = 1;  // UNAVAILABLE
    s.messages_sent = 3 * n;
    s.messages_received = 2 * n;
  }
  for (uint64_t v : Samples(seed * 10 + 8, n)) r.kinds[1].first_message.Record(v);
  for (uint64_t v : Samples(seed * 10 + 9, n)) r.kinds[3].reply.Record(v);
  for (uint64_t v : Samples(seed * 10 + 7, n)) r.start_lag.Record(v / 100);
  r.late_starts = 2;
  for (const KindStats& s : r.kinds) r.total.Merge(s);
  r.completions_per_second = {static_cast<uint64_t>(n), static_cast<uint64_t>(2 * n)};
  r.partial_second_completions = static_cast<uint64_t>(4 * n) - 3 * n;
  r.by_address = {{"ipv4:127.0.0.1:1", 5, 4, 1}, {"ipv4:127.0.0.1:2", 6, 6, 0}};
  return r;
}

inline ReportFile RoundTrip(const LoadReport& r, const std::string& name = "r.json") {
  absl::StatusOr<ReportFile> file = ParseReport(FormatReportJson(r), name);
  INFO(file.status().ToString());
  REQUIRE(file.ok());
  return *std::move(file);
}

inline void CheckSameHistogram(const Histogram& a, const Histogram& b) {
  CHECK(a.count() == b.count());
  CHECK(a.sum() == b.sum());
  CHECK(a.min() == b.min());
  CHECK(a.max() == b.max());
  for (double p : {0.0, 50.0, 90.0, 99.0, 99.9, 100.0}) CHECK(a.Percentile(p) == b.Percentile(p));
  CHECK(a == b);  // Every bucket.
}

}  // namespace testing
}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_REPORT_TEST_UTIL_H_
