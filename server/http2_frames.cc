#include "http2_frames.h"

namespace routeguide {

std::string GoawayFrame(uint32_t last_stream_id, uint32_t error_code,
                        absl::string_view debug) {
  const size_t length = 8 + debug.size();
  std::string frame;
  frame.reserve(kFrameHeaderSize + length);
  auto put32 = [&frame](uint32_t value) {
    for (int shift = 24; shift >= 0; shift -= 8) {
      frame.push_back(static_cast<char>((value >> shift) & 0xff));
    }
  };
  frame.push_back(static_cast<char>((length >> 16) & 0xff));
  frame.push_back(static_cast<char>((length >> 8) & 0xff));
  frame.push_back(static_cast<char>(length & 0xff));
  frame.push_back(static_cast<char>(kGoawayFrame));
  frame.push_back(0);  // No flags.
  put32(0);            // The connection.
  put32(last_stream_id & 0x7fffffffu);
  put32(error_code);
  frame.append(debug.data(), debug.size());
  return frame;
}

bool CheckMessageLengths(StreamMessages& stream, const char* bytes, size_t n,
                         uint64_t max_bytes, uint64_t* oversized) {
  while (n > 0) {
    if (stream.body_left > 0) {
      const size_t skipped = static_cast<size_t>(std::min<uint64_t>(stream.body_left, n));
      stream.body_left -= skipped;
      bytes += skipped;
      n -= skipped;
      continue;
    }
    if (stream.prefix_have == 0 && n >= sizeof(stream.prefix)) {
      // The usual case: a whole prefix, read in place.
      stream.body_left = DeclaredLength(reinterpret_cast<const unsigned char*>(bytes));
      bytes += sizeof(stream.prefix);
      n -= sizeof(stream.prefix);
    } else {
      const size_t taken = std::min(sizeof(stream.prefix) - stream.prefix_have, n);
      std::memcpy(stream.prefix + stream.prefix_have, bytes, taken);
      stream.prefix_have += taken;
      bytes += taken;
      n -= taken;
      if (stream.prefix_have < sizeof(stream.prefix)) break;
      stream.prefix_have = 0;
      stream.body_left = DeclaredLength(stream.prefix);
    }
    if (stream.body_left > max_bytes) {
      *oversized = stream.body_left;
      return false;
    }
  }
  return true;
}

}  // namespace routeguide
