// Each RPC on the server in-process on 127.0.0.1:0, over real channels.
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

// Sends each of `messages` (raw bytes) on one stream of client-streaming
// or bidi `method`, then half-closes, reads whatever comes back (the last
// reply into `last_reply`, if given) and returns the status. Blocking, on a
// queue of its own.
grpc::Status StreamRawMessages(grpc::Channel& channel, const std::string& method,
                               const std::vector<std::string>& messages,
                               std::string* last_reply = nullptr) {
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
  for (;;) {
    call->Read(&reply, reinterpret_cast<void*>(4));
    if (!await()) break;
    if (last_reply != nullptr) *last_reply = ByteBufferToString(reply);
  }
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  await();
  ShutdownAndDrain(cq);
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

// GetFeature with `request` as its raw bytes; the reply's bytes go to
// `reply`.
grpc::Status GetFeatureRaw(grpc::Channel& channel, const std::string& request,
                           std::string* reply) {
  grpc::GenericStub generic(channel.shared_from_this());
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  SetDeadline(context);
  grpc::Slice slice(request);
  auto call = generic.PrepareUnaryCall(&context, "/routeguide.RouteGuide/GetFeature",
                                       grpc::ByteBuffer(&slice, 1), &cq);
  call->StartCall();
  grpc::ByteBuffer bytes;
  grpc::Status status;
  call->Finish(&bytes, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  REQUIRE(cq.Next(&tag, &ok));
  *reply = status.ok() ? ByteBufferToString(bytes) : "";
  ShutdownAndDrain(cq);
  return status;
}

TEST_CASE("A Point reads the same however it is encoded (the server's fast "
          "path and protobuf's agree)",
          "[server][get][record]") {
  TestServer test;
  // A stored point; by hand, so that the encodings can vary.
  const std::string latitude = MakePoint(409146138, 0).SerializeAsString();
  const std::string longitude = MakePoint(0, -746188906).SerializeAsString();
  const std::string plain = latitude + longitude;
  const std::string reversed_twice = longitude + MakePoint(1, 0).SerializeAsString() +
                                     latitude;  // The last latitude counts.
  const std::string unknown_field = plain + std::string("\x18\x07", 2);
  const std::string non_minimal_tag = std::string("\x88\x00", 2) +
                                      latitude.substr(1) + longitude;

  SECTION("GetFeature finds the stored feature from each") {
    const std::string encoding =
        GENERATE_COPY(plain, reversed_twice, unknown_field, non_minimal_tag);
    std::string reply;
    REQUIRE(GetFeatureRaw(*test.channel, encoding, &reply).ok());
    Feature feature;
    REQUIRE(feature.ParseFromString(reply));
    CHECK(feature.name() ==
          "Berkshire Valley Management Area Trail, Jefferson, NJ, USA");
    CHECK(feature.location().latitude() == 409146138);
  }
  SECTION("GetFeature refuses bytes that are no Point") {
    const std::string bad = GENERATE(std::string("\xff\xff\xff\xff"),
                                     std::string("\x08", 1), std::string("\x0c", 1));
    std::string reply;
    const grpc::Status status = GetFeatureRaw(*test.channel, bad, &reply);
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(status.error_message(), Catch::Contains("routeguide.Point"));
  }
  SECTION("RecordRoute counts and measures them alike") {
    const std::string elsewhere = MakePoint(-337000000, 1512000000).SerializeAsString();
    std::string fast_reply;
    std::string mixed_reply;
    REQUIRE(StreamRawMessages(*test.channel, "/routeguide.RouteGuide/RecordRoute",
                              {plain, elsewhere, reversed_twice}, &fast_reply)
                .ok());
    REQUIRE(StreamRawMessages(*test.channel, "/routeguide.RouteGuide/RecordRoute",
                              {unknown_field, elsewhere, non_minimal_tag}, &mixed_reply)
                .ok());
    RouteSummary fast;
    RouteSummary mixed;
    REQUIRE(fast.ParseFromString(fast_reply));
    REQUIRE(mixed.ParseFromString(mixed_reply));
    CHECK(fast.point_count() == 3);
    CHECK(fast.feature_count() == 2);
    CHECK(fast.distance() > 30000000);  // To Sydney and back.
    CHECK(mixed.point_count() == fast.point_count());
    CHECK(mixed.feature_count() == fast.feature_count());
    CHECK(mixed.distance() == fast.distance());
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

}  // namespace
}  // namespace routeguide
