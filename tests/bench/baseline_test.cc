// The benchmark's baseline servers (sync-baseline-server,
// callback-baseline-server, cq-floor-server and, where built,
// go-baseline-server) as child processes on 127.0.0.1:0: each answers the
// RouteGuide methods as our server does (the floor server all but
// RouteChat), over a real channel, and exits 0 on SIGTERM.

#include <signal.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "db_loader.h"
#include "feature_store.h"
#include "geo.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "route_guide.grpc.pb.h"
#include "server_process.h"
#include "subprocess.h"
#include "test_util.h"

namespace routeguide {
namespace {

// Bounds each wait on a server process: starting, exiting.
constexpr absl::Duration kProcessTimeout = absl::Seconds(10);
// Every RPC's deadline.
constexpr absl::Duration kRpcDeadline = absl::Seconds(5);

RouteNote MakeNote(const std::string& message, const Point& location) {
  return routeguide::MakeNote(message, location.latitude(), location.longitude());
}

// Sends `notes` on one RouteChat, half-closes, and returns every reply and
// the call's status.
std::pair<std::vector<RouteNote>, grpc::Status> Chat(
    RouteGuide::Stub& stub, const std::vector<RouteNote>& notes) {
  grpc::ClientContext context;
  SetDeadline(context, kRpcDeadline);
  auto stream = stub.RouteChat(&context);
  // Writes after the server has ended the call fail; the status says why.
  for (const RouteNote& note : notes) {
    if (!stream->Write(note)) break;
  }
  stream->WritesDone();
  std::vector<RouteNote> replies;
  RouteNote reply;
  while (stream->Read(&reply)) replies.push_back(reply);
  return {std::move(replies), stream->Finish()};
}

void CheckInvalidArgument(const grpc::Status& status) {
  CAPTURE(status.error_code(), status.error_message());
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
}

// Every check of one baseline, over one channel. The floor server does not
// serve RouteChat (`route_chat` false): it must say so.
void CheckAllMethods(RouteGuide::Stub& stub, bool route_chat) {
  auto features = DefaultFeatures();
  REQUIRE(features.ok());
  FeatureStore store;
  AddFeatures(*std::move(features), store);

  const Point berkshire = MakePoint(409146138, -746188906);
  const Point patriots = MakePoint(407838351, -746143763);
  const Point nowhere = MakePoint(10000000, 10000000);
  const Point invalid = MakePoint(910000000, 0);

  {  // GetFeature: a stored feature, an empty one, an invalid point.
    grpc::ClientContext context;
    SetDeadline(context, kRpcDeadline);
    Feature feature;
    const grpc::Status status = stub.GetFeature(&context, berkshire, &feature);
    INFO(status.error_message());
    REQUIRE(status.ok());
    CHECK(feature.name() ==
          "Berkshire Valley Management Area Trail, Jefferson, NJ, USA");
    CHECK(feature.location().latitude() == berkshire.latitude());
    CHECK(feature.location().longitude() == berkshire.longitude());
  }
  {
    grpc::ClientContext context;
    SetDeadline(context, kRpcDeadline);
    Feature feature;
    const grpc::Status status = stub.GetFeature(&context, nowhere, &feature);
    INFO(status.error_message());
    REQUIRE(status.ok());
    CHECK(feature.name().empty());
    CHECK(feature.location().latitude() == nowhere.latitude());
    CHECK(feature.location().longitude() == nowhere.longitude());
  }
  {
    grpc::ClientContext context;
    SetDeadline(context, kRpcDeadline);
    Feature feature;
    CheckInvalidArgument(stub.GetFeature(&context, invalid, &feature));
  }

  {  // ListFeatures: the tutorial's rectangle, in the store's order. It
     // holds all 100 features, 64 of them named (the tutorial's client
     // prints only those); unnamed ones are streamed too, as by our server.
    Rectangle rect;
    *rect.mutable_lo() = MakePoint(400000000, -750000000);
    *rect.mutable_hi() = MakePoint(420000000, -730000000);
    const std::vector<FeatureRecord> expected = store.FeaturesIn(
        GeoRect::FromCorners({400000000, -750000000}, {420000000, -730000000}));
    REQUIRE(expected.size() == 100);

    grpc::ClientContext context;
    SetDeadline(context, kRpcDeadline);
    auto reader = stub.ListFeatures(&context, rect);
    std::vector<Feature> got;
    Feature feature;
    while (reader->Read(&feature)) got.push_back(feature);
    const grpc::Status status = reader->Finish();
    INFO(status.error_message());
    REQUIRE(status.ok());
    REQUIRE(got.size() == expected.size());
    size_t named = 0;
    for (const Feature& f : got) named += f.name().empty() ? 0 : 1;
    CHECK(named == 64);
    for (size_t i = 0; i < got.size(); ++i) {
      CAPTURE(i);
      CHECK(got[i].name() == expected[i].name);
      CHECK(got[i].location().latitude() == expected[i].location.latitude);
      CHECK(got[i].location().longitude() == expected[i].location.longitude);
    }
  }
  {
    Rectangle rect;
    *rect.mutable_lo() = MakePoint(0, 0);
    *rect.mutable_hi() = invalid;
    grpc::ClientContext context;
    SetDeadline(context, kRpcDeadline);
    auto reader = stub.ListFeatures(&context, rect);
    Feature feature;
    CHECK_FALSE(reader->Read(&feature));
    CheckInvalidArgument(reader->Finish());
  }

  {  // RecordRoute: three points, two of them features.
    const std::vector<Point> route = {berkshire, patriots, nowhere};
    grpc::ClientContext context;
    SetDeadline(context, kRpcDeadline);
    RouteSummary summary;
    const absl::Time started = absl::Now();
    auto writer = stub.RecordRoute(&context, &summary);
    for (const Point& point : route) {
      REQUIRE(writer->Write(point));
      // The route takes over a second, which elapsed_time must show.
      if (point.latitude() == berkshire.latitude()) {
        absl::SleepFor(absl::Milliseconds(1100));
      }
    }
    REQUIRE(writer->WritesDone());
    const grpc::Status status = writer->Finish();
    const absl::Duration call_time = absl::Now() - started;
    INFO(status.error_message());
    REQUIRE(status.ok());
    const GeoPoint a{berkshire.latitude(), berkshire.longitude()};
    const GeoPoint b{patriots.latitude(), patriots.longitude()};
    const GeoPoint c{nowhere.latitude(), nowhere.longitude()};
    CHECK(summary.point_count() == 3);
    CHECK(summary.feature_count() == 2);
    CHECK(summary.distance() ==
          SaturateToInt32(HaversineMeters(a, b) + HaversineMeters(b, c)));
    // Whole seconds, of a call that lies within the client's.
    INFO("the call took " << absl::FormatDuration(call_time));
    CHECK(summary.elapsed_time() >= 1);
    CHECK(summary.elapsed_time() <= absl::ToInt64Seconds(call_time));
  }
  {
    grpc::ClientContext context;
    SetDeadline(context, kRpcDeadline);
    RouteSummary summary;
    auto writer = stub.RecordRoute(&context, &summary);
    if (writer->Write(berkshire) && writer->Write(invalid)) writer->WritesDone();
    CheckInvalidArgument(writer->Finish());
  }

  if (!route_chat) {
    auto [replies, status] = Chat(stub, {MakeNote("a", berkshire)});
    CAPTURE(status.error_message());
    CHECK(status.error_code() == grpc::StatusCode::UNIMPLEMENTED);
    CHECK(replies.empty());
    return;
  }
  {  // RouteChat: each note gets the earlier notes at its location.
    auto [replies, status] =
        Chat(stub, {MakeNote("a", berkshire), MakeNote("b", patriots),
                    MakeNote("c", berkshire)});
    INFO(status.error_message());
    REQUIRE(status.ok());
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].message() == "a");
    CHECK(replies[0].location().latitude() == berkshire.latitude());
    CHECK(replies[0].location().longitude() == berkshire.longitude());
  }
  {  // Notes stay for later calls, oldest first.
    auto [replies, status] = Chat(stub, {MakeNote("d", berkshire)});
    INFO(status.error_message());
    REQUIRE(status.ok());
    REQUIRE(replies.size() == 2);
    CHECK(replies[0].message() == "a");
    CHECK(replies[1].message() == "c");
  }
  {  // The replies queued before a bad note still arrive, then the error.
    auto [replies, status] =
        Chat(stub, {MakeNote("e", patriots), MakeNote("f", invalid)});
    CheckInvalidArgument(status);
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].message() == "b");
  }
  {  // A note longer than our server's default --max_note_size (4 KiB).
    auto [replies, status] =
        Chat(stub, {MakeNote(std::string(4097, 'x'), nowhere)});
    CheckInvalidArgument(status);
    CHECK(replies.empty());
  }
}

TEST_CASE(
    "Each baseline server answers the four methods as our server does and "
    "exits 0 on SIGTERM",
    "[baseline]") {
  // The Go baseline is built only where Debian's Go toolchain and grpc-go
  // are installed (meson option go_baseline); meson then sets its variable.
  std::vector<std::string> env_names = {
      "SYNC_BASELINE_SERVER", "CALLBACK_BASELINE_SERVER", "FLOOR_SERVER"};
  if (std::getenv("GO_BASELINE_SERVER") != nullptr) {
    env_names.push_back("GO_BASELINE_SERVER");
  }
  const std::string env_name = GENERATE_COPY(from_range(env_names));
  CAPTURE(env_name);
  testing::ServerProcess server = testing::StartListeningProcess(
      {testing::BinaryFromEnv(env_name), "--address=127.0.0.1:0"},
      "listening on 127.0.0.1:0 (port ", kProcessTimeout);
  {
    auto stub = RouteGuide::NewStub(
        grpc::CreateChannel(server.target(), grpc::InsecureChannelCredentials()));
    CheckAllMethods(*stub, /*route_chat=*/env_name != "FLOOR_SERVER");
    // The channel closes here, so the server's shutdown need not wait for
    // it to notice the GOAWAY.
  }

  REQUIRE(server.process->Signal(SIGTERM).ok());
  auto exit = server.process->Wait(kProcessTimeout);
  INFO(exit.status().ToString() << "\nstderr:\n" << server.process->stderr_text());
  REQUIRE(exit.ok());
  CHECK(exit->Exited(0));
}

}  // namespace
}  // namespace routeguide
