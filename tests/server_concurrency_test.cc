// Many calls at once, cancelled calls and shutdown, on the server in-process.
#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "catch2/catch.hpp"
#include "client_calls.h"
#include "client_queues.h"
#include "db_loader.h"
#include "feature_wire_cache.h"
#include "geo.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/security/credentials.h"
#include "health.grpc.pb.h"
#include "route_guide.grpc.pb.h"
#include "route_guide_server.h"
#include "test_server.h"
#include "test_util.h"

namespace routeguide {
namespace {

TEST_CASE("64 calls of each kind at once all complete correctly",
          "[server][concurrency]") {
  TestServer test;
  constexpr int kCallsPerKind = 64;
  ClientQueues queues(2);
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<RouteGuide::Stub>> stubs;
  for (int i = 0; i < 4; ++i) {
    channels.push_back(test.NewChannel());
    stubs.push_back(RouteGuide::NewStub(channels.back()));
  }
  CallOptions options;
  options.deadline = kTestRpcDeadline;

  absl::Mutex mu;
  int remaining = 4 * kCallsPerKind;
  std::atomic<int> failures{0};
  auto finish_one = [&](bool good) {
    if (!good) failures.fetch_add(1);
    absl::MutexLock lock(&mu);
    --remaining;
  };

  for (int i = 0; i < kCallsPerKind; ++i) {
    RouteGuide::Stub& stub = *stubs[i % stubs.size()];
    grpc::CompletionQueue& cq = *queues.queue(i % queues.size());
    StartGetFeature(stub, cq, options, MakePoint(409146138, -746188906),
                    [&](const grpc::Status& s, const Feature& f) {
                      finish_one(s.ok() && !f.name().empty());
                    });
    auto count = std::make_shared<std::atomic<int>>(0);
    StartListFeatures(
        stub, cq, options,
        MakeRectangle(MakePoint(400000000, -750000000),
                      MakePoint(420000000, -730000000)),
        [count](const Feature&) { count->fetch_add(1); },
        [&, count](const grpc::Status& s) {
          finish_one(s.ok() && count->load() == 100);
        });
    StartRecordRoute(
        stub, cq, options,
        {MakePoint(409146138, -746188906), MakePoint(0, 0)},
        [](const Point&) {},
        [&](const grpc::Status& s, const RouteSummary& summary) {
          finish_one(s.ok() && summary.point_count() == 2 &&
                     summary.feature_count() == 1);
        });
    // Each chat uses its own location, so it expects exactly one reply.
    auto replies = std::make_shared<std::atomic<int>>(0);
    StartRouteChat(
        stub, cq, options,
        {MakeNote("x", 100 + i, 0), MakeNote("y", 100 + i, 0)},
        [](const RouteNote&) {},
        [replies](const RouteNote&) { replies->fetch_add(1); },
        [&, replies](const grpc::Status& s) {
          finish_one(s.ok() && replies->load() == 1);
        });
  }
  {
    absl::MutexLock lock(&mu);
    auto all_done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) {
      return remaining == 0;
    };
    REQUIRE(mu.AwaitWithTimeout(absl::Condition(&all_done), absl::Seconds(60)));
  }
  CHECK(failures.load() == 0);
  CHECK(NoCallsInFlight(test));
}

TEST_CASE("Cancelled and expired calls are freed and the server goes on",
          "[server][cancel]") {
  TestServer test;
  const int64_t cancelled_before = test.server->calls().cancelled();

  SECTION("ListFeatures cancelled after its first feature") {
    // Enough features that the server is still writing (held back by flow
    // control) when the cancellation arrives.
    for (int i = 0; i < 50000; ++i) {
      test.store->AddFeature({std::string(100, 'x'), {410000000 + i, -740000000}});
    }
    grpc::ClientContext context;
    SetDeadline(context);
    auto reader = test.stub->ListFeatures(
        &context, MakeRectangle(MakePoint(400000000, -750000000),
                                MakePoint(420000000, -730000000)));
    Feature feature;
    REQUIRE(reader->Read(&feature));
    context.TryCancel();
    while (reader->Read(&feature)) {
    }
    CHECK(reader->Finish().error_code() == grpc::StatusCode::CANCELLED);
  }
  SECTION("RouteChat cancelled while the server waits for a note") {
    REQUIRE(test.store->AddNote({{4, 4}, "there"}).empty());
    grpc::ClientContext context;
    SetDeadline(context);
    auto stream = test.stub->RouteChat(&context);
    REQUIRE(stream->Write(MakeNote("here", 4, 4)));
    RouteNote reply;
    REQUIRE(stream->Read(&reply));
    context.TryCancel();
    CHECK(stream->Finish().error_code() == grpc::StatusCode::CANCELLED);
  }
  SECTION("RouteChat whose deadline passes while idle") {
    grpc::ClientContext context;
    SetDeadline(context, kSanitizerSlowdown * absl::Milliseconds(200));
    auto stream = test.stub->RouteChat(&context);
    RouteNote reply;
    CHECK(!stream->Read(&reply));
    CHECK(stream->Finish().error_code() ==
          grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  SECTION("RecordRoute whose deadline passes mid-stream") {
    grpc::ClientContext context;
    SetDeadline(context, kSanitizerSlowdown * absl::Milliseconds(200));
    RouteSummary summary;
    auto writer = test.stub->RecordRoute(&context, &summary);
    REQUIRE(writer->Write(MakePoint(1, 1)));
    CHECK(writer->Finish().error_code() ==
          grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  // The server saw the cancellation and freed the call...
  CHECK(WaitFor([&] {
    return test.server->calls().cancelled() > cancelled_before;
  }));
  CHECK(NoCallsInFlight(test));
  // ...and still serves.
  grpc::ClientContext context;
  SetDeadline(context);
  Feature feature;
  CHECK(test.stub->GetFeature(&context, MakePoint(409146138, -746188906),
                              &feature)
            .ok());
}

TEST_CASE("Shutdown lets calls finish within the grace period, then cancels",
          "[server][shutdown]") {
  ServerOptions options = TestServer::DefaultOptions();

  SECTION("streams still open at the end of the grace period end with a "
          "status, not a reset") {
    options.grace = absl::Milliseconds(400);
    TestServer test(options);
    grpc::ClientContext chat_context;
    SetDeadline(chat_context);
    auto chat = test.stub->RouteChat(&chat_context);
    REQUIRE(chat->Write(MakeNote("waiting", 2, 2)));
    grpc::ClientContext route_context;
    SetDeadline(route_context);
    RouteSummary summary;
    auto route = test.stub->RecordRoute(&route_context, &summary);
    REQUIRE(route->Write(MakePoint(1, 1)));
    REQUIRE(WaitFor([&] { return test.server->calls().active() == 2; }));

    const ShutdownReport report = test.server->Shutdown();
    CHECK(report.calls_in_flight == 2);
    CHECK(report.calls_cancelled == 0);
    CHECK(test.server->calls().objects() == 0);
    RouteNote reply;
    CHECK(!chat->Read(&reply));
    for (const grpc::Status& status : {chat->Finish(), route->Finish()}) {
      CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);
      CHECK_THAT(status.error_message(), Catch::Contains("shutting down"));
    }
  }
  SECTION("a stream that ends during the grace period finishes with OK") {
    options.grace = absl::Seconds(60);
    TestServer test(options);
    REQUIRE(test.store->AddNote({{6, 6}, "before"}).empty());
    grpc::ClientContext context;
    SetDeadline(context);
    auto stream = test.stub->RouteChat(&context);
    REQUIRE(stream->Write(MakeNote("during", 6, 6)));
    RouteNote reply;
    REQUIRE(stream->Read(&reply));  // The call is in flight for sure.

    ShutdownReport report;
    std::thread stopper([&] { report = test.server->Shutdown(); });
    REQUIRE(WaitFor([&] { return test.server->shutdown_started(); }));
    stream->WritesDone();
    CHECK(!stream->Read(&reply));
    CHECK(stream->Finish().ok());
    stopper.join();
    CHECK(report.calls_cancelled == 0);
    CHECK(test.server->calls().objects() == 0);
  }
  SECTION("pre-posted requests alone shut down at once and leave nothing") {
    TestServer test(options);
    CHECK(test.server->calls().objects() > 0);
    const ShutdownReport report = test.server->Shutdown();
    CHECK(report.calls_in_flight == 0);
    CHECK(test.server->calls().objects() == 0);
    // Idempotent.
    CHECK(test.server->Shutdown().calls_in_flight == 0);
  }
}

}  // namespace
}  // namespace routeguide
