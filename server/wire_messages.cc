#include "wire_messages.h"

#include "point_wire.h"
#include "proto_convert.h"
#include "route_guide.pb.h"

namespace routeguide {

std::optional<GeoPoint> ParsePointWire(grpc::ByteBuffer& bytes) {
  // A Point is at most 22 bytes: one slice, unless a client split it.
  grpc::Slice slice;
  if (bytes.TrySingleSlice(&slice).ok()) {
    const std::optional<GeoPoint> point = DecodePlainPoint(absl::string_view(
        reinterpret_cast<const char*>(slice.begin()), slice.size()));
    if (point) {
      bytes.Clear();
      return point;
    }
  }
  Point message;
  if (!ParseWire(bytes, &message)) return std::nullopt;
  return FromProto(message);
}

}  // namespace routeguide
