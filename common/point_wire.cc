#include "point_wire.h"

#include <cstdint>

namespace routeguide {
namespace {

constexpr uint8_t kLatitudeTag = (1 << 3) | 0;   // Field 1, varint.
constexpr uint8_t kLongitudeTag = (2 << 3) | 0;  // Field 2, varint.
constexpr int kMaxVarintBytes = 10;

// Reads the varint at `next` (advancing it) into `value`, keeping its low
// 32 bits as protobuf does for an int32 (negative values come
// sign-extended to 10 bytes). False when it is longer than 10 bytes or
// runs past `end`.
bool ReadVarint32(const uint8_t*& next, const uint8_t* end, uint32_t* value) {
  const bool room = end - next >= kMaxVarintBytes;  // No bound checks then.
  uint32_t result = 0;
  for (int i = 0; i < kMaxVarintBytes; ++i) {
    if (!room && next + i == end) return false;
    const uint8_t byte = next[i];
    // The 5th byte's upper bits and every later byte lie past bit 31.
    if (i < 5) result |= static_cast<uint32_t>(byte & 0x7f) << (7 * i);
    if (byte < 0x80) {
      next += i + 1;
      *value = result;
      return true;
    }
  }
  return false;
}

}  // namespace

std::optional<GeoPoint> DecodePlainPoint(absl::string_view bytes) {
  uint32_t latitude = 0;
  uint32_t longitude = 0;
  const auto* next = reinterpret_cast<const uint8_t*>(bytes.data());
  const uint8_t* const end = next + bytes.size();
  while (next != end) {
    uint32_t* field;
    switch (*next++) {
      case kLatitudeTag:
        field = &latitude;
        break;
      case kLongitudeTag:
        field = &longitude;
        break;
      default:
        return std::nullopt;
    }
    if (!ReadVarint32(next, end, field)) return std::nullopt;
  }
  return GeoPoint{static_cast<int32_t>(latitude),
                  static_cast<int32_t>(longitude)};
}

}  // namespace routeguide
