// Prometheus metrics: scraped over HTTP from a real server after real calls.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "catch2/catch.hpp"
#include "config.h"
#include "db_loader.h"
#include "grpcpp/create_channel.h"
#include "metrics_exporter.h"
#include "metrics_scrape.h"
#include "route_guide.grpc.pb.h"
#include "route_guide_server.h"
#include "test_server.h"
#include "test_util.h"

namespace routeguide {
namespace {


TEST_CASE("Metrics count calls by method and code, messages, notes and "
          "features",
          "[metrics]") {
  auto store = DefaultTestStore();
  auto server = StartTestServer({}, store);
  auto exporter = MetricsExporter::Start("127.0.0.1:0", *server, *store, kTestMetricsModule);
  REQUIRE(exporter.ok());
  REQUIRE((*exporter)->port() > 0);

  auto stub = RouteGuide::NewStub(grpc::CreateChannel(
      LocalTarget(server->port()), grpc::InsecureChannelCredentials()));
  auto deadline = [] { return absl::ToChronoTime(absl::Now() + absl::Seconds(10)); };
  Point point;
  point.set_latitude(409146138);
  point.set_longitude(-746188906);
  Feature feature;
  {
    grpc::ClientContext context;
    context.set_deadline(deadline());
    REQUIRE(stub->GetFeature(&context, point, &feature).ok());
  }
  {
    grpc::ClientContext context;
    context.set_deadline(deadline());
    point.set_latitude(900000001);
    REQUIRE(stub->GetFeature(&context, point, &feature).error_code() ==
            grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    grpc::ClientContext context;
    context.set_deadline(deadline());
    auto stream = stub->RouteChat(&context);
    RouteNote note;
    for (int i = 0; i < 3; ++i) {
      note.mutable_location()->set_latitude(i == 2 ? 0 : 7);
      REQUIRE(stream->Write(note));
    }
    stream->WritesDone();
    while (stream->Read(&note)) {
    }
    REQUIRE(stream->Finish().ok());
  }
  // Calls are recorded when freed; in flight drops to zero after that.
  CHECK(WaitFor([&] { return server->calls().active() == 0; }));
  const std::string metrics = Scrape((*exporter)->port());
  INFO(metrics);
  for (const char* line : {
           "routeguide_calls_started_total{method=\"GetFeature\"} 2\n",
           "routeguide_calls_finished_total{code=\"OK\",method=\"GetFeature\"} 1\n",
           "routeguide_calls_finished_total{code=\"INVALID_ARGUMENT\",method=\"GetFeature\"} 1\n",
           "routeguide_calls_finished_total{code=\"OK\",method=\"RouteChat\"} 1\n",
           "routeguide_messages_received_total{method=\"RouteChat\"} 3\n",
           "routeguide_messages_sent_total{method=\"RouteChat\"} 1\n",
           "routeguide_call_duration_seconds_count{method=\"GetFeature\"} 2\n",
           "routeguide_calls_in_flight 0\n",
           "routeguide_notes_stored 3\n",
           "routeguide_features_loaded 100\n",
       }) {
    CHECK_THAT(metrics, Catch::Contains(line));
  }
}

TEST_CASE("A metrics module that is missing or not ours is an error naming "
          "it", "[metrics]") {
  auto store = std::make_shared<FeatureStore>();
  auto server = StartTestServer({}, store);
  // Starting with `module` fails with an error that says `expected`.
  auto check_refused = [&](const char* module, const char* expected) {
    auto exporter = MetricsExporter::Start("127.0.0.1:0", *server, *store, module);
    REQUIRE(!exporter.ok());
    CHECK_THAT(std::string(exporter.status().message()), Catch::Contains(expected));
  };
  SECTION("missing") {
    check_refused("/nonexistent/routeguide-metrics.so",
                  "/nonexistent/routeguide-metrics.so");
  }
  SECTION("a shared library without the entry points") {
    check_refused("libz.so.1", "not a routeguide metrics module");
  }
  SECTION("none beside the binary or installed (this test's binary has none "
          "beside it)") {
    auto exporter = MetricsExporter::Start("127.0.0.1:0", *server, *store);
    if (exporter.ok()) {
      WARN("a metrics module is installed in " ROUTEGUIDE_METRICS_MODULE_DIR);
      return;
    }
    CHECK_THAT(std::string(exporter.status().message()),
               Catch::Contains("tests/routeguide-metrics.so"));
    CHECK_THAT(std::string(exporter.status().message()),
               Catch::Contains(ROUTEGUIDE_METRICS_MODULE_DIR));
  }
}

TEST_CASE("An address the exporter cannot bind is an error, not a crash",
          "[metrics]") {
  auto store = std::make_shared<FeatureStore>();
  auto server = StartTestServer({}, store);
  auto first = MetricsExporter::Start("127.0.0.1:0", *server, *store, kTestMetricsModule);
  REQUIRE(first.ok());
  auto second = MetricsExporter::Start(
      absl::StrCat("127.0.0.1:", (*first)->port()), *server, *store, kTestMetricsModule);
  CHECK(!second.ok());
}

}  // namespace
}  // namespace routeguide
