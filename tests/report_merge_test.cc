// Load reports written as JSON and read back, merged and compared
// (client/report_file.h, report_merge.h, report_compare.h). No network.
#include <algorithm>
#include <functional>
#include <cmath>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "histogram.h"
#include "load_report.h"
#include "nlohmann/json.hpp"
#include "report_compare.h"
#include "report_file.h"
#include "report_merge.h"
#include "report_test_util.h"

namespace routeguide {
namespace {

using testing::kStart;
using testing::MakeReport;
using testing::RoundTrip;
using testing::Samples;
using testing::CheckSameHistogram;


TEST_CASE("Histograms written to JSON read back identical", "[report]") {
  const LoadReport r = MakeReport(1, 5000);
  const ReportFile file = RoundTrip(r);
  CHECK(file.version == 2);
  for (int k = 0; k < kNumCallKinds; ++k) {
    INFO(kCallKindNames[k]);
    CheckSameHistogram(file.report.kinds[k].latency, r.kinds[k].latency);
    CHECK(file.report.kinds[k].failed_by_code == r.kinds[k].failed_by_code);
    CHECK(file.report.kinds[k].messages_sent == r.kinds[k].messages_sent);
  }
  CheckSameHistogram(file.report.kinds[1].first_message, r.kinds[1].first_message);
  CheckSameHistogram(file.report.kinds[3].reply, r.kinds[3].reply);
  CheckSameHistogram(file.report.start_lag, r.start_lag);
  CheckSameHistogram(file.report.total.latency, r.total.latency);
  CHECK(file.report.started_at == r.started_at);
  CHECK(file.report.measured == r.measured);
  CHECK(file.report.completions_per_second == r.completions_per_second);
  CHECK(file.report.options.metadata == r.options.metadata);
  REQUIRE(file.report.options.list_rect.has_value());
  CHECK(file.report.options.list_rect->lo == r.options.list_rect->lo);
  CHECK(file.report.options.list_rect->hi == r.options.list_rect->hi);
  CHECK(file.report.options.arrival == Arrival::kPoisson);
  // Written again, the same text: nothing lost on the way.
  CHECK(FormatReportJson(file.report) == FormatReportJson(r));
}

TEST_CASE("An empty histogram round-trips, and FromBuckets checks its input",
          "[report]") {
  Histogram empty;
  CheckSameHistogram(RoundTrip(LoadReport()).report.total.latency, empty);
  Histogram h;
  for (uint64_t v : {5, 300, 300, 70000}) h.Record(v);
  const auto buckets = h.NonEmptyBuckets();
  REQUIRE(buckets.size() == 3);
  CHECK(*Histogram::FromBuckets(buckets, 4, h.sum(), 5, 70000) == h);
  CHECK_FALSE(Histogram::FromBuckets(buckets, 5, h.sum(), 5, 70000).ok());  // Count.
  CHECK_FALSE(Histogram::FromBuckets(buckets, 4, h.sum(), 6, 70000).ok());  // Min.
  CHECK_FALSE(Histogram::FromBuckets(buckets, 4, h.sum(), 5, 90000).ok());  // Max.
  CHECK_FALSE(Histogram::FromBuckets(buckets, 4, 1e12, 5, 70000).ok());     // Sum.
  CHECK_FALSE(Histogram::FromBuckets({{7424, 4}}, 4, 0, 0, 0).ok());        // Range.
  CHECK_FALSE(Histogram::FromBuckets({{300, 2}, {5, 2}}, 4, 0, 5, 300).ok());  // Order.
  CHECK_FALSE(Histogram::FromBuckets({{5, 0}, {6, 1}}, 1, 6, 6, 6).ok());   // Zero count.
  CHECK_FALSE(Histogram::FromBuckets({{5, UINT64_MAX}, {6, 2}}, 1, 6, 5, 6).ok());
  // min > max in one wide bucket (the sum's rounding slack lets it by),
  // and one value with min != max.
  const uint64_t big = uint64_t{1} << 40;
  CHECK_FALSE(Histogram::FromBuckets({{Histogram::BucketOf(big), 2}}, 2,
                                     2.0 * static_cast<double>(big) + 1000, big + 1000, big)
                  .ok());
  CHECK_FALSE(Histogram::FromBuckets({{Histogram::BucketOf(256), 1}}, 1, 256, 256, 257).ok());
  CHECK(Histogram::FromBuckets({{Histogram::BucketOf(256), 2}}, 2, 513, 256, 257).ok());
  // A file may hold counts near 2^64: the top rank is still the last value.
  absl::StatusOr<Histogram> huge = Histogram::FromBuckets(
      {{5, UINT64_MAX - 1}, {6, 1}}, UINT64_MAX, 5.0 * static_cast<double>(UINT64_MAX), 5, 6);
  REQUIRE(huge.ok());
  CHECK(huge->Percentile(100) == 6);
  CHECK(huge->Percentile(0) == 5);
  // Percentile's rank and bucket value, shared with the .hgrm writer.
  CHECK(Histogram::RankOf(100, UINT64_MAX) == UINT64_MAX);
  CHECK(Histogram::RankOf(0, 10) == 1);
  CHECK(Histogram::RankOf(50, 10) == 5);
  CHECK(huge->ValueOfBucket(5) == 5);
  CHECK(h.ValueOfBucket(Histogram::BucketOf(70000)) == h.Percentile(100));
  CHECK(h.ValueOfBucket(Histogram::BucketOf(5)) == 5);
}

TEST_CASE("Merged reports hold exactly the histogram of all their samples",
          "[report]") {
  std::vector<ReportFile> files;
  files.push_back(RoundTrip(MakeReport(1, 3000), "a.json"));
  files.push_back(RoundTrip(MakeReport(2, 500, kStart + absl::Milliseconds(1500)), "b.json"));
  files.push_back(RoundTrip(MakeReport(3, 2000, kStart + absl::Milliseconds(300)), "c.json"));
  std::vector<std::string> notes;
  absl::StatusOr<LoadReport> merged = MergeReports(files, false, &notes);
  INFO(merged.status().ToString());
  REQUIRE(merged.ok());
  CHECK(notes.empty());
  for (int k = 0; k < kNumCallKinds; ++k) {
    INFO(kCallKindNames[k]);
    Histogram all;
    std::vector<uint64_t> union_samples;
    for (int seed = 1; seed <= 3; ++seed) {
      for (uint64_t v : Samples(seed * 10 + k, seed == 1 ? 3000 : seed == 2 ? 500 : 2000)) {
        all.Record(v);
        union_samples.push_back(v);
      }
    }
    CheckSameHistogram(merged->kinds[k].latency, all);
    std::sort(union_samples.begin(), union_samples.end());
    for (double p : {50.0, 90.0, 99.0, 99.9}) {
      const size_t rank = static_cast<size_t>(std::ceil(p / 100 * union_samples.size()));
      const double exact = static_cast<double>(union_samples[rank - 1]);
      INFO("p" << p << " exact " << exact);
      CHECK(std::abs(static_cast<double>(merged->kinds[k].latency.Percentile(p)) - exact) <=
            0.01 * exact);
    }
    CHECK(merged->kinds[k].started == 2999 + 499 + 1999);
    CHECK(merged->kinds[k].failed_by_code[14] == 3);
    CHECK(merged->kinds[k].messages_sent == 3 * 5500);
  }
  CHECK(merged->total.completed() == 4 * 5500);
  CHECK(merged->late_starts == 6);
  CHECK(merged->options.rps == 3000);
  REQUIRE(merged->by_address.size() == 2);
  CHECK(merged->by_address[0].started == 15);
  CHECK(merged->by_address[1].succeeded == 18);
  // Merged, written and read again: the same report.
  const ReportFile again = RoundTrip(*merged, "m.json");
  CheckSameHistogram(again.report.total.latency, merged->total.latency);
  CHECK(FormatReportJson(again.report) == FormatReportJson(*merged));
}

TEST_CASE("Merging lines completions_per_second up by wall clock", "[report]") {
  LoadReport a = MakeReport(1, 10);
  a.completions_per_second = {10, 20, 30};
  a.partial_second_completions = 5;
  a.measured = absl::Milliseconds(3200);
  LoadReport b = MakeReport(2, 10, kStart + absl::Milliseconds(1500));  // 1 whole second on.
  b.completions_per_second = {1, 2};
  b.partial_second_completions = 3;
  b.measured = absl::Milliseconds(2400);
  LoadReport c = MakeReport(3, 10, kStart + absl::Milliseconds(700));  // 0 whole seconds on.
  c.completions_per_second = {100};
  c.partial_second_completions = 7;
  c.measured = absl::Milliseconds(1100);
  std::vector<std::string> notes;
  absl::StatusOr<LoadReport> merged = MergeReports(
      {RoundTrip(a, "a"), RoundTrip(b, "b"), RoundTrip(c, "c")}, false, &notes);
  REQUIRE(merged.ok());
  // c's partial second lands in the entry after its last whole one; a's
  // and b's are past the merged array's end.
  CHECK(merged->completions_per_second == std::vector<uint64_t>{110, 21 + 7, 32});
  CHECK(merged->partial_second_completions == 5 + 3);
  CHECK(merged->started_at == kStart);
  CHECK(merged->measured == absl::Milliseconds(3900));  // kStart to b's end.
  CHECK(notes.empty());

  // A run after a gap: the gap is not measuring time.
  LoadReport d = MakeReport(4, 10, kStart + absl::Seconds(10));
  d.measured = absl::Seconds(1);
  d.completions_per_second = {9};
  merged = MergeReports({RoundTrip(a, "a"), RoundTrip(d, "d")}, false, &notes);
  REQUIRE(merged.ok());
  CHECK(merged->measured == absl::Milliseconds(4200));
  CHECK(merged->completions_per_second.size() == 11);
  CHECK(merged->completions_per_second[10] == 9);
  CHECK(merged->completions_per_second[3] == 5);  // a's partial second.
  REQUIRE(notes.size() == 1);
  CHECK_THAT(notes[0], Catch::Contains("gaps"));
  // The array covers the span's whole seconds: a later run's last partial
  // second lands in its wall-clock entry, not past the array's end.
  LoadReport e = MakeReport(5, 10, kStart + absl::Milliseconds(900));  // Ends at 3.4 s.
  std::tie(e.measured, e.completions_per_second, e.partial_second_completions) =
      std::make_tuple(absl::Milliseconds(2500), std::vector<uint64_t>{1, 2}, 3);
  std::tie(a.measured, a.completions_per_second, a.partial_second_completions) =
      std::make_tuple(absl::Seconds(1), std::vector<uint64_t>{10}, 0);
  absl::StatusOr<LoadReport> spanned =
      MergeReports({RoundTrip(a, "a"), RoundTrip(e, "e")}, false, &notes);
  REQUIRE(spanned.ok());
  CHECK(spanned->completions_per_second == std::vector<uint64_t>{11, 2, 3});
  CHECK(spanned->partial_second_completions == 0);
  // The gap-merged report reads back, and merges again.
  const ReportFile gapped = RoundTrip(*merged, "gapped.json");
  CHECK(gapped.report.completions_per_second == merged->completions_per_second);
  CHECK(MergeReports({gapped, gapped}, false, &notes).ok());
}

TEST_CASE("Merging refuses runs with other settings unless forced, and v1 always",
          "[report]") {
  LoadReport other = MakeReport(2, 100);
  other.options.mix = {10, 0, 0, 90};
  other.options.route_points = 3;
  other.options.batch_writes = true;
  const std::vector<ReportFile> files = {RoundTrip(MakeReport(1, 100), "a.json"),
                                         RoundTrip(other, "b.json")};
  std::vector<std::string> notes;
  absl::StatusOr<LoadReport> merged = MergeReports(files, false, &notes);
  REQUIRE_FALSE(merged.ok());
  CHECK_THAT(std::string(merged.status().message()), Catch::Contains("a.json and b.json: mix"));
  CHECK_THAT(std::string(merged.status().message()), Catch::Contains("route_points 10 vs 3"));
  CHECK_THAT(std::string(merged.status().message()),
             Catch::Contains("batch_writes false vs true"));
  CHECK_THAT(std::string(merged.status().message()), Catch::Contains("--force"));

  LoadReport uniform = MakeReport(3, 100);
  uniform.options.arrival = Arrival::kUniform;
  CHECK_THAT(std::string(MergeReports({files[0], RoundTrip(uniform)}, false, &notes)
                             .status().message()),
             Catch::Contains("arrival poisson vs uniform"));
  merged = MergeReports(files, true, &notes);
  REQUIRE(merged.ok());
  CHECK(notes.size() == 3);
  CHECK(MixText(merged->options) == "get:70,list:10,record:10,chat:90");
  CHECK(merged->total.completed() == 2 * 4 * 100);

  nlohmann::json v1 = nlohmann::json::parse(FormatReportJson(MakeReport(3, 100)));
  v1["schema"] = "routeguide.load.v1";
  absl::StatusOr<ReportFile> old = ParseReport(v1.dump(), "old.json");
  REQUIRE(old.ok());
  merged = MergeReports({files[0], *old}, true, &notes);
  REQUIRE_FALSE(merged.ok());
  CHECK_THAT(std::string(merged.status().message()), Catch::Contains("old.json"));
  CHECK_THAT(std::string(merged.status().message()), Catch::Contains("no histograms"));
}

// The report's JSON with `edit` applied, parsed: the error message.
TEST_CASE("Compare marks figures past their limits", "[report]") {
  CHECK(ParseRegressionLimits("p99:10%,calls_per_second:5").ok());
  CHECK(ParseRegressionLimits("p99.9:0%").ok());
  for (const char* bad : {"p98:10%", "p99:-1%", "p99:ten", "p99", "p99:1%,p99:2%", ""}) {
    INFO(bad);
    CHECK_FALSE(ParseRegressionLimits(bad).ok());
  }
  const ReportFile base = RoundTrip(MakeReport(1, 2000), "base.json");
  LoadReport slower = MakeReport(1, 2000);
  for (KindStats& s : slower.kinds) {
    Histogram h;
    for (uint64_t v : Samples(99, 2000)) h.Record(v * 2);
    s.latency = h;
  }
  slower.total = KindStats();
  for (const KindStats& s : slower.kinds) slower.total.Merge(s);
  const ReportFile next = RoundTrip(slower, "new.json");

  const Comparison same = CompareReports(base, base, *ParseRegressionLimits("p99:1%"));
  CHECK(same.regressions == 0);
  CHECK_THAT(same.table, Catch::Contains("no regression past the limits"));
  const Comparison worse =
      CompareReports(base, next, *ParseRegressionLimits("p99:20%,calls_per_second:5%"));
  INFO(worse.table);
  CHECK(worse.regressions == 5);  // p99 of four kinds and all.
  CHECK_THAT(worse.table, Catch::Contains("REGRESSION (limit +20%)"));
  // Report only without limits.
  CHECK(CompareReports(base, next, RegressionLimits()).regressions == 0);
  CHECK_THAT(FormatCompareHtml(base, next, worse), Catch::Contains("stroke-dasharray"));

  // Every call failed fast: a p99 limit alone still catches it (error_rate
  // defaults to a limit of +0pp when limits are given).
  LoadReport failing = MakeReport(1, 2000);
  for (KindStats& s : failing.kinds) std::swap(s.ok, s.failed_by_code[2]);  // UNKNOWN.
  failing.total = KindStats();
  for (const KindStats& s : failing.kinds) failing.total.Merge(s);
  const ReportFile all_failed = RoundTrip(failing, "failing.json");
  const Comparison failed = CompareReports(base, all_failed, *ParseRegressionLimits("p99:10%"));
  INFO(failed.table);
  CHECK(failed.regressions == 5);  // error rate of four kinds and all.
  CHECK_THAT(failed.table, Catch::Contains("REGRESSION (limit +0pp)"));
  CHECK_THAT(failed.table, Catch::Contains("error_rate limit +0pp by default"));
  CHECK(CompareReports(base, all_failed, *ParseRegressionLimits("p99:10%,error_rate:100%"))
            .regressions == 0);
}

}  // namespace
}  // namespace routeguide
