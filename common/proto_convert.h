#ifndef ROUTEGUIDE_COMMON_PROTO_CONVERT_H_
#define ROUTEGUIDE_COMMON_PROTO_CONVERT_H_

#include <algorithm>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "feature_store.h"
#include "geo.h"
#include "grpcpp/support/status.h"
#include "route_guide.pb.h"

namespace routeguide {

// Conversions between the wire messages and the plain structs of common/.

inline GeoPoint FromProto(const Point& point) {
  return {point.latitude(), point.longitude()};
}

inline void ToProto(const GeoPoint& point, Point* out) {
  out->set_latitude(point.latitude);
  out->set_longitude(point.longitude);
}

inline void ToProto(const FeatureRecord& feature, Feature* out) {
  out->set_name(feature.name);
  ToProto(feature.location, out->mutable_location());
}

inline void ToProto(const Note& note, RouteNote* out) {
  ToProto(note.location, out->mutable_location());
  out->set_message(note.message);
}

// RecordRoute's answer: the counts and the length in meters, each clamped
// to what an int32 field holds, and the whole seconds since `start`
// (clamped at zero: the wall clock can step back).
inline RouteSummary MakeRouteSummary(uint64_t points, uint64_t features,
                                     double meters, absl::Time start) {
  RouteSummary summary;
  summary.set_point_count(SaturateToInt32(points));
  summary.set_feature_count(SaturateToInt32(features));
  summary.set_distance(SaturateToInt32(meters));
  summary.set_elapsed_time(SaturateToInt32(static_cast<uint64_t>(
      std::max<int64_t>(0, absl::ToInt64Seconds(absl::Now() - start)))));
  return summary;
}

// absl and gRPC share the canonical status codes, value for value.
inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

}  // namespace routeguide

#endif  // ROUTEGUIDE_COMMON_PROTO_CONVERT_H_
