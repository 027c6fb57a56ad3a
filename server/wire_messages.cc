#include "wire_messages.h"

#include <cstdint>
#include <cstring>

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

namespace {

// Wire tags: field number << 3 | wire type 2 (length-delimited).
// RouteNote's:
constexpr uint8_t kLocationTag = 1 << 3 | 2;
constexpr uint8_t kMessageTag = 2 << 3 | 2;
// Feature's:
constexpr uint8_t kFeatureNameTag = 1 << 3 | 2;
constexpr uint8_t kFeatureLocationTag = 2 << 3 | 2;

size_t VarintSize(uint64_t value) {
  size_t size = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++size;
  }
  return size;
}

uint8_t* PutVarint(uint64_t value, uint8_t* out) {
  while (value >= 0x80) {
    *out++ = static_cast<uint8_t>(value | 0x80);
    value >>= 7;
  }
  *out++ = static_cast<uint8_t>(value);
  return out;
}

}  // namespace

grpc::Slice EncodeRouteNote(const Note& note) {
  uint8_t point[kMaxPointBytes];
  const size_t point_size = EncodePoint(note.location, point);
  const size_t message_size = note.message.size();
  const size_t size =
      2 + point_size +
      (message_size == 0 ? 0 : 1 + VarintSize(message_size) + message_size);

  grpc_slice slice = grpc_slice_malloc(size);
  uint8_t* out = GRPC_SLICE_START_PTR(slice);
  *out++ = kLocationTag;
  *out++ = static_cast<uint8_t>(point_size);  // At most 22: one byte.
  std::memcpy(out, point, point_size);
  out += point_size;
  if (message_size != 0) {
    *out++ = kMessageTag;
    out = PutVarint(message_size, out);
    std::memcpy(out, note.message.data(), message_size);
  }
  return grpc::Slice(slice, grpc::Slice::STEAL_REF);
}

void AppendFeature(const FeatureRecord& feature, std::string* out) {
  uint8_t point[kMaxPointBytes];
  const size_t point_size = EncodePoint(feature.location, point);
  const size_t name_size = feature.name.size();
  uint8_t head[1 + 10];
  if (name_size != 0) {
    head[0] = kFeatureNameTag;
    const uint8_t* end = PutVarint(name_size, head + 1);
    out->append(reinterpret_cast<const char*>(head), end - head);
    out->append(feature.name);
  }
  head[0] = kFeatureLocationTag;
  head[1] = static_cast<uint8_t>(point_size);  // At most 22: one byte.
  out->append(reinterpret_cast<const char*>(head), 2);
  out->append(reinterpret_cast<const char*>(point), point_size);
}

}  // namespace routeguide
