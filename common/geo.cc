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
  if (IsValidPoint(p)) return absl::OkStatus();
  const absl::string_view space = what.empty() ? "" : " ";
  if (p.latitude < -kMaxLatitudeE7 || p.latitude > kMaxLatitudeE7) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s%slatitude %d is outside [-900000000, 900000000] (E7 degrees)",
        what, space, p.latitude));
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "%s%slongitude %d is outside [-1800000000, 1800000000] (E7 degrees)", what,
      space, p.longitude));
}

namespace {

constexpr double kRadiansPerDegree = M_PI / 180.0;

double CosLatitude(const GeoPoint& p) {
  return std::cos(p.latitude / kE7PerDegree * kRadiansPerDegree);
}

// The haversine distance, given the cosines of both latitudes.
double Haversine(const GeoPoint& a, const GeoPoint& b, double cos_lat_a,
                 double cos_lat_b) {
  // Degrees first, then differences, as the tutorial does; the E7 values are
  // never subtracted as integers, which could overflow int32.
  const double dlat =
      (b.latitude / kE7PerDegree - a.latitude / kE7PerDegree) * kRadiansPerDegree;
  const double dlon =
      (b.longitude / kE7PerDegree - a.longitude / kE7PerDegree) *
      kRadiansPerDegree;
  const double sin_half_dlat = std::sin(dlat / 2);
  const double sin_half_dlon = std::sin(dlon / 2);
  const double s = sin_half_dlat * sin_half_dlat +
                   cos_lat_a * cos_lat_b * sin_half_dlon * sin_half_dlon;
  // Rounding can push s a hair outside [0, 1] for antipodal points.
  const double clamped = std::min(1.0, std::max(0.0, s));
  return kEarthRadiusMeters * 2 *
         std::atan2(std::sqrt(clamped), std::sqrt(1 - clamped));
}

}  // namespace

double HaversineMeters(const GeoPoint& a, const GeoPoint& b) {
  return Haversine(a, b, CosLatitude(a), CosLatitude(b));
}

void RouteLength::Add(const GeoPoint& point) {
  const double cos_lat = CosLatitude(point);
  if (has_previous_) {
    meters_ += Haversine(previous_, point, previous_cos_lat_, cos_lat);
  }
  has_previous_ = true;
  previous_ = point;
  previous_cos_lat_ = cos_lat;
}

}  // namespace routeguide
