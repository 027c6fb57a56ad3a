// EncodeRouteNote and AppendFeature (server/wire_messages.h) against
// protobuf: the bytes of each reply must be the ones protobuf's serializer
// gives for the RouteNote or Feature ToProto makes, and read back to the
// same note or feature.

#include <cstdint>
#include <random>
#include <string>

#include "catch2/catch.hpp"
#include "proto_convert.h"
#include "route_guide.pb.h"
#include "wire_messages.h"

namespace routeguide {
namespace {

// What protobuf's serializer makes of the `Message` ToProto builds.
template <typename Message, typename Record>
std::string ByProtobuf(const Record& record) {
  Message message;
  ToProto(record, &message);
  std::string bytes;
  REQUIRE(message.SerializeToString(&bytes));
  return bytes;
}

std::string Encoded(const Note& note) {
  const grpc::Slice slice = EncodeRouteNote(note);
  return std::string(reinterpret_cast<const char*>(slice.begin()), slice.size());
}

void CheckLikeProtobuf(const Note& note) {
  CAPTURE(note.location.latitude, note.location.longitude, note.message.size());
  const std::string encoded = Encoded(note);
  CHECK(encoded == ByProtobuf<RouteNote>(note));
  RouteNote parsed;
  REQUIRE(parsed.ParseFromString(encoded));
  CHECK(parsed.location().latitude() == note.location.latitude);
  CHECK(parsed.location().longitude() == note.location.longitude);
  CHECK(parsed.message() == note.message);
}

TEST_CASE("A note is encoded as protobuf encodes its RouteNote",
          "[wire_messages]") {
  SECTION("zero coordinates and no message: the location is still there") {
    const Note note{{0, 0}, ""};
    CheckLikeProtobuf(note);
    CHECK(Encoded(note) == std::string("\x0a\x00", 2));
  }
  SECTION("the extremes of both coordinates (negative ones take 10 bytes)") {
    for (const int32_t latitude : {-900000000, -1, 0, 1, 900000000}) {
      for (const int32_t longitude : {-1800000000, -1, 0, 127, 128, 1800000000}) {
        CheckLikeProtobuf(Note{{latitude, longitude}, "x"});
      }
    }
  }
  SECTION("message lengths across the varint's byte boundaries, UTF-8 too") {
    for (const size_t length : {1, 127, 128, 16383, 16384, 70000}) {
      CheckLikeProtobuf(Note{{409146138, -746188906}, std::string(length, 'n')});
    }
    CheckLikeProtobuf(Note{{1, 2}, "Заметка \xF0\x9F\x97\xBA"});
  }
  SECTION("random notes") {
    std::mt19937 random(7);
    std::uniform_int_distribution<int32_t> latitude(-900000000, 900000000);
    std::uniform_int_distribution<int32_t> longitude(-1800000000, 1800000000);
    std::uniform_int_distribution<size_t> length(0, 300);
    for (int i = 0; i < 2000; ++i) {
      CheckLikeProtobuf(Note{{latitude(random), longitude(random)},
                             std::string(length(random), 'a' + i % 26)});
    }
  }
}

void CheckLikeProtobuf(const FeatureRecord& feature) {
  CAPTURE(feature.location.latitude, feature.location.longitude, feature.name.size());
  std::string encoded = "before";
  AppendFeature(feature, &encoded);
  REQUIRE(encoded.substr(0, 6) == "before");  // Appended, not replaced.
  encoded.erase(0, 6);
  CHECK(encoded == ByProtobuf<Feature>(feature));
  Feature parsed;
  REQUIRE(parsed.ParseFromString(encoded));
  CHECK(parsed.name() == feature.name);
  CHECK(parsed.location().latitude() == feature.location.latitude);
  CHECK(parsed.location().longitude() == feature.location.longitude);
}

TEST_CASE("A feature is encoded as protobuf encodes its Feature",
          "[wire_messages]") {
  SECTION("no name and zero coordinates: only the location, empty") {
    const FeatureRecord feature{"", {0, 0}};
    CheckLikeProtobuf(feature);
    std::string encoded;
    AppendFeature(feature, &encoded);
    CHECK(encoded == std::string("\x12\x00", 2));
  }
  SECTION("the extremes of both coordinates (negative ones take 10 bytes)") {
    for (const int32_t latitude : {-900000000, -1, 0, 1, 900000000}) {
      for (const int32_t longitude : {-1800000000, -1, 0, 127, 128, 1800000000}) {
        CheckLikeProtobuf(FeatureRecord{"x", {latitude, longitude}});
      }
    }
  }
  SECTION("name lengths across the varint's byte boundaries, UTF-8 too") {
    for (const size_t length : {1, 127, 128, 16383, 16384, 70000}) {
      CheckLikeProtobuf(FeatureRecord{std::string(length, 'n'), {409146138, -746188906}});
    }
    CheckLikeProtobuf(FeatureRecord{"Тропа \xF0\x9F\x97\xBA", {1, 2}});
  }
  SECTION("random features") {
    std::mt19937 random(11);
    std::uniform_int_distribution<int32_t> latitude(-900000000, 900000000);
    std::uniform_int_distribution<int32_t> longitude(-1800000000, 1800000000);
    std::uniform_int_distribution<size_t> length(0, 300);
    for (int i = 0; i < 2000; ++i) {
      CheckLikeProtobuf(FeatureRecord{std::string(length(random), 'a' + i % 26),
                                      {latitude(random), longitude(random)}});
    }
  }
}

}  // namespace
}  // namespace routeguide
