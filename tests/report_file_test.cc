// Reading load reports back: every bad field named, hostile text and
// absurd values refused without a crash, v1 reports read as far as they go.
// (client/report_file.h; the merge and compare tests are in
// report_merge_test.cc). No network.
#include <algorithm>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "histogram.h"
#include "load_report.h"
#include "nlohmann/json.hpp"
#include "report_file.h"
#include "report_merge.h"
#include "report_test_util.h"

namespace routeguide {
namespace {

using testing::MakeReport;
using testing::RoundTrip;

std::string ParseError(const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json j = nlohmann::json::parse(FormatReportJson(MakeReport(1, 200)));
  edit(j);
  absl::StatusOr<ReportFile> file = ParseReport(j.dump(), "bad.json");
  return file.ok() ? "parsed" : std::string(file.status().message());
}

TEST_CASE("Bad reports are refused with the file and field named", "[report]") {
  absl::StatusOr<ReportFile> file = ParseReport("{\"schema\": ", "bad.json");
  REQUIRE_FALSE(file.ok());
  CHECK_THAT(std::string(file.status().message()), Catch::StartsWith("bad.json: not JSON"));
  CHECK_THAT(ParseError([](auto& j) { j["schema"] = "routeguide.load.v9"; }),
             Catch::Contains("bad.json: schema: \"routeguide.load.v9\""));
  CHECK_THAT(ParseError([](auto& j) { j["kinds"]["get"]["latency_ns"]["buckets"][0][0] = 99999; }),
             Catch::Contains("kinds.get.latency_ns.buckets[0]: bucket index 99999 is out of range"));
  CHECK_THAT(ParseError([](auto& j) { j["kinds"]["get"]["latency_ns"]["buckets"][0][1] = 7; }),
             Catch::Contains("kinds.get.latency_ns: bucket counts add up to"));
  CHECK_THAT(ParseError([](auto& j) { j["kinds"]["list"]["started"] = "many"; }),
             Catch::Contains("kinds.list.started: must be a non-negative integer"));
  CHECK_THAT(ParseError([](auto& j) { j["kinds"]["chat"]["ok"] = -1; }),
             Catch::Contains("kinds.chat.ok: must be a non-negative integer"));
  CHECK_THAT(ParseError([](auto& j) { j["kinds"]["chat"]["completed"] = 1; }),
             Catch::Contains("kinds.chat.completed: is not ok + wrong_answer + failed"));
  CHECK_THAT(ParseError([](auto& j) { j["total"]["messages_sent"] = 1; }),
             Catch::Contains("total: its counts are not the sums"));
  CHECK_THAT(ParseError([](auto& j) { j["kinds"]["get"]["latency_ns"]["layout"] = "hdr"; }),
             Catch::Contains("kinds.get.latency_ns.layout: is \"hdr\""));
  CHECK_THAT(ParseError([](auto& j) { j["settings"].erase("mix"); }),
             Catch::Contains("settings.mix: is missing"));
  CHECK_THAT(ParseError([](auto& j) { j["started_at"] = "yesterday"; }),
             Catch::Contains("started_at: is not an RFC 3339 time"));
  CHECK_THAT(ParseError([](auto& j) { j["measured_seconds"] = 1e300; }),
             Catch::Contains("measured_seconds: must be from 0"));
  CHECK_THAT(ParseError([](auto& j) { j["kinds"] = nlohmann::json::array(); }),
             Catch::Contains("kinds: must be an object"));
  CHECK(ParseError([](auto&) {}) == "parsed");
  CHECK_THAT(ParseError([](auto& j) { j["by_address"][1]["address"] = "ipv4:127.0.0.1:1"; }),
             Catch::Contains("by_address[1].address: \"ipv4:127.0.0.1:1\" is listed twice"));
  CHECK_THAT(ParseError([](auto& j) {
               for (int i = 0; i < 1023; ++i) j["by_address"].push_back(j["by_address"][0]);
             }),
             Catch::Contains("by_address: has more than 1024 entries"));
}

TEST_CASE("Counts that overflow 64 bits are refused, not wrapped", "[report]") {
  // Files whose sums wrap, with the wrapped sums written down.
  CHECK_THAT(ParseError([](auto& j) {
               for (auto& kind : j["kinds"]) kind["messages_sent"] = UINT64_MAX / 3;
               j["total"]["messages_sent"] = (UINT64_MAX / 3) * 4;  // Wrapped.
             }),
             Catch::Contains("total: its counts overflow 64 bits"));
  CHECK_THAT(ParseError([](auto& j) { j["kinds"]["get"]["failed_by_code"]["UNKNOWN"] = UINT64_MAX; }),
             Catch::Contains("kinds.get: its counts overflow 64 bits"));
  // Reports that are fine alone but whose sums overflow do not merge.
  const ReportFile good = RoundTrip(MakeReport(1, 10), "a.json");
  auto merge_error = [&](const std::function<void(LoadReport&)>& edit) {
    ReportFile a = good, b = good;
    edit(a.report);
    edit(b.report);
    std::vector<std::string> notes;
    return MergeReports({a, b}, false, &notes).status().ToString();
  };
  CHECK_THAT(merge_error([](auto& r) { r.kinds[0].messages_sent = UINT64_MAX / 2 + 1; }),
             Catch::Contains("overflow"));
  CHECK_THAT(merge_error([](auto& r) { r.completions_per_second[0] = UINT64_MAX / 2 + 1; }),
             Catch::Contains("overflow"));
  CHECK_THAT(merge_error([](auto& r) { r.late_starts = UINT64_MAX / 2 + 1; }),
             Catch::Contains("overflow"));
  CHECK_THAT(merge_error([](auto& r) { r.options.rps = 1e308; }), Catch::Contains("rps"));
}

TEST_CASE("Infinite or absurd times are refused, and never abort a merge", "[report]") {
  for (const char* t : {"infinite-past", "infinite-future", "0001-01-01T00:00:00Z"}) {
    INFO(t);
    CHECK_THAT(ParseError([&](auto& j) { j["started_at"] = t; }),
               Catch::Contains("started_at: must be a time from 1970 to 9999"));
    CHECK_THAT(ParseError([&](auto& j) { j["settings"]["start_at"] = t; }),
               Catch::Contains("settings.start_at: must be null or an RFC 3339 time"));
  }
  // Times that bypass the reader: an error, not std::length_error.
  for (absl::Time t : {absl::InfinitePast(), absl::InfiniteFuture()}) {
    ReportFile odd = RoundTrip(MakeReport(2, 10), "odd.json");
    odd.report.started_at = t;
    std::vector<std::string> notes;
    CHECK_FALSE(MergeReports({RoundTrip(MakeReport(1, 10), "a.json"), odd}, false, &notes).ok());
    CHECK_FALSE(MergeReports({odd}, false, &notes).ok());
    CHECK_FALSE(MergeReports({odd, odd}, false, &notes).ok());
  }
}

TEST_CASE("Hostile report text never crashes the reader", "[report]") {
  const std::string good = FormatReportJson(MakeReport(1, 300));
  std::mt19937_64 random(7);
  int parsed = 0;
  for (int i = 0; i < 300; ++i) {
    std::string text = good;
    if (i % 3 == 0) {
      text.resize(random() % text.size());
    } else {
      for (int n = 0; n < 1 + i % 5; ++n) text[random() % text.size()] = "0-9\"[]{}x.,e"[random() % 12];
    }
    absl::StatusOr<ReportFile> file = ParseReport(text, "fuzz.json");
    if (file.ok()) {
      ++parsed;
    } else {
      CHECK_THAT(std::string(file.status().message()), Catch::StartsWith("fuzz.json: "));
    }
  }
  CHECK(parsed < 300);
}

TEST_CASE("A v1 report reads as far as it goes", "[report]") {
  const LoadReport r = MakeReport(1, 1000);
  nlohmann::json j = nlohmann::json::parse(FormatReportJson(r));
  j["schema"] = "routeguide.load.v1";
  for (auto& kind : j["kinds"]) {
    for (const char* field : {"min", "sum", "layout", "buckets"}) kind["latency_ns"].erase(field);
  }
  absl::StatusOr<ReportFile> file = ParseReport(j.dump(), "v1.json");
  INFO(file.status().ToString());
  REQUIRE(file.ok());
  CHECK(file->version == 1);
  CHECK_FALSE(file->has_histograms());
  CHECK(file->report.kinds[0].latency.count() == 0);
  CHECK(file->latency[0].p99 == r.kinds[0].latency.Percentile(99));
  CHECK(file->latency[kAllKinds].p50 == r.total.latency.Percentile(50));
  CHECK(file->report.total.ok == r.total.ok);
}

TEST_CASE("batch_writes reads back, and a report from before it reads as unbatched",
          "[report]") {
  LoadReport r = MakeReport(1, 1000);
  r.options.batch_writes = true;
  nlohmann::json j = nlohmann::json::parse(FormatReportJson(r));
  REQUIRE(j["settings"]["batch_writes"] == true);
  absl::StatusOr<ReportFile> file = ParseReport(j.dump(), "batched.json");
  REQUIRE(file.ok());
  CHECK(file->report.options.batch_writes);

  j["settings"].erase("batch_writes");
  file = ParseReport(j.dump(), "older.json");
  INFO(file.status().ToString());
  REQUIRE(file.ok());
  CHECK_FALSE(file->report.options.batch_writes);

  j["settings"]["batch_writes"] = "yes";
  file = ParseReport(j.dump(), "bad.json");
  REQUIRE_FALSE(file.ok());
  CHECK_THAT(std::string(file.status().message()),
             Catch::Contains("settings.batch_writes"));
}

}  // namespace
}  // namespace routeguide
