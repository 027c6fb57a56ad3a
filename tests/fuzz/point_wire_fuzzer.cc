// libFuzzer target: DecodePlainPoint against protobuf's own parser. Any
// bytes the fast path answers for must parse, with protobuf, to the same
// point; and whatever protobuf parses, the plain encoding of its two fields
// must be answered, with the same point.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "point_wire.h"
#include "route_guide.pb.h"

namespace {

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const std::optional<routeguide::GeoPoint> fast =
      routeguide::DecodePlainPoint(bytes);
  routeguide::Point parsed;
  const bool protobuf_ok = parsed.ParseFromString(bytes);
  if (fast) {
    Check(protobuf_ok);
    Check(fast->latitude == parsed.latitude());
    Check(fast->longitude == parsed.longitude());
  }
  if (protobuf_ok) {
    routeguide::Point plain;  // Without the unknown fields `parsed` kept.
    plain.set_latitude(parsed.latitude());
    plain.set_longitude(parsed.longitude());
    const std::optional<routeguide::GeoPoint> again =
        routeguide::DecodePlainPoint(plain.SerializeAsString());
    Check(again.has_value());
    Check(again->latitude == parsed.latitude());
    Check(again->longitude == parsed.longitude());
  }
  return 0;
}
