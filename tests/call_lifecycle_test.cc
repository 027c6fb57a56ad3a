// How server calls end when the server shuts down, in-process on
// 127.0.0.1:0 over real channels.
#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "route_guide.grpc.pb.h"
#include "route_guide_server.h"
#include "test_server.h"
#include "test_util.h"

namespace routeguide {
namespace {

// A store of `count` features with 100-byte names in a column, so that a
// ListFeatures over AllOfThem() is far more than the 64 KiB flow-control
// window holds.
std::shared_ptr<FeatureStore> ColumnOfFeatures(int count) {
  auto store = std::make_shared<FeatureStore>();
  for (int i = 0; i < count; ++i) {
    store->AddFeature({std::string(100, 'x'), {410000000 + i, -740000000}});
  }
  return store;
}

Rectangle AllOfThem() {
  Rectangle rectangle;
  rectangle.mutable_lo()->set_latitude(400000000);
  rectangle.mutable_lo()->set_longitude(-750000000);
  rectangle.mutable_hi()->set_latitude(420000000);
  rectangle.mutable_hi()->set_longitude(-730000000);
  return rectangle;
}

// Long enough for a slow reader on a loaded machine.
constexpr absl::Duration kCallDeadline = absl::Seconds(60);

uint64_t ListFeaturesEndedWith(const RouteGuideServer& server,
                               grpc::StatusCode code) {
  return server.calls().stats().of(Method::kListFeatures).finished[code].load();
}

TEST_CASE("A ListFeatures still being read at the end of the grace period "
          "ends with UNAVAILABLE from the server",
          "[server][shutdown][list]") {
  constexpr int kFeatures = 60000;
  ServerOptions options;
  // Shutdown asks the streams to end 750 ms before this deadline.
  options.grace = absl::Seconds(3);
  auto server = StartTestServer(options, ColumnOfFeatures(kFeatures));
  auto stub = RouteGuide::NewStub(SmallWindowChannel(server->port()));
  grpc::ClientContext context;
  SetDeadline(context, kCallDeadline);
  auto reader = stub->ListFeatures(&context, AllOfThem());
  Feature feature;
  REQUIRE(reader->Read(&feature));  // The call is in flight for sure.

  // A reader slow enough that the answer takes far longer than the grace
  // period, fast enough to take what is on its way in well under 750 ms.
  std::atomic<int> features{1};
  std::thread slow_reader([&] {
    Feature next;
    while (reader->Read(&next)) {
      features.fetch_add(1);
      absl::SleepFor(absl::Microseconds(100));
    }
  });
  const ShutdownReport report = server->Shutdown();
  slow_reader.join();
  const grpc::Status status = reader->Finish();

  CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK_THAT(status.error_message(), Catch::Contains("shutting down"));
  CHECK(features.load() < kFeatures);
  CHECK(report.calls_in_flight == 1);
  // Ended by the server, not cut off by gRPC when the grace period ended.
  CHECK(report.calls_cancelled == 0);
  CHECK(ListFeaturesEndedWith(*server, grpc::StatusCode::UNAVAILABLE) == 1);
  CHECK(server->calls().objects() == 0);
}

TEST_CASE("A ListFeatures held open by a client that does not read ends with "
          "UNAVAILABLE at shutdown, and its call is freed",
          "[server][shutdown][list]") {
  constexpr int kFeatures = 30000;
  ServerOptions options;
  options.grace = absl::Milliseconds(400);
  auto server = StartTestServer(options, ColumnOfFeatures(kFeatures));
  auto stub = RouteGuide::NewStub(SmallWindowChannel(server->port()));
  grpc::ClientContext context;
  SetDeadline(context, kCallDeadline);
  auto reader = stub->ListFeatures(&context, AllOfThem());
  Feature feature;
  REQUIRE(reader->Read(&feature));

  const ShutdownReport report = server->Shutdown();
  CHECK(report.calls_in_flight == 1);
  CHECK(server->calls().objects() == 0);

  // What did arrive is still there to read; then the status. Its Write
  // waits on this client for good, and so would a Finish, so the server
  // cannot send "shutting down": gRPC's own UNAVAILABLE ends the call when
  // the grace period ends (with gRPC 1.51), a status rather than a reset.
  int features = 1;
  while (reader->Read(&feature)) ++features;
  CHECK(features < kFeatures);
  CHECK(reader->Finish().error_code() == grpc::StatusCode::UNAVAILABLE);
}

TEST_CASE("A ListFeatures read to the end during the grace period finishes "
          "with OK",
          "[server][shutdown][list]") {
  constexpr int kFeatures = 3000;
  ServerOptions options;
  options.grace = absl::Seconds(60);
  auto server = StartTestServer(options, ColumnOfFeatures(kFeatures));
  auto stub = RouteGuide::NewStub(SmallWindowChannel(server->port()));
  grpc::ClientContext context;
  SetDeadline(context, kCallDeadline);
  auto reader = stub->ListFeatures(&context, AllOfThem());
  Feature feature;
  REQUIRE(reader->Read(&feature));

  ShutdownReport report;
  std::thread stopper([&] { report = server->Shutdown(); });
  REQUIRE(WaitFor([&] { return server->shutdown_started(); }));
  int features = 1;
  while (reader->Read(&feature)) ++features;
  const grpc::Status status = reader->Finish();
  stopper.join();
  CHECK(status.ok());
  CHECK(features == kFeatures);
  CHECK(report.calls_cancelled == 0);
  CHECK(ListFeaturesEndedWith(*server, grpc::StatusCode::OK) == 1);
  CHECK(server->calls().objects() == 0);
}

uint64_t RouteChatsEndedWith(const RouteGuideServer& server,
                             grpc::StatusCode code) {
  return server.calls().stats().of(Method::kRouteChat).finished[code].load();
}

TEST_CASE("A RouteChat with a reply on its way at shutdown ends with "
          "UNAVAILABLE from the server once that reply is read",
          "[server][shutdown][chat]") {
  // 100 notes of 4000 bytes at one point: every note sent there brings
  // 400 KB of replies, far more than the window, so the server always has
  // a Write waiting on this slow reader when the stop comes.
  ServerOptions options;
  options.grace = absl::Seconds(3);  // Streams are asked to stop at 2.25 s.
  auto store = DefaultTestStore();
  const std::string text(4000, 'n');
  for (int i = 0; i < 100; ++i) {
    REQUIRE(store->AddNote({{7, 7}, text}).size() == static_cast<size_t>(i));
  }
  auto server = StartTestServer(options, store);
  auto stub = RouteGuide::NewStub(SmallWindowChannel(server->port()));
  grpc::ClientContext context;
  SetDeadline(context, kCallDeadline);
  auto stream = stub->RouteChat(&context);
  REQUIRE(stream->Write(MakeNote(text, 7, 7)));
  RouteNote reply;
  REQUIRE(stream->Read(&reply));  // The call is in flight for sure.

  std::atomic<bool> writing{true};
  std::thread writer([&] {
    while (writing.load() && stream->Write(MakeNote(text, 7, 7))) {
    }
  });
  int replies = 1;
  std::thread slow_reader([&] {
    RouteNote next;
    while (stream->Read(&next)) {
      ++replies;
      absl::SleepFor(absl::Microseconds(200));
    }
    writing.store(false);
  });
  const ShutdownReport report = server->Shutdown();
  slow_reader.join();
  writer.join();
  const grpc::Status status = stream->Finish();

  INFO(status.error_code() << ": " << status.error_message() << " after "
                           << replies << " replies");
  CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK_THAT(status.error_message(), Catch::Contains("shutting down"));
  CHECK(report.calls_in_flight == 1);
  // Ended by the server, not cancelled under its Write in flight.
  CHECK(report.calls_cancelled == 0);
  CHECK(RouteChatsEndedWith(*server, grpc::StatusCode::UNAVAILABLE) == 1);
  CHECK(server->calls().objects() == 0);
}

}  // namespace
}  // namespace routeguide
