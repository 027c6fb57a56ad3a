#include "point_wire.h"

#include <cstdint>
#include <cstring>

namespace routeguide {
namespace {

constexpr uint8_t kLatitudeTag = (1 << 3) | 0;   // Field 1, varint.
constexpr uint8_t kLongitudeTag = (2 << 3) | 0;  // Field 2, varint.
constexpr int kMaxVarintBytes = 10;
constexpr bool kLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

// The low 32 bits of a varint from its first five bytes (little-endian in
// `word`, bytes past the varint's end already cleared): 7 bits a byte, the
// fifth byte's upper bits past bit 31.
inline uint32_t LowBits(uint64_t word) {
  return static_cast<uint32_t>(word & 0x7f) |
         static_cast<uint32_t>((word >> 8) & 0x7f) << 7 |
         static_cast<uint32_t>((word >> 16) & 0x7f) << 14 |
         static_cast<uint32_t>((word >> 24) & 0x7f) << 21 |
         static_cast<uint32_t>((word >> 32) & 0x7f) << 28;
}

// Reads the varint at `next` (advancing it) into `value`, keeping its low
// 32 bits as protobuf does for an int32 (negative values come
// sign-extended to 10 bytes). False when it is longer than 10 bytes or
// runs past `end`.
bool ReadVarint32(const uint8_t*& next, const uint8_t* end, uint32_t* value) {
  if constexpr (kLittleEndian) {
    if (end - next >= kMaxVarintBytes) {
      // With room for the longest varint, its end is found in one 8-byte
      // load rather than a test per byte, plus a byte test each for the
      // 9th and 10th (a negative coordinate has 10): a few percent of the
      // decoder, as the compiler unrolls the loop anyway.
      uint64_t word;
      std::memcpy(&word, next, sizeof(word));
      const uint64_t last_bytes = ~word & 0x8080808080808080u;
      if (last_bytes != 0) {
        const int length = (__builtin_ctzll(last_bytes) >> 3) + 1;  // 1 to 8.
        if (length < 8) word &= (uint64_t{1} << (8 * length)) - 1;
        next += length;
        *value = LowBits(word);
        return true;
      }
      for (int length = 9; length <= kMaxVarintBytes; ++length) {
        if (next[length - 1] < 0x80) {
          next += length;
          *value = LowBits(word);
          return true;
        }
      }
      return false;
    }
  }
  uint32_t result = 0;
  for (int i = 0; i < kMaxVarintBytes; ++i) {
    if (next + i == end) return false;
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

uint8_t* PutInt32Field(uint8_t tag, int32_t value, uint8_t* out) {
  if (value == 0) return out;  // proto3 leaves zero out.
  *out++ = tag;
  // Sign-extended, as protobuf writes an int32.
  auto bits = static_cast<uint64_t>(static_cast<int64_t>(value));
  while (bits >= 0x80) {
    *out++ = static_cast<uint8_t>(bits | 0x80);
    bits >>= 7;
  }
  *out++ = static_cast<uint8_t>(bits);
  return out;
}

static_assert(kMaxPointBytes == 2 * (1 + kMaxVarintBytes));

}  // namespace

size_t EncodePoint(const GeoPoint& point, uint8_t* out) {
  uint8_t* end = PutInt32Field(kLatitudeTag, point.latitude, out);
  end = PutInt32Field(kLongitudeTag, point.longitude, end);
  return static_cast<size_t>(end - out);
}

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
