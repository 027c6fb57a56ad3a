// The load generator's parts, without a server: the histogram, the mix,
// the open-loop schedule and the flags.
#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "catch2/catch.hpp"
#include "histogram.h"
#include "load_options.h"
#include "load_report.h"
#include "load_schedule.h"
#include "target_check.h"

namespace routeguide {
namespace {

// Nearest-rank percentile of sorted data, as Histogram defines it.
uint64_t ExactPercentile(const std::vector<uint64_t>& sorted, double p) {
  const auto rank = std::max<size_t>(
      1, static_cast<size_t>(std::ceil(p / 100.0 * sorted.size())));
  return sorted[rank - 1];
}

TEST_CASE("Histogram percentiles are within 1% of the exact ones",
          "[load][histogram]") {
  std::mt19937_64 random(42);
  std::vector<uint64_t> values;
  SECTION("latencies spread over six orders of magnitude") {
    std::lognormal_distribution<double> dist(std::log(2e6), 2.0);
    for (int i = 0; i < 200000; ++i) values.push_back(static_cast<uint64_t>(dist(random)));
  }
  SECTION("small values are exact") {
    std::uniform_int_distribution<uint64_t> dist(0, 255);
    for (int i = 0; i < 10000; ++i) values.push_back(dist(random));
  }
  SECTION("huge values") {
    std::uniform_int_distribution<uint64_t> dist(uint64_t{1} << 40, UINT64_MAX);
    for (int i = 0; i < 10000; ++i) values.push_back(dist(random));
  }
  Histogram h;
  for (uint64_t v : values) h.Record(v);
  std::sort(values.begin(), values.end());
  REQUIRE(h.count() == values.size());
  CHECK(h.min() == values.front());
  CHECK(h.max() == values.back());
  for (double p : {0.0, 1.0, 25.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    const double exact = static_cast<double>(ExactPercentile(values, p));
    const double got = static_cast<double>(h.Percentile(p));
    INFO("p" << p << " exact " << exact << " histogram " << got);
    CHECK(std::abs(got - exact) <= 0.01 * exact + 0.5);
  }
}

TEST_CASE("Histograms merge into the histogram of all values",
          "[load][histogram]") {
  std::mt19937_64 random(7);
  std::exponential_distribution<double> dist(1e-5);
  Histogram parts[3], whole;
  for (int i = 0; i < 30000; ++i) {
    const auto v = static_cast<uint64_t>(dist(random));
    parts[i % 3].Record(v);
    whole.Record(v);
  }
  Histogram merged;
  for (const Histogram& part : parts) merged.Merge(part);
  CHECK(merged.count() == whole.count());
  CHECK(merged.min() == whole.min());
  CHECK(merged.max() == whole.max());
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    CHECK(merged.Percentile(p) == whole.Percentile(p));
  }
  Histogram empty;
  CHECK(empty.Percentile(99) == 0);
  CHECK(empty.max() == 0);
}

TEST_CASE("Histogram buckets tile the values without gaps", "[load][histogram]") {
  for (int bucket = 0; bucket + 1 < Histogram::kBuckets; ++bucket) {
    const uint64_t end = Histogram::BucketStart(bucket) + Histogram::BucketWidth(bucket);
    REQUIRE(end == Histogram::BucketStart(bucket + 1));
    REQUIRE(Histogram::BucketOf(Histogram::BucketStart(bucket)) == bucket);
    REQUIRE(Histogram::BucketOf(end - 1) == bucket);
    // The relative width bound behind the 1% promise.
    REQUIRE(Histogram::BucketWidth(bucket) * 128 <=
            std::max<uint64_t>(128, Histogram::BucketStart(bucket)));
  }
  CHECK(Histogram::BucketOf(UINT64_MAX) == Histogram::kBuckets - 1);
}

TEST_CASE("A run's exit code puts failures before an interruption",
          "[load][exit]") {
  LoadReport report;
  SECTION("all calls good") {
    report.total.ok = 10;
    CHECK(LoadExitCode(report, 0) == 0);
    report.interrupted = true;
    CHECK(LoadExitCode(report, 0) == kExitInterrupted);
  }
  SECTION("errors past the limit, interrupted or not") {
    report.total.ok = 8;
    report.total.wrong_answer = 2;
    CHECK(LoadExitCode(report, 0.1) == 1);
    CHECK(LoadExitCode(report, 0.2) == 0);
    report.interrupted = true;
    CHECK(LoadExitCode(report, 0.1) == 1);
    CHECK(LoadExitCode(report, 0.2) == kExitInterrupted);
  }
  SECTION("no call completed") {
    CHECK(LoadExitCode(report, 1) == 1);
    report.interrupted = true;  // Ctrl-C before any call ended.
    CHECK(LoadExitCode(report, 1) == kExitInterrupted);
  }
}

TEST_CASE("The mix draws kinds in proportion to their weights", "[load][mix]") {
  std::mt19937_64 random(3);
  const std::array<double, kNumCallKinds> mix = {70, 10, 20, 0};
  KindPicker picker(mix);
  std::array<int, kNumCallKinds> counts{};
  constexpr int kDraws = 200000;
  for (int i = 0; i < kDraws; ++i) ++counts[static_cast<int>(picker.Pick(random))];
  CHECK(std::abs(counts[0] / double{kDraws} - 0.7) < 0.01);
  CHECK(std::abs(counts[1] / double{kDraws} - 0.1) < 0.01);
  CHECK(std::abs(counts[2] / double{kDraws} - 0.2) < 0.01);
  CHECK(counts[3] == 0);
}

TEST_CASE("The open-loop schedule spaces starts as asked", "[load][schedule]") {
  SECTION("uniform: exactly 1/rps apart") {
    ArrivalSchedule schedule(Arrival::kUniform, 400, 1);
    for (int i = 0; i < 1000; ++i) CHECK(schedule.Next() == Approx(i / 400.0));
  }
  SECTION("poisson: exponential gaps of mean 1/rps") {
    ArrivalSchedule schedule(Arrival::kPoisson, 1000, 9);
    constexpr int kStarts = 100000;
    std::vector<double> gaps;
    double last = schedule.Next();
    CHECK(last == 0);
    for (int i = 0; i < kStarts; ++i) {
      const double at = schedule.Next();
      REQUIRE(at >= last);
      gaps.push_back(at - last);
      last = at;
    }
    double mean = 0;
    for (double g : gaps) mean += g;
    mean /= gaps.size();
    double variance = 0;
    for (double g : gaps) variance += (g - mean) * (g - mean);
    variance /= gaps.size();
    CHECK(mean == Approx(1e-3).epsilon(0.02));
    // An exponential distribution's standard deviation equals its mean.
    CHECK(std::sqrt(variance) / mean == Approx(1.0).epsilon(0.03));
  }
}

TEST_CASE("Load flags reject bad values with a message", "[load][flags]") {
  SECTION("--mix") {
    CHECK(ParseMix("get:70,list:10,record:10,chat:10").ok());
    CHECK((*ParseMix("chat:1"))[3] == 1);
    CHECK((*ParseMix("chat:1"))[0] == 0);
    for (const char* bad : {"get", "get:x", "get:-1", "fetch:3", "get:1,get:2",
                            "get:0,list:0", "", "get:nan", "get:inf"}) {
      INFO(bad);
      auto mix = ParseMix(bad);
      CHECK(!mix.ok());
      CHECK_THAT(std::string(mix.status().message()), Catch::Contains("--mix"));
    }
  }
  SECTION("--metadata") {
    auto kv = ParseMetadata("X-Trace:abc:def");
    REQUIRE(kv.ok());
    CHECK(kv->first == "x-trace");
    CHECK(kv->second == "abc:def");
    CHECK(!ParseMetadata("novalue").ok());
    CHECK(!ParseMetadata(":v").ok());
    CHECK(!ParseMetadata("bad key:v").ok());
    CHECK(!ParseMetadata("grpc-timeout:1").ok());
    // Values gRPC would abort on: named with the entry in the message.
    for (const std::string bad : {"x-a:\xc3\xa9", "x-a:one\ntwo",
                                  "x-a:one\rtwo", "x-a:\x7f", "x-a:tab\there"}) {
      INFO(bad);
      auto parsed = ParseMetadata(bad);
      REQUIRE(!parsed.ok());
      CHECK_THAT(std::string(parsed.status().message()),
                 Catch::Contains("--metadata") && Catch::Contains("x-a"));
    }
    CHECK(ParseMetadata("x-a: printable ~ ASCII").ok());
    // Binary values are base64-encoded by gRPC: any byte will do.
    CHECK(ParseMetadata("x-a-bin:\xc3\xa9\n").ok());
  }
  SECTION("--arrival") {
    CHECK(*ParseArrival("poisson") == Arrival::kPoisson);
    CHECK(!ParseArrival("bursty").ok());
  }
  SECTION("--list_rect") {
    auto rect = ParseRect("42,-74, 40,-75");
    REQUIRE(rect.ok());
    CHECK(rect->lo == GeoPoint{400000000, -750000000});
    CHECK(rect->hi == GeoPoint{420000000, -740000000});
    for (const char* bad : {"", "1,2,3", "1,2,3,4,5", "a,b,c,d", "91,0,0,0",
                            "0,-180.5,0,0", "nan,0,0,0"}) {
      INFO(bad);
      auto parsed = ParseRect(bad);
      CHECK(!parsed.ok());
      CHECK_THAT(std::string(parsed.status().message()),
                 Catch::Contains("--list_rect"));
    }
  }
  SECTION("ranges") {
    LoadOptions options;
    REQUIRE(ValidateLoadOptions(options).ok());
    auto broken = [&](auto change) {
      LoadOptions o;
      change(o);
      return !ValidateLoadOptions(o).ok();
    };
    CHECK(broken([](LoadOptions& o) { o.threads = 0; }));
    CHECK(broken([](LoadOptions& o) { o.concurrency = 0; }));
    CHECK(broken([](LoadOptions& o) { o.rps = -1; }));
    CHECK(broken([](LoadOptions& o) { o.duration = absl::ZeroDuration(); }));
    CHECK(broken([](LoadOptions& o) { o.hit_ratio = 1.5; }));
    CHECK(broken([](LoadOptions& o) { o.chat_locations = 0; }));
    CHECK(broken([](LoadOptions& o) { o.deadline = absl::ZeroDuration(); }));
    CHECK(broken([](LoadOptions& o) { o.max_error_rate = 2; }));
  }
  SECTION("--target lists become round-robin URIs") {
    CHECK(*ChannelTarget("localhost:50051") == "localhost:50051");
    CHECK(*ChannelTarget("dns:///example:1") == "dns:///example:1");
    CHECK(*ChannelTarget("127.0.0.1:1,localhost:2") == "ipv4:127.0.0.1:1,127.0.0.1:2");
    CHECK(*ChannelTarget("[::1]:1,[::1]:2") == "ipv6:[::1]:1,[::1]:2");
    // Without brackets the last ':' may or may not start a port.
    CHECK(!ChannelTarget("[::1]:1,::1:2").ok());
    CHECK(!ChannelTarget("").ok());
    CHECK(!ChannelTarget("a.example:1,b.example:2").ok());
    CHECK(!ChannelTarget("127.0.0.1:1,[::1]:2").ok());
    CHECK(!ChannelTarget("127.0.0.1,127.0.0.2:3").ok());
    CHECK(!ChannelTarget("127.0.0.1:1,127.0.0.1:70000").ok());
  }
  SECTION("--target ports are checked before connecting") {
    for (const char* good : {"localhost:1", "127.0.0.1:65535", "[::1]:50051"}) {
      INFO(good);
      CHECK(CheckHostPort(good).ok());
    }
    for (const char* bad : {"localhost", "127.0.0.1:70000", "127.0.0.1:0",
                            "127.0.0.1:", "127.0.0.1:+80", "[::1]", "[::1:2",
                            "::1:50051", "fe80::1:80"}) {
      INFO(bad);
      const absl::Status status = CheckHostPort(bad);
      CHECK(!status.ok());
      CHECK_THAT(std::string(status.message()), Catch::Contains("--target"));
    }
    CHECK(IsTargetUri("dns:///example:1"));
    CHECK(IsTargetUri("unix:/tmp/socket"));
    CHECK(!IsTargetUri("localhost:50051"));
  }
}

}  // namespace
}  // namespace routeguide
