// DecodePlainPoint, the fast path the server takes for Points, checked
// against protobuf's parser: it must answer for what clients send, and
// whenever it answers, give protobuf's answer.
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "catch2/catch.hpp"
#include "geo_string_maker.h"
#include "point_wire.h"
#include "route_guide.pb.h"

namespace routeguide {
namespace {

std::string Encode(int32_t latitude, int32_t longitude) {
  Point point;
  point.set_latitude(latitude);
  point.set_longitude(longitude);
  return point.SerializeAsString();
}

std::string Bytes(std::initializer_list<uint8_t> bytes) {
  return std::string(bytes.begin(), bytes.end());
}

// Whether DecodePlainPoint and protobuf agree on `bytes`: when the fast
// path answers, protobuf parses the same point.
bool Agrees(const std::string& bytes) {
  const std::optional<GeoPoint> fast = DecodePlainPoint(bytes);
  if (!fast) return true;
  Point parsed;
  return parsed.ParseFromString(bytes) && fast->latitude == parsed.latitude() &&
         fast->longitude == parsed.longitude();
}

TEST_CASE("DecodePlainPoint reads what protobuf encodes", "[point_wire]") {
  SECTION("the corners of the valid range and zero") {
    for (int32_t latitude : {0, 1, -1, 900000000, -900000000}) {
      for (int32_t longitude : {0, 1, -1, 1800000000, -1800000000}) {
        const std::optional<GeoPoint> point =
            DecodePlainPoint(Encode(latitude, longitude));
        REQUIRE(point.has_value());
        CHECK(*point == GeoPoint{latitude, longitude});
      }
    }
  }
  SECTION("every int32, sampled") {
    std::mt19937 random(7);
    std::uniform_int_distribution<int32_t> any;
    for (int i = 0; i < 20000; ++i) {
      const GeoPoint expected{any(random), any(random)};
      const std::optional<GeoPoint> point =
          DecodePlainPoint(Encode(expected.latitude, expected.longitude));
      REQUIRE(point.has_value());
      CHECK(*point == expected);
    }
  }
}

TEST_CASE("Each varint length reads alike, whatever bytes follow it", "[point_wire]") {
  // The decoder reads 8 bytes at once when 10 are left; the bytes past a
  // short varint (the next field, here with every low nibble) must not
  // leak into it, nor must the end of the input cut a long one short.
  for (int length = 1; length <= 10; ++length) {
    for (bool longitude_first : {false, true}) {
      for (int tail = 0; tail <= 12; ++tail) {
        // A varint of `length` bytes: high bit set on all but the last.
        std::string varint;
        for (int i = 0; i < length; ++i) {
          const auto low = static_cast<uint8_t>((0x35 + 11 * i) & 0x7f);
          varint.push_back(static_cast<char>(i + 1 < length ? low | 0x80 : low));
        }
        std::string bytes = Bytes({longitude_first ? uint8_t{0x10} : uint8_t{0x08}}) + varint;
        // Then the other field, with a varint `tail` - 1 bytes long (none
        // for 0: the input ends there).
        if (tail > 0) {
          bytes += Bytes({longitude_first ? uint8_t{0x08} : uint8_t{0x10}});
          for (int i = 0; i + 1 < tail; ++i) {
            bytes.push_back(static_cast<char>(i + 2 < tail ? 0xff : 0x0f));
          }
        }
        INFO("length " << length << ", tail " << tail << ", longitude first "
                       << longitude_first);
        const bool plain = tail != 1 && tail <= 11;  // Whole fields, varints of 1-10.
        CHECK(DecodePlainPoint(bytes).has_value() == plain);
        CHECK(Agrees(bytes));
      }
    }
  }
}

TEST_CASE("DecodePlainPoint gives protobuf's answer or none", "[point_wire]") {
  SECTION("a field given twice: the last counts") {
    const std::string bytes = Bytes({0x08, 0x01, 0x10, 0x02, 0x08, 0x03});
    REQUIRE(DecodePlainPoint(bytes).has_value());
    CHECK(*DecodePlainPoint(bytes) == GeoPoint{3, 2});
    CHECK(Agrees(bytes));
  }
  SECTION("a 10-byte varint keeps its low 32 bits, whatever the high ones") {
    const std::string bytes =
        Bytes({0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0x80, 0x80, 0x80, 0x80, 0x7f});
    REQUIRE(DecodePlainPoint(bytes).has_value());
    CHECK(DecodePlainPoint(bytes)->latitude == -1);
    CHECK(Agrees(bytes));
  }
  SECTION("a 5-byte varint with bits past 32") {
    const std::string bytes = Bytes({0x10, 0x81, 0x80, 0x80, 0x80, 0x7f});
    REQUIRE(DecodePlainPoint(bytes).has_value());
    CHECK(DecodePlainPoint(bytes)->longitude == static_cast<int32_t>(0xf0000001u));
    CHECK(Agrees(bytes));
  }
  SECTION("no answer: an 11-byte varint, a cut varint, a cut tag") {
    CHECK_FALSE(DecodePlainPoint(Bytes({0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                        0xff, 0xff, 0xff, 0xff, 0x01})));
    CHECK_FALSE(DecodePlainPoint(Bytes({0x08, 0x80})));
    CHECK_FALSE(DecodePlainPoint(Bytes({0x08})));
  }
  SECTION("no answer: unknown fields, other wire types, groups, long tags") {
    CHECK_FALSE(DecodePlainPoint(Bytes({0x08, 0x01, 0x18, 0x05})));
    CHECK_FALSE(DecodePlainPoint(Bytes({0x0a, 0x01, 0x00})));
    CHECK_FALSE(DecodePlainPoint(Bytes({0x1b, 0x1c})));
    CHECK_FALSE(DecodePlainPoint(Bytes({0x0c})));
    CHECK_FALSE(DecodePlainPoint(Bytes({0x88, 0x00, 0x05})));
  }
  SECTION("random bytes made mostly of tags and varint bytes") {
    std::mt19937 random(11);
    const std::vector<uint8_t> alphabet = {0x08, 0x10, 0x00, 0x01, 0x7f,
                                           0x80, 0xff, 0x18, 0x0a, 0x88};
    std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
    std::uniform_int_distribution<int> length(0, 24);
    int answered = 0;
    for (int i = 0; i < 50000; ++i) {
      std::string bytes;
      for (int n = length(random); n > 0; --n) bytes.push_back(alphabet[pick(random)]);
      if (DecodePlainPoint(bytes)) ++answered;
      REQUIRE(Agrees(bytes));
    }
    CHECK(answered > 1000);  // The fast path was exercised, not just refused.
  }
}

}  // namespace
}  // namespace routeguide
