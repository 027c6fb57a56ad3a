// The server in-process on 127.0.0.1:0, called over real channels.
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

// Calls in flight drop back to zero once the server has freed every call.
bool NoCallsInFlight(const TestServer& test) {
  return WaitFor([&] { return test.server->calls().active() == 0; });
}

std::vector<Feature> ListFeatures(RouteGuide::Stub& stub,
                                  const Rectangle& rectangle,
                                  grpc::Status* status) {
  grpc::ClientContext context;
  SetDeadline(context);
  auto reader = stub.ListFeatures(&context, rectangle);
  std::vector<Feature> features;
  Feature feature;
  while (reader->Read(&feature)) features.push_back(feature);
  *status = reader->Finish();
  return features;
}

TEST_CASE("FeatureWireCache encodes each feature once, by insertion index",
          "[server][list]") {
  FeatureStore store;
  store.AddFeature({"first", {1, 2}});
  store.AddFeature({"", {3, 4}});
  FeatureWireCache cache(&store);
  auto decode = [](const FeatureWireCache::Snapshot& snapshot, uint64_t index) {
    grpc::ByteBuffer bytes;
    Feature feature;
    REQUIRE(snapshot.Get(index, &bytes));
    REQUIRE(grpc::SerializationTraits<Feature>::Deserialize(&bytes, &feature).ok());
    return feature;
  };
  auto snapshot = cache.Covering(2);
  REQUIRE(snapshot->size() == 2);
  CHECK(decode(*snapshot, 0).name() == "first");
  CHECK(decode(*snapshot, 0).location().longitude() == 2);
  CHECK(decode(*snapshot, 1).name().empty());
  CHECK(decode(*snapshot, 1).location().latitude() == 3);
  grpc::ByteBuffer unused;
  CHECK(!snapshot->Get(2, &unused));

  SECTION("a feature added later is encoded on first demand") {
    store.AddFeature({std::string(300, 'n'), {5, 6}});
    CHECK(cache.Covering(2) == snapshot);  // Enough already: no new work.
    auto newer = cache.Covering(3);
    REQUIRE(newer != snapshot);
    CHECK(decode(*newer, 2).name() == std::string(300, 'n'));
    CHECK(decode(*newer, 0).name() == "first");
    CHECK(!snapshot->Get(2, &unused));  // The old one is unchanged.
  }
}

TEST_CASE("ListFeatures serves features added while the server runs",
          "[server][list]") {
  TestServer test;
  const Rectangle rectangle = MakeRectangle(MakePoint(10, 10), MakePoint(20, 20));
  grpc::Status status;
  CHECK(ListFeatures(*test.stub, rectangle, &status).empty());
  CHECK(status.ok());
  for (int round = 0; round < 3; ++round) {
    test.store->AddFeature({"added " + std::to_string(round), {10 + round, 15}});
    // Added too, just outside the rectangle: never listed.
    test.store->AddFeature({"outside " + std::to_string(round), {21 + round, 15}});
    auto features = ListFeatures(*test.stub, rectangle, &status);
    REQUIRE(status.ok());
    REQUIRE(features.size() == static_cast<size_t>(round + 1));
    for (int i = 0; i <= round; ++i) {
      CHECK(features[i].name() == "added " + std::to_string(i));
      CHECK(features[i].location().latitude() == 10 + i);
    }
  }
}

TEST_CASE("ListFeatures walks a large answer with a cursor, in database "
          "order, as it lists a small one",
          "[server][list]") {
  TestServer test;
  // 100 built-in features, then 5000 more on a grid, some at points that
  // were already taken, so the answers pass the listing threshold (1024)
  // and mix both kinds of index.
  for (int i = 0; i < 5000; ++i) {
    const int32_t latitude = 100000 * (i % 71) - 3000000;
    const int32_t longitude = 100000 * (i / 71) - 3000000;
    test.store->AddFeature({"grid " + std::to_string(i), {latitude, longitude}});
  }
  const GeoRect rect = GENERATE(
      GeoRect::FromCorners({-900000000, -1800000000}, {900000000, 1800000000}),
      GeoRect::FromCorners({-3000000, -3000000}, {2000000, 3000000}),
      GeoRect::FromCorners({-1000000, -1000000}, {-500000, -500000}));
  std::vector<std::string> expected;
  for (const FeatureRecord& feature : test.store->FeaturesIn(rect)) {
    expected.push_back(feature.name);
  }
  CAPTURE(expected.size());
  grpc::Status status;
  std::vector<std::string> got;
  for (const Feature& feature :
       ListFeatures(*test.stub,
                    MakeRectangle(MakePoint(rect.lo.latitude, rect.lo.longitude),
                                  MakePoint(rect.hi.latitude, rect.hi.longitude)),
                    &status)) {
    got.push_back(feature.name());
  }
  REQUIRE(status.ok());
  CHECK(got == expected);
}

TEST_CASE("FeatureWireCache's cursor finds the features inside a rectangle "
          "chunk by chunk", "[server][list]") {
  FeatureStore store;
  for (int i = 0; i < 10; ++i) store.AddFeature({"", {i, i}});
  FeatureWireCache cache(&store);
  auto snapshot = cache.Covering(10);
  const GeoRect rect = GeoRect::FromCorners({2, 2}, {7, 7});
  std::vector<uint64_t> found;
  uint64_t from = snapshot->Scan(rect, 0, 4, &found);
  CHECK(found == std::vector<uint64_t>{2, 3, 4, 5});
  from = snapshot->Scan(rect, from, 4, &found);
  CHECK(found == std::vector<uint64_t>{2, 3, 4, 5, 6, 7});
  CHECK(from == 10);
  CHECK(snapshot->Scan(rect, from, 4, &found) == 10);
  CHECK(found.size() == 6);
}

TEST_CASE("ListFeatures answers bytes that are no Rectangle with "
          "INVALID_ARGUMENT", "[server][list]") {
  TestServer test;
  grpc::GenericStub generic(test.channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  SetDeadline(context);
  const char kGarbage[] = "\xff\xff\xff\xff";  // A truncated varint field.
  grpc::Slice slice(kGarbage, sizeof(kGarbage) - 1);
  grpc::ByteBuffer request(&slice, 1);
  auto call = generic.PrepareUnaryCall(
      &context, "/routeguide.RouteGuide/ListFeatures", request, &cq);
  call->StartCall();
  grpc::ByteBuffer reply;
  grpc::Status status;
  call->Finish(&reply, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  REQUIRE(cq.Next(&tag, &ok));
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(status.error_message(), Catch::Contains("Rectangle"));
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

// Sends each of `messages` (raw bytes) on one stream of client-streaming
// or bidi `method`, then half-closes, reads whatever comes back and
// returns the status. Blocking, on a queue of its own.
grpc::Status StreamRawMessages(grpc::Channel& channel, const std::string& method,
                               const std::vector<std::string>& messages) {
  grpc::GenericStub generic(channel.shared_from_this());
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  SetDeadline(context);
  auto call = generic.PrepareCall(&context, method, &cq);
  void* tag = nullptr;
  bool ok = false;
  // Every operation below is awaited before the next is posted.
  auto await = [&] { REQUIRE(cq.Next(&tag, &ok)); return ok; };
  call->StartCall(reinterpret_cast<void*>(1));
  await();
  for (const std::string& message : messages) {
    grpc::Slice slice(message);
    grpc::ByteBuffer bytes(&slice, 1);
    call->Write(bytes, reinterpret_cast<void*>(2));
    if (!await()) break;  // The server ended the call already.
  }
  call->WritesDone(reinterpret_cast<void*>(3));
  await();
  grpc::ByteBuffer reply;
  do {
    call->Read(&reply, reinterpret_cast<void*>(4));
  } while (await());
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  await();
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

TEST_CASE("A corrupt message in the middle of a stream ends the call with "
          "INVALID_ARGUMENT, not as if the client had finished",
          "[server][stream]") {
  TestServer test;
  RouteNote note;
  *note.mutable_location() = MakePoint(1, 2);
  note.set_message("hello");
  const std::string good_note = note.SerializeAsString();
  const std::string good_point = MakePoint(1, 2).SerializeAsString();
  // Field 2 (message), 2 bytes that are not UTF-8.
  const std::string not_utf8 = std::string("\x12\x02\xff\xfe", 4);
  const std::string not_protobuf = "\xff\xff\xff\xff";  // A truncated varint.
  const std::string corrupt = GENERATE_COPY(not_utf8, not_protobuf);

  SECTION("RouteChat: note, corrupt, note") {
    const grpc::Status status = StreamRawMessages(
        *test.channel, "/routeguide.RouteGuide/RouteChat", {good_note, corrupt, good_note});
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(status.error_message(), Catch::Contains("message 2"));
    CHECK_THAT(status.error_message(), Catch::Contains("RouteNote"));
  }
  SECTION("RecordRoute: point, corrupt, point") {
    if (corrupt == not_utf8) return;  // A Point has no string to break.
    const grpc::Status status = StreamRawMessages(
        *test.channel, "/routeguide.RouteGuide/RecordRoute", {good_point, corrupt, good_point});
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(status.error_message(), Catch::Contains("message 2"));
    CHECK_THAT(status.error_message(), Catch::Contains("Point"));
  }
  SECTION("well-formed streams still end OK") {
    CHECK(StreamRawMessages(*test.channel, "/routeguide.RouteGuide/RouteChat",
                            {good_note, good_note})
              .ok());
    CHECK(StreamRawMessages(*test.channel, "/routeguide.RouteGuide/RecordRoute",
                            {good_point, good_point})
              .ok());
  }
}

TEST_CASE("GetFeature returns the stored feature or an unnamed one",
          "[server][get]") {
  TestServer test;
  grpc::ClientContext context;
  SetDeadline(context);
  Feature feature;

  SECTION("a stored point") {
    REQUIRE(test.stub->GetFeature(&context, MakePoint(409146138, -746188906),
                                  &feature)
                .ok());
    CHECK(feature.name() ==
          "Berkshire Valley Management Area Trail, Jefferson, NJ, USA");
    CHECK(feature.location().latitude() == 409146138);
    CHECK(feature.location().longitude() == -746188906);
  }
  SECTION("a point one unit away from a stored one") {
    REQUIRE(test.stub->GetFeature(&context, MakePoint(409146139, -746188906),
                                  &feature)
                .ok());
    CHECK(feature.name().empty());
    CHECK(feature.location().latitude() == 409146139);
    CHECK(feature.location().longitude() == -746188906);
  }
  SECTION("the inclusive corners of the world") {
    REQUIRE(test.stub->GetFeature(&context,
                                  MakePoint(-900000000, 1800000000), &feature)
                .ok());
    CHECK(feature.name().empty());
    CHECK(feature.location().longitude() == 1800000000);
  }
}

TEST_CASE("Every method rejects a point out of range with INVALID_ARGUMENT",
          "[server][validation]") {
  TestServer test;
  const auto [latitude, longitude, bad_value] =
      GENERATE(table<int32_t, int32_t, std::string>({
          {900000001, 0, "900000001"},
          {-900000001, 0, "-900000001"},
          {0, 1800000001, "1800000001"},
          {0, -1800000001, "-1800000001"},
          {std::numeric_limits<int32_t>::min(), 0, "-2147483648"},
          {0, std::numeric_limits<int32_t>::max(), "2147483647"},
      }));
  const Point bad = MakePoint(latitude, longitude);
  grpc::ClientContext context;
  SetDeadline(context);
  grpc::Status status;

  SECTION("GetFeature") {
    Feature feature;
    status = test.stub->GetFeature(&context, bad, &feature);
  }
  SECTION("ListFeatures, either corner") {
    const bool bad_is_lo = GENERATE(true, false);
    const Point good = MakePoint(0, 0);
    auto reader = test.stub->ListFeatures(
        &context, bad_is_lo ? MakeRectangle(bad, good) : MakeRectangle(good, bad));
    Feature feature;
    while (reader->Read(&feature)) {
    }
    status = reader->Finish();
  }
  SECTION("RecordRoute, after valid points") {
    RouteSummary summary;
    auto writer = test.stub->RecordRoute(&context, &summary);
    writer->Write(MakePoint(1, 1));
    writer->Write(bad);
    writer->WritesDone();
    status = writer->Finish();
  }
  SECTION("RouteChat, after a valid note") {
    auto stream = test.stub->RouteChat(&context);
    stream->Write(MakeNote("fine", 5, 5));
    stream->Write(MakeNote("bad", latitude, longitude));
    stream->WritesDone();
    RouteNote note;
    while (stream->Read(&note)) {
    }
    status = stream->Finish();
  }
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(status.error_message(), Catch::Contains(bad_value));
  CHECK(NoCallsInFlight(test));
}

TEST_CASE("ListFeatures streams the features inside the rectangle in order",
          "[server][list]") {
  TestServer test;
  const std::vector<FeatureRecord> all = *DefaultFeatures();
  grpc::Status status;

  SECTION("the tutorial's rectangle holds all 100, in database order") {
    const Point lo = MakePoint(400000000, -750000000);
    const Point hi = MakePoint(420000000, -730000000);
    const bool swapped = GENERATE(false, true);
    auto features = ListFeatures(
        *test.stub, swapped ? MakeRectangle(hi, lo) : MakeRectangle(lo, hi),
        &status);
    REQUIRE(status.ok());
    REQUIRE(features.size() == all.size());
    for (size_t i = 0; i < all.size(); ++i) {
      CHECK(features[i].name() == all[i].name);
      CHECK(features[i].location().latitude() == all[i].location.latitude);
      CHECK(features[i].location().longitude() == all[i].location.longitude);
    }
  }
  SECTION("bounds are inclusive: a degenerate rectangle on one feature") {
    const Point p = MakePoint(all[7].location.latitude, all[7].location.longitude);
    auto features = ListFeatures(*test.stub, MakeRectangle(p, p), &status);
    REQUIRE(status.ok());
    REQUIRE(features.size() == 1);
    CHECK(features[0].name() == all[7].name);
  }
  SECTION("a sub-rectangle returns exactly the features inside it") {
    const GeoRect rect =
        GeoRect::FromCorners({410000000, -745000000}, {415000000, -740000000});
    std::vector<std::string> expected;
    for (const FeatureRecord& f : all) {
      if (rect.Contains(f.location)) expected.push_back(f.name);
    }
    REQUIRE(!expected.empty());
    auto features = ListFeatures(
        *test.stub,
        MakeRectangle(MakePoint(415000000, -740000000),
                      MakePoint(410000000, -745000000)),
        &status);
    REQUIRE(status.ok());
    std::vector<std::string> got;
    for (const Feature& f : features) got.push_back(f.name());
    CHECK(got == expected);
  }
  SECTION("an empty region ends the stream at once with OK") {
    auto features = ListFeatures(
        *test.stub, MakeRectangle(MakePoint(0, 0), MakePoint(10, 10)), &status);
    CHECK(status.ok());
    CHECK(features.empty());
  }
  SECTION("the whole world") {
    auto features = ListFeatures(
        *test.stub,
        MakeRectangle(MakePoint(-900000000, -1800000000),
                      MakePoint(900000000, 1800000000)),
        &status);
    CHECK(status.ok());
    CHECK(features.size() == all.size());
  }
}

TEST_CASE("RecordRoute summarises points, features, distance and time",
          "[server][record]") {
  TestServer test;
  grpc::ClientContext context;
  SetDeadline(context);
  RouteSummary summary;
  auto writer = test.stub->RecordRoute(&context, &summary);

  SECTION("the tutorial's route of ten stored points, some unnamed") {
    const std::vector<Point> route = {
        MakePoint(412856162, -745148837), MakePoint(418465462, -746859398),
        MakePoint(406589790, -743560121), MakePoint(416851321, -742674555),
        MakePoint(415301720, -748416257), MakePoint(407033786, -743977337),
        MakePoint(401012643, -744035134), MakePoint(412144655, -743949739),
        MakePoint(414638017, -745957854), MakePoint(400273442, -741220915)};
    for (const Point& p : route) REQUIRE(writer->Write(p));
    writer->WritesDone();
    REQUIRE(writer->Finish().ok());
    CHECK(summary.point_count() == 10);
    CHECK(summary.feature_count() == 10);
    CHECK(summary.distance() == 850915);
    CHECK(summary.elapsed_time() == 0);
  }
  SECTION("points that are not features are counted but not as features") {
    REQUIRE(writer->Write(MakePoint(0, 0)));
    REQUIRE(writer->Write(MakePoint(409146138, -746188906)));
    REQUIRE(writer->Write(MakePoint(0, 0)));
    writer->WritesDone();
    REQUIRE(writer->Finish().ok());
    CHECK(summary.point_count() == 3);
    CHECK(summary.feature_count() == 1);
    const double leg = HaversineMeters({0, 0}, {409146138, -746188906});
    CHECK(summary.distance() == static_cast<int32_t>(leg + leg));
  }
  SECTION("an empty route") {
    writer->WritesDone();
    REQUIRE(writer->Finish().ok());
    CHECK(summary.point_count() == 0);
    CHECK(summary.feature_count() == 0);
    CHECK(summary.distance() == 0);
  }
  SECTION("a long route saturates the distance at the int32 maximum") {
    // Each leg between the poles is about 20,015 km: 110 legs pass 2^31 m.
    for (int i = 0; i < 120; ++i) {
      REQUIRE(writer->Write(MakePoint(i % 2 == 0 ? 900000000 : -900000000, 0)));
    }
    writer->WritesDone();
    REQUIRE(writer->Finish().ok());
    CHECK(summary.point_count() == 120);
    CHECK(summary.distance() == std::numeric_limits<int32_t>::max());
  }
}

// Reads every reply of a RouteChat that sent `notes` and half-closed.
std::vector<RouteNote> Chat(RouteGuide::Stub& stub,
                            const std::vector<RouteNote>& notes,
                            grpc::Status* status) {
  grpc::ClientContext context;
  SetDeadline(context);
  auto stream = stub.RouteChat(&context);
  for (const RouteNote& note : notes) stream->Write(note);
  stream->WritesDone();
  std::vector<RouteNote> replies;
  RouteNote reply;
  while (stream->Read(&reply)) replies.push_back(reply);
  *status = stream->Finish();
  return replies;
}

std::vector<std::string> Messages(const std::vector<RouteNote>& notes) {
  std::vector<std::string> messages;
  for (const RouteNote& note : notes) messages.push_back(note.message());
  return messages;
}

TEST_CASE("RouteChat sends back earlier notes at the same location",
          "[server][chat]") {
  TestServer test;
  grpc::Status status;

  SECTION("the tutorial's five notes") {
    auto replies = Chat(*test.stub,
                        {MakeNote("First message", 0, 0),
                         MakeNote("Second message", 0, 1),
                         MakeNote("Third message", 1, 0),
                         MakeNote("Fourth message", 0, 0),
                         MakeNote("Fifth message", 1, 0)},
                        &status);
    REQUIRE(status.ok());
    CHECK(Messages(replies) ==
          std::vector<std::string>{"First message", "Third message"});
    CHECK(replies[0].location().latitude() == 0);
    CHECK(replies[1].location().latitude() == 1);
  }
  SECTION("notes are shared between clients on other connections") {
    REQUIRE(Chat(*test.stub, {MakeNote("a1", 7, 7), MakeNote("a2", 7, 7)},
                 &status)
                .size() == 1);
    auto other = RouteGuide::NewStub(test.NewChannel());
    auto replies = Chat(*other, {MakeNote("b1", 7, 7), MakeNote("b2", 8, 8)},
                        &status);
    REQUIRE(status.ok());
    CHECK(Messages(replies) == std::vector<std::string>{"a1", "a2"});
  }
  SECTION("replies flow before the client half-closes") {
    REQUIRE(Chat(*test.stub, {MakeNote("earlier", 3, 3)}, &status).empty());
    grpc::ClientContext context;
    SetDeadline(context);
    auto stream = test.stub->RouteChat(&context);
    REQUIRE(stream->Write(MakeNote("now", 3, 3)));
    RouteNote reply;
    REQUIRE(stream->Read(&reply));  // Still writable: no WritesDone yet.
    CHECK(reply.message() == "earlier");
    REQUIRE(stream->Write(MakeNote("again", 3, 3)));
    REQUIRE(stream->Read(&reply));
    CHECK(reply.message() == "earlier");
    REQUIRE(stream->Read(&reply));
    CHECK(reply.message() == "now");
    stream->WritesDone();
    CHECK(!stream->Read(&reply));
    CHECK(stream->Finish().ok());
  }
  SECTION("the per-location bound keeps the newest notes") {
    TestServer bounded(TestServer::DefaultOptions(),
                       FeatureStoreOptions{1000000, 2, 100});
    std::vector<RouteNote> notes;
    for (int i = 0; i < 4; ++i) notes.push_back(MakeNote(std::to_string(i), 9, 9));
    auto replies = Chat(*bounded.stub, notes, &status);
    REQUIRE(status.ok());
    // Note i sees the (at most two) notes kept before it.
    CHECK(Messages(replies) ==
          std::vector<std::string>{"0", "0", "1", "1", "2"});
  }
  CHECK(NoCallsInFlight(test));
}

TEST_CASE("Health Check answers for the server and RouteGuide",
          "[server][health]") {
  TestServer test;
  auto health = grpc::health::v1::Health::NewStub(test.channel);
  grpc::ClientContext context;
  SetDeadline(context);
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;

  SECTION("the whole server and routeguide.RouteGuide are SERVING") {
    request.set_service(GENERATE(std::string(), std::string("routeguide.RouteGuide")));
    REQUIRE(health->Check(&context, request, &response).ok());
    CHECK(response.status() ==
          grpc::health::v1::HealthCheckResponse::SERVING);
  }
  SECTION("an unknown service is NOT_FOUND") {
    request.set_service("no.such.Service");
    CHECK(health->Check(&context, request, &response).error_code() ==
          grpc::StatusCode::NOT_FOUND);
  }
}

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
    SetDeadline(context, absl::Milliseconds(200));
    auto stream = test.stub->RouteChat(&context);
    RouteNote reply;
    CHECK(!stream->Read(&reply));
    CHECK(stream->Finish().error_code() ==
          grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  SECTION("RecordRoute whose deadline passes mid-stream") {
    grpc::ClientContext context;
    SetDeadline(context, absl::Milliseconds(200));
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

// A stub on a connection of its own whose flow-control window stays small
// (no BDP probing grows it), so unread replies soon hold the server back.
std::unique_ptr<RouteGuide::Stub> SmallWindowStub(const TestServer& test) {
  return RouteGuide::NewStub(SmallWindowChannel(test.server->port()));
}

TEST_CASE("A RouteChat client that does not read its replies is not read "
          "either, until the queue drains",
          "[server][chat][backpressure]") {
  ServerOptions options = TestServer::DefaultOptions();
  options.max_queued_replies = 4;
  TestServer test(options);
  // Big notes, so the replies to one note fill the stream's HTTP/2 window
  // and the server's writes have to wait for the client to read.
  constexpr int kOldNotes = 50;
  for (int i = 0; i < kOldNotes; ++i) {
    test.store->AddNote({{8, 8}, std::string(4000, 'o')});
  }
  auto notes_read = [&] {
    return static_cast<int>(test.store->NotesAt({8, 8}).size()) - kOldNotes;
  };

  auto stub = SmallWindowStub(test);
  grpc::ClientContext context;
  SetDeadline(context);
  auto stream = stub->RouteChat(&context);
  constexpr int kNewNotes = 10;
  for (int i = 0; i < kNewNotes; ++i) REQUIRE(stream->Write(MakeNote("new", 8, 8)));
  // The server reads the first note, which queues 50 replies (200 KB): past
  // the bound of 4 and more than the window holds, so it reads no more
  // while nobody reads the replies.
  REQUIRE(WaitFor([&] { return notes_read() >= 1; }));
  CHECK_FALSE(WaitFor([&] { return notes_read() > 1; }, absl::Seconds(1)));
  CHECK(notes_read() == 1);

  // Reading the replies resumes it: the server reads note k+1 only once the
  // client has read all but what the window holds of the replies to notes
  // 1..k (note k sees the 50 old notes and k-1 new ones), less the half of
  // the bound it drains the queue to. Generously, 40 replies in flight.
  constexpr int kRepliesInFlight = 40;
  auto most_notes_read = [&](int replies_read) {
    int notes = 1;
    int replies_due = 0;  // To notes 1..notes.
    while (notes < kNewNotes) {
      replies_due += kOldNotes + notes - 1;
      const int queued = replies_due - replies_read - kRepliesInFlight;
      if (queued > static_cast<int>(options.max_queued_replies) / 2) break;
      ++notes;
    }
    return notes;
  };
  RouteNote reply;
  int replies = 0;
  for (; replies < kOldNotes; ++replies) {
    INFO("after " << replies << " replies read");
    REQUIRE(notes_read() <= most_notes_read(replies));
    REQUIRE(stream->Read(&reply));
  }
  // Every reply to the first note read: the queue is empty, reading resumes.
  CHECK(WaitFor([&] { return notes_read() >= 2; }));

  stream->WritesDone();
  while (stream->Read(&reply)) {
    ++replies;
    INFO("after " << replies << " replies read");
    REQUIRE(notes_read() <= most_notes_read(replies));
  }
  REQUIRE(stream->Finish().ok());
  // Note k (0-based) of the ten sees the 50 old notes and k new ones.
  CHECK(replies == kNewNotes * kOldNotes + 45);
  CHECK(notes_read() == kNewNotes);
  CHECK(NoCallsInFlight(test));
}

TEST_CASE("A RouteChat client that stops both reading and sending is ended "
          "by the idle timeout",
          "[server][chat][backpressure][idle]") {
  ServerOptions options = TestServer::DefaultOptions();
  options.max_queued_replies = 4;
  options.stream_idle_timeout = absl::Seconds(1);
  TestServer test(options);
  for (int i = 0; i < 50; ++i) test.store->AddNote({{9, 9}, std::string(4000, 'o')});
  auto stub = SmallWindowStub(test);
  grpc::ClientContext context;
  SetDeadline(context);
  auto stream = stub->RouteChat(&context);
  for (int i = 0; i < 3; ++i) REQUIRE(stream->Write(MakeNote("new", 9, 9)));
  // Reads nothing more and sends nothing more: the call ends.
  CHECK(WaitFor([&] { return test.server->calls().active() == 0; }));
  context.TryCancel();
  CHECK(!stream->Finish().ok());
}

TEST_CASE("Streams whose client sends nothing for the idle timeout are ended",
          "[server][idle]") {
  ServerOptions options = TestServer::DefaultOptions();
  options.stream_idle_timeout = absl::Seconds(1);
  TestServer test(options);

  SECTION("an idle RouteChat") {
    grpc::ClientContext context;
    SetDeadline(context);
    auto stream = test.stub->RouteChat(&context);
    REQUIRE(stream->Write(MakeNote("one", 3, 3)));
    RouteNote reply;
    CHECK(!stream->Read(&reply));  // Ends by itself.
    const grpc::Status status = stream->Finish();
    CHECK(status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
    CHECK_THAT(status.error_message(), Catch::Contains("no progress"));
  }
  SECTION("an idle RecordRoute") {
    grpc::ClientContext context;
    SetDeadline(context);
    RouteSummary summary;
    auto writer = test.stub->RecordRoute(&context, &summary);
    const grpc::Status status = writer->Finish();  // Without WritesDone.
    CHECK(status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
    CHECK_THAT(status.error_message(), Catch::Contains("no point received"));
  }
  SECTION("a RouteChat that keeps talking outlives the timeout") {
    grpc::ClientContext context;
    SetDeadline(context);
    auto stream = test.stub->RouteChat(&context);
    // 1.5 s of notes, each well inside the 1 s timeout.
    for (int i = 0; i < 15; ++i) {
      REQUIRE(stream->Write(MakeNote(std::to_string(i), 4, 4 + i)));
      absl::SleepFor(absl::Milliseconds(100));
    }
    stream->WritesDone();
    RouteNote reply;
    CHECK(!stream->Read(&reply));
    CHECK(stream->Finish().ok());
  }
  CHECK(NoCallsInFlight(test));
}

TEST_CASE("Health turns NOT_SERVING when shutdown starts, while calls are "
          "still served for the drain period",
          "[server][shutdown][health]") {
  ServerOptions options = TestServer::DefaultOptions();
  options.grace = absl::Seconds(30);
  options.health_drain = absl::Seconds(5);  // The test runs in it.
  TestServer test(options);
  auto health = grpc::health::v1::Health::NewStub(test.channel);
  auto check = [&] {
    grpc::ClientContext context;
    SetDeadline(context);
    grpc::health::v1::HealthCheckResponse response;
    REQUIRE(health->Check(&context, {}, &response).ok());
    return response.status();
  };
  CHECK(check() == grpc::health::v1::HealthCheckResponse::SERVING);

  std::thread stopper([&] { test.server->Shutdown(); });
  REQUIRE(WaitFor([&] { return test.server->shutdown_started(); }));
  CHECK(WaitFor([&] {
    return check() == grpc::health::v1::HealthCheckResponse::NOT_SERVING;
  }));
  // Still draining: other calls are served as before.
  grpc::ClientContext context;
  SetDeadline(context);
  Feature feature;
  CHECK(test.stub->GetFeature(&context, MakePoint(409146138, -746188906), &feature)
            .ok());
  CHECK(!feature.name().empty());
  // Closing the client's connection lets the shutdown end without waiting
  // for the client to notice the server's GOAWAY.
  test.stub.reset();
  health.reset();
  test.channel.reset();
  stopper.join();
  CHECK(test.server->calls().objects() == 0);
}

TEST_CASE("Server reflection lists the services when enabled, and only then; "
          "with a token set, only to clients that carry it",
          "[server][reflection]") {
  ServerOptions options = TestServer::DefaultOptions();
  options.reflection = GENERATE(true, false);
  // With a token: the client sends none, a wrong one, or the right one.
  const std::string sent_token = GENERATE(as<std::string>{}, "", "wrong", "s3cret");
  const bool token_required = GENERATE(false, true);
  if (token_required) options.auth_token = "s3cret";
  if (!token_required && !sent_token.empty()) return;  // Nothing new to see.
  CAPTURE(options.reflection, token_required, sent_token);
  TestServer test(options);
  // Raw bytes through the generic stub: linking a second copy of the
  // reflection messages would clash with gRPC's own.
  grpc::GenericStub generic(test.channel);
  grpc::CompletionQueue cq;
  auto await = [&cq](intptr_t expected) {
    void* tag = nullptr;
    bool ok = false;
    REQUIRE(cq.Next(&tag, &ok));
    REQUIRE(reinterpret_cast<intptr_t>(tag) == expected);
    return ok;
  };
  grpc::ClientContext context;
  SetDeadline(context);
  if (!sent_token.empty()) context.AddMetadata("authorization", "Bearer " + sent_token);
  auto call = generic.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  REQUIRE(await(1));
  const bool refused = token_required && sent_token != options.auth_token;
  if (!options.reflection || refused) {
    grpc::Status status;
    call->Finish(&status, reinterpret_cast<void*>(5));
    await(5);
    CHECK(status.error_code() == (options.reflection ? grpc::StatusCode::UNAUTHENTICATED
                                                     : grpc::StatusCode::UNIMPLEMENTED));
    cq.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq.Next(&tag, &ok)) {
    }
    return;
  }
  // ServerReflectionRequest { list_services = 7: "*" }
  grpc::Slice request_slice(std::string("\x3a\x01*", 3));
  call->Write(grpc::ByteBuffer(&request_slice, 1), reinterpret_cast<void*>(2));
  REQUIRE(await(2));
  call->WritesDone(reinterpret_cast<void*>(3));
  REQUIRE(await(3));
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(4));
  REQUIRE(await(4));
  std::vector<grpc::Slice> slices;
  REQUIRE(response.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  CHECK_THAT(bytes, Catch::Contains("routeguide.RouteGuide"));
  CHECK_THAT(bytes, Catch::Contains("grpc.health.v1.Health"));
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  await(5);
  CHECK(status.ok());
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
}

TEST_CASE("Start reports an address it cannot listen on", "[server]") {
  ServerOptions options = TestServer::DefaultOptions();
  // (A port in use would not do: gRPC sets SO_REUSEPORT, so a second server
  // shares it.)
  options.address = "unix:/nonexistent-directory/routeguide.sock";
  auto server = RouteGuideServer::Start(options, std::make_shared<FeatureStore>());
  REQUIRE(!server.ok());
  CHECK_THAT(std::string(server.status().message()),
             Catch::Contains("/nonexistent-directory/routeguide.sock"));
}

}  // namespace
}  // namespace routeguide
