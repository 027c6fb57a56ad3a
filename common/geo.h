#ifndef ROUTEGUIDE_COMMON_GEO_H_
#define ROUTEGUIDE_COMMON_GEO_H_

#include <cstdint>
#include <limits>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace routeguide {

// Coordinates travel as E7 integers: degrees times 10^7.
inline constexpr double kE7PerDegree = 1e7;
inline constexpr int32_t kMaxLatitudeE7 = 900000000;
inline constexpr int32_t kMaxLongitudeE7 = 1800000000;
inline constexpr double kEarthRadiusMeters = 6371000.0;

// A point in E7 coordinates. Plain data, so the store and the loader need no
// protobuf.
struct GeoPoint {
  int32_t latitude = 0;
  int32_t longitude = 0;

  friend bool operator==(const GeoPoint& a, const GeoPoint& b) {
    return a.latitude == b.latitude && a.longitude == b.longitude;
  }
  friend bool operator!=(const GeoPoint& a, const GeoPoint& b) {
    return !(a == b);
  }
};

// An axis-aligned box, bounds inclusive, with lo <= hi on both axes.
struct GeoRect {
  GeoPoint lo;
  GeoPoint hi;

  // The box spanned by two opposite corners given in any order.
  static GeoRect FromCorners(const GeoPoint& a, const GeoPoint& b);
  bool Contains(const GeoPoint& p) const {
    return p.latitude >= lo.latitude && p.latitude <= hi.latitude &&
           p.longitude >= lo.longitude && p.longitude <= hi.longitude;
  }
};

// Whether the point is within latitude +/-90 and longitude +/-180 degrees
// (inclusive). Inline: RecordRoute asks for every point.
inline bool IsValidPoint(const GeoPoint& p) {
  return p.latitude >= -kMaxLatitudeE7 && p.latitude <= kMaxLatitudeE7 &&
         p.longitude >= -kMaxLongitudeE7 && p.longitude <= kMaxLongitudeE7;
}

// OK when IsValidPoint; otherwise INVALID_ARGUMENT naming the bad value.
// `what` says which point it is ("point", "rectangle lo", ...), if anything.
absl::Status ValidatePoint(const GeoPoint& p, absl::string_view what = "point");

// Great-circle distance in meters by the haversine formula, as the tutorial
// computes it (earth radius 6371000 m).
double HaversineMeters(const GeoPoint& a, const GeoPoint& b);

// The length of a route given point by point: the sum of HaversineMeters
// over each pair of consecutive points, to the bit, with each point's
// latitude cosine computed once rather than twice (RecordRoute measures
// every point it is sent).
class RouteLength {
 public:
  void Add(const GeoPoint& point);
  double meters() const { return meters_; }

 private:
  bool has_previous_ = false;
  GeoPoint previous_;
  double previous_cos_lat_ = 0;
  double meters_ = 0;
};

// Clamps a non-negative count or measure to what an int32 proto field holds.
inline int32_t SaturateToInt32(double value) {
  constexpr double kMax = std::numeric_limits<int32_t>::max();
  if (!(value > 0)) return 0;  // Also catches NaN.
  return value >= kMax ? std::numeric_limits<int32_t>::max()
                       : static_cast<int32_t>(value);
}
inline int32_t SaturateToInt32(uint64_t value) {
  constexpr uint64_t kMax = std::numeric_limits<int32_t>::max();
  return static_cast<int32_t>(value > kMax ? kMax : value);
}

}  // namespace routeguide

#endif  // ROUTEGUIDE_COMMON_GEO_H_
