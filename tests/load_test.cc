// The load generator in whole runs against real servers on 127.0.0.1:0:
// the RouteGuide server, and a fixture that answers slowly or wrongly.
#include <atomic>
#include <cmath>
#include <memory>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "catch2/catch.hpp"
#include "db_loader.h"
#include "histogram.h"
#include "load_fixture_server.h"
#include "load_generator.h"
#include "load_options.h"
#include "load_report.h"
#include "nlohmann/json.hpp"
#include "route_guide.grpc.pb.h"
#include "route_guide_server.h"
#include "test_server.h"

namespace routeguide {
namespace {

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
  CHECK(in_timeline + report->partial_second_completions == report->total.completed());
  // Whole seconds only: no entry for the window's last fraction of one.
  CHECK(report->completions_per_second.size() ==
        static_cast<size_t>(absl::ToInt64Seconds(report->measured)));
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
  CHECK(json["schema"] == "routeguide.load.v2");
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

TEST_CASE("Each kind counts wrong answers as wrong, and right ones as ok",
          "[load][run]") {
  const bool lie = GENERATE(false, true);
  LoadFixtureServer fixture(absl::ZeroDuration(), lie);
  LoadOptions options;
  options.target = "127.0.0.1:" + std::to_string(fixture.port);
  options.mix = {1, 1, 1, 1};
  options.requests = 800;
  options.concurrency = 8;
  options.hit_ratio = 0.5;  // Stored features and empty points alike.
  std::atomic<bool> interrupt{false};
  auto report = RunLoad(options, interrupt);
  REQUIRE(report.ok());
  REQUIRE(report->features_known == fixture.service.features());
  for (int k = 0; k < kNumCallKinds; ++k) {
    INFO(kCallKindNames[k] << (lie ? " from the liar" : " from the honest server"));
    const KindStats& kind = report->kinds[k];
    // Enough calls for each kind to meet every one of its lies many times.
    CHECK(kind.completed() >= 100);
    CHECK(kind.failed() == 0);
    CHECK(kind.wrong_answer == (lie ? kind.completed() : 0));
    CHECK(kind.ok == (lie ? 0 : kind.completed()));
  }
  CHECK(report->total.wrong_answer == (lie ? report->total.completed() : 0));
  CHECK(report->total.ok == (lie ? 0 : report->total.completed()));
  CHECK(report->error_rate() == (lie ? 1.0 : 0.0));
}

TEST_CASE("A slow server shows in open-loop percentiles, not only in the rate",
          "[load][run]") {
  // 20 ms per call, one at a time: at most 50 calls/s.
  LoadFixtureServer slow(absl::Milliseconds(20), /*lie=*/false);
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
