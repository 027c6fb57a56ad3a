// Unit tests of common/geo: distances, point validation, rectangles and the
// int32 clamps.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "catch2/catch.hpp"
#include "geo_string_maker.h"
#include "geo.h"


namespace routeguide {
namespace {

constexpr int32_t kInt32Min = std::numeric_limits<int32_t>::min();
constexpr int32_t kInt32Max = std::numeric_limits<int32_t>::max();
constexpr double kPi = 3.14159265358979323846;

bool RelativelyClose(double actual, double expected, double tolerance) {
  return std::fabs(actual - expected) <= tolerance * std::fabs(expected);
}

TEST_CASE("HaversineMeters is zero between a point and itself", "[geo]") {
  const GeoPoint p = GENERATE(GeoPoint{0, 0}, GeoPoint{407838351, -746143763},
                              GeoPoint{-900000000, 1800000000},
                              GeoPoint{900000000, -1800000000});
  CAPTURE(p.latitude, p.longitude);
  CHECK(HaversineMeters(p, p) == 0.0);
}

TEST_CASE("HaversineMeters measures a quarter meridian as pi/2 earth radii",
          "[geo]") {
  const double expected = kPi / 2 * 6371000.0;
  SECTION("north from the equator") {
    const double d = HaversineMeters({0, 0}, {900000000, 0});
    CAPTURE(d, expected);
    CHECK(RelativelyClose(d, expected, 1e-6));
  }
  SECTION("south to the equator, the same distance") {
    const double d = HaversineMeters({-900000000, 0}, {0, 0});
    CAPTURE(d, expected);
    CHECK(RelativelyClose(d, expected, 1e-6));
  }
  SECTION("along the equator, a quarter turn of longitude") {
    const double d = HaversineMeters({0, 300000000}, {0, 1200000000});
    CAPTURE(d, expected);
    CHECK(RelativelyClose(d, expected, 1e-6));
  }
}

TEST_CASE("HaversineMeters is symmetric", "[geo]") {
  const GeoPoint a{412856162, -745148837};
  const GeoPoint b = GENERATE(GeoPoint{418465462, -746859398},
                              GeoPoint{-337000000, 1512000000},
                              GeoPoint{0, 0});
  CAPTURE(b.latitude, b.longitude);
  CHECK(RelativelyClose(HaversineMeters(a, b), HaversineMeters(b, a), 1e-12));
}

TEST_CASE("HaversineMeters over the tutorial's route sums to 850915 meters",
          "[geo]") {
  const std::vector<GeoPoint> route = {
      {412856162, -745148837}, {418465462, -746859398},
      {406589790, -743560121}, {416851321, -742674555},
      {415301720, -748416257}, {407033786, -743977337},
      {401012643, -744035134}, {412144655, -743949739},
      {414638017, -745957854}, {400273442, -741220915},
  };
  double total = 0;
  for (size_t i = 1; i < route.size(); ++i) {
    total += HaversineMeters(route[i - 1], route[i]);
  }
  CAPTURE(total);
  CHECK(static_cast<int64_t>(total) == 850915);
}

TEST_CASE("RouteLength is the sum of HaversineMeters, to the bit", "[geo]") {
  std::mt19937 random(3);
  std::uniform_int_distribution<int32_t> latitude(-900000000, 900000000);
  std::uniform_int_distribution<int32_t> longitude(-1800000000, 1800000000);
  std::uniform_int_distribution<int32_t> step(-2000000, 2000000);
  for (int route = 0; route < 200; ++route) {
    RouteLength length;
    double sum = 0;
    GeoPoint previous{latitude(random), longitude(random)};
    length.Add(previous);
    CHECK(length.meters() == 0.0);
    for (int i = 0; i < 100; ++i) {
      // Short legs mostly (a route), now and then anywhere on earth.
      GeoPoint next = i % 10 == 0
          ? GeoPoint{latitude(random), longitude(random)}
          : GeoPoint{std::clamp(previous.latitude + step(random), -900000000, 900000000),
                     std::clamp(previous.longitude + step(random), -1800000000, 1800000000)};
      sum += HaversineMeters(previous, next);
      length.Add(next);
      previous = next;
    }
    REQUIRE(length.meters() == sum);
  }
}

TEST_CASE("HaversineMeters stays finite and non-negative at the extremes",
          "[geo]") {
  const double half_circumference = kPi * 6371000.0;

  SECTION("antipodal points are half a circumference apart") {
    const auto [a, b] = GENERATE(table<GeoPoint, GeoPoint>({
        {{0, 0}, {0, 1800000000}},
        {{0, -900000000}, {0, 900000000}},
        {{900000000, 0}, {-900000000, 0}},
        {{450000000, 450000000}, {-450000000, -1350000000}},
        // Pairs whose rounding pushes the haversine term just past 1.
        {{-366679664, 103401116}, {366679664, -1696598884}},
        {{2690509, -490177466}, {-2690509, 1309822534}},
        {{-820000000, 96541533}, {820000000, -1703458467}},
    }));
    CAPTURE(a.latitude, a.longitude, b.latitude, b.longitude);
    const double d = HaversineMeters(a, b);
    CAPTURE(d);
    CHECK(std::isfinite(d));
    CHECK(RelativelyClose(d, half_circumference, 1e-9));
  }

  SECTION("longitudes -180 and +180 degrees are one meridian") {
    const int32_t latitude = GENERATE(0, 407838351, -899999999);
    CAPTURE(latitude);
    const double d =
        HaversineMeters({latitude, -1800000000}, {latitude, 1800000000});
    CAPTURE(d);
    CHECK(std::isfinite(d));
    CHECK(d >= 0.0);
    CHECK(d < 1e-3);
  }

  SECTION("int32 extremes, far outside the valid range, cause no trouble") {
    const auto [a, b] = GENERATE(table<GeoPoint, GeoPoint>({
        {{kInt32Min, 0}, {kInt32Max, 0}},
        {{kInt32Max, kInt32Max}, {kInt32Min, kInt32Min}},
        {{kInt32Min, kInt32Max}, {kInt32Max, kInt32Min}},
        {{kInt32Min, kInt32Min}, {0, 0}},
        {{kInt32Max, -1800000000}, {-900000000, 1800000000}},
    }));
    CAPTURE(a.latitude, a.longitude, b.latitude, b.longitude);
    const double d = HaversineMeters(a, b);
    CAPTURE(d);
    CHECK(std::isfinite(d));
    CHECK(d >= 0.0);
    CHECK(d <= half_circumference * (1 + 1e-12));
  }
}

TEST_CASE("ValidatePoint accepts points on the inclusive bounds", "[geo]") {
  const auto [latitude, longitude] = GENERATE(table<int32_t, int32_t>({
      {900000000, 0},
      {-900000000, 0},
      {0, 1800000000},
      {0, -1800000000},
      {900000000, 1800000000},
      {-900000000, -1800000000},
      {0, 0},
  }));
  CAPTURE(latitude, longitude);
  const absl::Status status = ValidatePoint({latitude, longitude});
  CAPTURE(status.ToString());
  CHECK(status.ok());
}

TEST_CASE("ValidatePoint rejects a value past a bound and names it", "[geo]") {
  const auto [latitude, longitude, bad_value, axis] =
      GENERATE(table<int32_t, int32_t, std::string, std::string>({
          {900000001, 0, "900000001", "latitude"},
          {-900000001, 0, "-900000001", "latitude"},
          {0, 1800000001, "1800000001", "longitude"},
          {0, -1800000001, "-1800000001", "longitude"},
          {kInt32Max, 0, "2147483647", "latitude"},
          {kInt32Min, 0, "-2147483648", "latitude"},
          {0, kInt32Max, "2147483647", "longitude"},
          {0, kInt32Min, "-2147483648", "longitude"},
      }));
  CAPTURE(latitude, longitude);
  const absl::Status status = ValidatePoint({latitude, longitude});
  const std::string message(status.message());
  CAPTURE(message);
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(message, Catch::Matchers::Contains(axis + " " + bad_value + " "));
}

TEST_CASE("ValidatePoint starts its message with what the point is", "[geo]") {
  SECTION("the default says point") {
    const absl::Status status = ValidatePoint({900000001, 0});
    CHECK_THAT(std::string(status.message()),
               Catch::Matchers::StartsWith("point latitude 900000001"));
  }
  SECTION("a caller's description is used") {
    const absl::Status status = ValidatePoint({0, -1800000001}, "rectangle lo");
    CHECK_THAT(std::string(status.message()),
               Catch::Matchers::StartsWith("rectangle lo longitude -1800000001"));
  }
  SECTION("an empty description adds no leading space") {
    const absl::Status status = ValidatePoint({0, 1800000001}, "");
    CHECK_THAT(std::string(status.message()),
               Catch::Matchers::StartsWith("longitude 1800000001"));
  }
}

TEST_CASE("GeoRect::FromCorners orders the corners whatever their order",
          "[geo]") {
  // The box [-10, 20] x [-30, 40], given by each diagonal in each direction.
  const auto [a, b] = GENERATE(table<GeoPoint, GeoPoint>({
      {{-10, -30}, {20, 40}},
      {{20, 40}, {-10, -30}},
      {{-10, 40}, {20, -30}},
      {{20, -30}, {-10, 40}},
  }));
  CAPTURE(a.latitude, a.longitude, b.latitude, b.longitude);
  const GeoRect rect = GeoRect::FromCorners(a, b);
  CHECK(rect.lo == GeoPoint{-10, -30});
  CHECK(rect.hi == GeoPoint{20, 40});
}

TEST_CASE("GeoRect::FromCorners handles degenerate and extreme corners",
          "[geo]") {
  SECTION("a single point") {
    const GeoRect rect = GeoRect::FromCorners({5, -7}, {5, -7});
    CHECK(rect.lo == GeoPoint{5, -7});
    CHECK(rect.hi == GeoPoint{5, -7});
    CHECK(rect.Contains({5, -7}));
    CHECK_FALSE(rect.Contains({5, -6}));
    CHECK_FALSE(rect.Contains({4, -7}));
  }
  SECTION("the int32 extremes") {
    const GeoRect rect = GeoRect::FromCorners({kInt32Max, kInt32Min},
                                              {kInt32Min, kInt32Max});
    CHECK(rect.lo == GeoPoint{kInt32Min, kInt32Min});
    CHECK(rect.hi == GeoPoint{kInt32Max, kInt32Max});
    CHECK(rect.Contains({kInt32Min, kInt32Max}));
    CHECK(rect.Contains({kInt32Max, kInt32Min}));
    CHECK(rect.Contains({0, 0}));
  }
}

TEST_CASE("GeoRect::Contains includes its edges and excludes what is past them",
          "[geo]") {
  const GeoRect rect = GeoRect::FromCorners({-10, -30}, {20, 40});

  SECTION("inside, on an edge, or on a corner") {
    const GeoPoint p = GENERATE(
        GeoPoint{0, 0}, GeoPoint{-10, 0}, GeoPoint{20, 0}, GeoPoint{0, -30},
        GeoPoint{0, 40}, GeoPoint{-10, -30}, GeoPoint{-10, 40},
        GeoPoint{20, -30}, GeoPoint{20, 40});
    CAPTURE(p.latitude, p.longitude);
    CHECK(rect.Contains(p));
  }
  SECTION("one unit outside any edge") {
    const GeoPoint p = GENERATE(
        GeoPoint{-11, 0}, GeoPoint{21, 0}, GeoPoint{0, -31}, GeoPoint{0, 41},
        GeoPoint{-11, -31}, GeoPoint{21, 41}, GeoPoint{kInt32Min, 0},
        GeoPoint{0, kInt32Max});
    CAPTURE(p.latitude, p.longitude);
    CHECK_FALSE(rect.Contains(p));
  }
}

TEST_CASE("SaturateToInt32 clamps doubles into [0, INT32_MAX]", "[geo]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const auto [value, expected] = GENERATE_COPY(table<double, int32_t>({
      {0.0, 0},
      {-0.0, 0},
      {-1.0, 0},
      {-1e300, 0},
      {-inf, 0},
      {nan, 0},
      {0.9, 0},
      {12.7, 12},
      {850915.04, 850915},
      {2147483646.0, 2147483646},
      {2147483646.5, 2147483646},
      {2147483647.0, kInt32Max},
      {2147483648.0, kInt32Max},
      {1e300, kInt32Max},
      {inf, kInt32Max},
  }));
  CAPTURE(value);
  CHECK(SaturateToInt32(value) == expected);
}

TEST_CASE("SaturateToInt32 clamps uint64 counts to INT32_MAX", "[geo]") {
  const auto [value, expected] = GENERATE(table<uint64_t, int32_t>({
      {0, 0},
      {1, 1},
      {100, 100},
      {2147483646, 2147483646},
      {2147483647, kInt32Max},
      {2147483648, kInt32Max},
      {4294967295, kInt32Max},
      {4294967296, kInt32Max},
      {std::numeric_limits<uint64_t>::max(), kInt32Max},
  }));
  CAPTURE(value);
  CHECK(SaturateToInt32(value) == expected);
}

}  // namespace
}  // namespace routeguide
