#ifndef ROUTEGUIDE_COMMON_POINT_WIRE_H_
#define ROUTEGUIDE_COMMON_POINT_WIRE_H_

// A routeguide.Point read straight from its bytes. Every RecordRoute point
// and GetFeature request is one, and protobuf's general parser (a
// zero-copy stream, a parse context, a slow varint path for negative
// values) spent about 640 instructions on 2 to 22 bytes, where this loop
// spends about 120.

#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"
#include "geo.h"

namespace routeguide {

// `bytes` as a Point, when they hold nothing but its fields as a client
// encodes them: tag 0x08 (latitude) or 0x10 (longitude), each followed by
// a varint of at most 10 bytes, in any order and number (the last one
// counts). Otherwise nullopt, which means "ask protobuf", not "invalid":
// unknown fields, other tag encodings and malformed bytes all get nullopt,
// so that the rules for them stay protobuf's. Whenever it answers, the
// answer is the one protobuf's parser gives.
std::optional<GeoPoint> DecodePlainPoint(absl::string_view bytes);

// The longest Point EncodePoint writes: two tags and two 10-byte varints
// (a negative int32 is sign-extended to 64 bits).
inline constexpr size_t kMaxPointBytes = 22;

// Writes `point` to `out` as protobuf encodes a routeguide.Point (proto3:
// a zero coordinate is left out) and returns the bytes written, at most
// kMaxPointBytes.
size_t EncodePoint(const GeoPoint& point, uint8_t* out);

}  // namespace routeguide

#endif  // ROUTEGUIDE_COMMON_POINT_WIRE_H_
