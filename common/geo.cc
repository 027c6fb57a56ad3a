#include "geo.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"

namespace routeguide {

GeoRect GeoRect::FromCorners(const GeoPoint& a, const GeoPoint& b) {
  GeoRect rect;
  rect.lo = {std::min(a.latitude, b.latitude),
             std::min(a.longitude, b.longitude)};
  rect.hi = {std::max(a.latitude, b.latitude),
             std::max(a.longitude, b.longitude)};
  return rect;
}

absl::Status ValidatePoint(const GeoPoint& p, absl::string_view what) {
  const absl::string_view space = what.empty() ? "" : " ";
  if (p.latitude < -kMaxLatitudeE7 || p.latitude > kMaxLatitudeE7) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s%slatitude %d is outside [-900000000, 900000000] (E7 degrees)",
        what, space, p.latitude));
  }
  if (p.longitude < -kMaxLongitudeE7 || p.longitude > kMaxLongitudeE7) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s%slongitude %d is outside [-1800000000, 1800000000] (E7 degrees)",
        what, space, p.longitude));
  }
  return absl::OkStatus();
}

double HaversineMeters(const GeoPoint& a, const GeoPoint& b) {
  constexpr double kRadiansPerDegree = M_PI / 180.0;
  // Degrees first, then differences, as the tutorial does; the E7 values are
  // never subtracted as integers, which could overflow int32.
  const double lat1_deg = a.latitude / kE7PerDegree;
  const double lat2_deg = b.latitude / kE7PerDegree;
  const double lat1 = lat1_deg * kRadiansPerDegree;
  const double lat2 = lat2_deg * kRadiansPerDegree;
  const double dlat = (lat2_deg - lat1_deg) * kRadiansPerDegree;
  const double dlon =
      (b.longitude / kE7PerDegree - a.longitude / kE7PerDegree) *
      kRadiansPerDegree;
  const double s = std::sin(dlat / 2) * std::sin(dlat / 2) +
                   std::cos(lat1) * std::cos(lat2) * std::sin(dlon / 2) *
                       std::sin(dlon / 2);
  // Rounding can push s a hair outside [0, 1] for antipodal points.
  const double clamped = std::min(1.0, std::max(0.0, s));
  return kEarthRadiusMeters * 2 *
         std::atan2(std::sqrt(clamped), std::sqrt(1 - clamped));
}

}  // namespace routeguide
