// The load generator: its parts (histogram, mix, schedule, flags) and whole
// runs against real servers on 127.0.0.1:0.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "catch2/catch.hpp"
#include "db_loader.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "histogram.h"
#include "load_generator.h"
#include "load_options.h"
#include "load_report.h"
#include "load_schedule.h"
#include "nlohmann/json.hpp"
#include "route_guide.grpc.pb.h"
#include "route_guide_server.h"
#include "test_server.h"

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
    CHECK(*ChannelTarget("[::1]:1,::1:2") == "ipv6:[::1]:1,[::1]:2");
    CHECK(!ChannelTarget("").ok());
    CHECK(!ChannelTarget("a.example:1,b.example:2").ok());
    CHECK(!ChannelTarget("127.0.0.1:1,[::1]:2").ok());
    CHECK(!ChannelTarget("127.0.0.1,127.0.0.2:3").ok());
  }
}

std::unique_ptr<RouteGuideServer> StartServer() { return StartTestServer(); }

TEST_CASE("A short mixed run completes every kind with checked answers",
          "[load][run]") {
  auto server = StartServer();
  LoadOptions options;
  options.target = "127.0.0.1:" + std::to_string(server->port());
  options.threads = 3;
  options.concurrency = 16;
  options.requests = 1500;
  options.duration = absl::Seconds(60);
  options.mix = {40, 20, 20, 20};
  SECTION("closed loop") {}
  SECTION("open loop, poisson") {
    options.rps = 1500;
    options.arrival = Arrival::kPoisson;
  }
  std::atomic<bool> interrupt{false};
  auto report = RunLoad(options, interrupt);
  REQUIRE(report.ok());
  CHECK(report->features_known == 100);
  // --requests is exact, however many threads start calls.
  CHECK(report->total.started == 1500);
  CHECK(report->total.completed() == 1500);
  uint64_t in_timeline = 0;
  for (uint64_t n : report->completions_per_second) in_timeline += n;
  CHECK(in_timeline == report->total.completed());
  CHECK(report->total.failed() == 0);
  CHECK(report->total.wrong_answer == 0);
  for (int k = 0; k < kNumCallKinds; ++k) {
    INFO(kCallKindNames[k]);
    CHECK(report->kinds[k].ok > 0);
    CHECK(report->kinds[k].started == report->kinds[k].completed());
    CHECK(report->kinds[k].latency.count() == report->kinds[k].completed());
  }
  // Every list call streamed its features; chats got their replies.
  CHECK(report->kinds[1].first_message.count() > 0);
  CHECK(report->kinds[3].reply.count() > 0);
  CHECK(report->error_rate() == 0);

  const nlohmann::json json = nlohmann::json::parse(FormatReportJson(*report));
  CHECK(json["schema"] == "routeguide.load.v1");
  CHECK(json["settings"]["target"] == options.target);
  CHECK(json["settings"]["mode"] == (options.rps > 0 ? "open" : "closed"));
  for (const char* kind : {"get", "list", "record", "chat"}) {
    INFO(kind);
    const auto& k = json["kinds"][kind];
    for (const char* field : {"started", "completed", "ok", "wrong_answer", "failed",
                              "failed_by_code", "calls_per_second",
                              "messages_sent_per_second",
                              "messages_received_per_second", "latency_ns"}) {
      CHECK(k.contains(field));
    }
    for (const char* p : {"p50", "p90", "p99", "p99_9", "max"}) {
      CHECK(k["latency_ns"].contains(p));
    }
  }
  CHECK(json["kinds"]["list"].contains("first_message_latency_ns"));
  CHECK(json["kinds"]["chat"].contains("reply_latency_ns"));
  CHECK(json["total"]["ok"].get<uint64_t>() == report->total.ok);
  CHECK(json.contains("completions_per_second"));
  CHECK(json.contains("measured_seconds"));

  const std::string html = FormatReportHtml(*report);
  CHECK_THAT(html, Catch::Contains("<svg"));
  CHECK_THAT(html, !Catch::Contains("<script"));
}

TEST_CASE("--list_rect asks every ListFeatures for the same rectangle",
          "[load][run]") {
  auto server = StartServer();
  LoadOptions options;
  options.target = "127.0.0.1:" + std::to_string(server->port());
  options.concurrency = 8;
  options.requests = 200;
  options.duration = absl::Seconds(60);
  options.mix = {0, 1, 0, 0};
  // The box that holds all 100 features of the built-in database.
  options.list_rect = GeoRect{{400000000, -750000000}, {420000000, -740000000}};
  std::atomic<bool> interrupt{false};
  auto report = RunLoad(options, interrupt);
  REQUIRE(report.ok());
  const auto& list = report->kinds[static_cast<int>(CallKind::kListFeatures)];
  CHECK(list.ok == 200);
  CHECK(list.wrong_answer == 0);
  CHECK(list.messages_received == 200 * 100);
  const nlohmann::json json = nlohmann::json::parse(FormatReportJson(*report));
  CHECK(json["settings"]["list_rect_e7"] ==
        nlohmann::json({400000000, -750000000, 420000000, -740000000}));
}

TEST_CASE("A list of targets spreads calls round-robin over the servers",
          "[load][run]") {
  auto first = StartServer();
  auto second = StartServer();
  LoadOptions options;
  options.target = "127.0.0.1:" + std::to_string(first->port()) + ",localhost:" +
                   std::to_string(second->port());
  options.mix = {1, 0, 0, 0};
  options.requests = 400;
  options.concurrency = 8;
  std::atomic<bool> interrupt{false};
  auto report = RunLoad(options, interrupt);
  REQUIRE(report.ok());
  CHECK(report->channel_target ==
        "ipv4:127.0.0.1:" + std::to_string(first->port()) + ",127.0.0.1:" +
            std::to_string(second->port()));
  CHECK(report->total.ok == report->total.completed());
  // Round robin: each server took about half (the first, also the one
  // asked for the feature list, one call more).
  const int64_t a = first->calls().accepted();
  const int64_t b = second->calls().accepted();
  INFO("first " << a << ", second " << b);
  CHECK(a + b >= 400);
  CHECK(std::abs(a - b) <= 40);
}

TEST_CASE("A closed port fails promptly with UNAVAILABLE", "[load][run]") {
  int port = 0;
  {
    auto server = StartServer();
    port = server->port();
  }
  LoadOptions options;
  options.target = "127.0.0.1:" + std::to_string(port);
  options.connect_timeout = absl::Seconds(1);
  std::atomic<bool> interrupt{false};
  const absl::Time start = absl::Now();
  auto report = RunLoad(options, interrupt);
  REQUIRE(!report.ok());
  CHECK(report.status().code() == absl::StatusCode::kUnavailable);
  CHECK_THAT(std::string(report.status().message()), Catch::Contains(options.target));
  CHECK(absl::Now() - start < absl::Seconds(30));  // Bounded, not a hang.
}

// A RouteGuide that answers GetFeature one call at a time, each after
// `delay`, and names every feature wrongly when `lie` is set. Sync API: it
// is a test fixture, not the product.
class SlowService final : public RouteGuide::Service {
 public:
  SlowService(absl::Duration delay, bool lie) : delay_(delay), lie_(lie) {}
  grpc::Status GetFeature(grpc::ServerContext*, const Point* point,
                          Feature* feature) override {
    absl::MutexLock lock(&mu_);  // One at a time: a queue forms.
    absl::SleepFor(delay_);
    *feature->mutable_location() = *point;
    if (lie_) feature->set_name("not what is stored");
    return grpc::Status::OK;
  }
  grpc::Status ListFeatures(grpc::ServerContext*, const Rectangle*,
                            grpc::ServerWriter<Feature>* writer) override {
    Feature feature;
    feature.set_name("somewhere");
    feature.mutable_location()->set_latitude(1);
    feature.mutable_location()->set_longitude(1);
    writer->Write(feature);
    return grpc::Status::OK;
  }

 private:
  absl::Mutex mu_;
  const absl::Duration delay_;
  const bool lie_;
};

struct FixtureServer {
  FixtureServer(absl::Duration delay, bool lie) : service(delay, lie) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
    REQUIRE(server != nullptr);
  }
  ~FixtureServer() { server->Shutdown(absl::ToChronoTime(absl::Now())); }
  SlowService service;
  int port = 0;
  std::unique_ptr<grpc::Server> server;
};

TEST_CASE("Wrong answers are counted apart from successes", "[load][run]") {
  FixtureServer liar(absl::ZeroDuration(), /*lie=*/true);
  LoadOptions options;
  options.target = "127.0.0.1:" + std::to_string(liar.port);
  options.mix = {1, 0, 0, 0};
  options.requests = 200;
  options.concurrency = 4;
  options.hit_ratio = 0;  // Random points: the right name is "".
  std::atomic<bool> interrupt{false};
  auto report = RunLoad(options, interrupt);
  REQUIRE(report.ok());
  CHECK(report->total.wrong_answer == report->total.completed());
  CHECK(report->total.ok == 0);
  CHECK(report->error_rate() == 1.0);
}

TEST_CASE("A slow server shows in open-loop percentiles, not only in the rate",
          "[load][run]") {
  // 20 ms per call, one at a time: at most 50 calls/s.
  FixtureServer slow(absl::Milliseconds(20), /*lie=*/false);
  LoadOptions options;
  options.target = "127.0.0.1:" + std::to_string(slow.port);
  options.mix = {1, 0, 0, 0};
  options.hit_ratio = 0;
  std::atomic<bool> interrupt{false};

  // Closed loop, one call at a time: each waits only for itself.
  options.concurrency = 1;
  options.requests = 20;
  auto closed = RunLoad(options, interrupt);
  REQUIRE(closed.ok());
  REQUIRE(closed->total.ok == closed->total.completed());

  // Open loop at twice the capacity for one second: a queue builds up, and
  // latency counted from the scheduled starts shows it.
  options.requests = 0;
  options.rps = 100;
  options.duration = absl::Seconds(1);
  auto open = RunLoad(options, interrupt);
  REQUIRE(open.ok());
  REQUIRE(open->total.ok == open->total.completed());
  const uint64_t closed_p90 = closed->total.latency.Percentile(90);
  const uint64_t open_p90 = open->total.latency.Percentile(90);
  INFO("closed p90 " << closed_p90 << " ns, open p90 " << open_p90 << " ns");
  CHECK(closed_p90 >= 20000000);
  CHECK(open_p90 > 10 * closed_p90 / 2);  // Hundreds of ms of queueing.
}

TEST_CASE("An interrupt ends the run early with a report", "[load][run]") {
  auto server = StartServer();
  LoadOptions options;
  options.target = "127.0.0.1:" + std::to_string(server->port());
  options.duration = absl::Hours(1);
  options.concurrency = 4;
  std::atomic<bool> interrupt{false};
  std::thread stopper([&] {
    absl::SleepFor(absl::Milliseconds(500));
    interrupt.store(true);
  });
  auto report = RunLoad(options, interrupt);
  stopper.join();
  REQUIRE(report.ok());
  CHECK(report->interrupted);
  CHECK(report->total.completed() > 0);
  CHECK(report->total.failed() == 0);
  CHECK(report->measured < absl::Minutes(10));
}

}  // namespace
}  // namespace routeguide
