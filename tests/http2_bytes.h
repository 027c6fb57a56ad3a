// HTTP/2 frames as bytes, for tests that write them by hand: no sockets,
// no gRPC (raw_http2.h adds those).
#ifndef ROUTEGUIDE_TESTS_HTTP2_BYTES_H_
#define ROUTEGUIDE_TESTS_HTTP2_BYTES_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace routeguide {

// On HEADERS: the header block is whole (RFC 9113, 6.2).
inline constexpr uint8_t kEndHeaders = 0x4;

inline void Put32(std::string& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

inline std::string Frame(uint8_t type, uint8_t flags, uint32_t stream_id,
                         absl::string_view payload = {}) {
  std::string frame;
  const size_t length = payload.size();
  frame.push_back(static_cast<char>((length >> 16) & 0xff));
  frame.push_back(static_cast<char>((length >> 8) & 0xff));
  frame.push_back(static_cast<char>(length & 0xff));
  frame.push_back(static_cast<char>(type));
  frame.push_back(static_cast<char>(flags));
  Put32(frame, stream_id);
  frame.append(payload.data(), payload.size());
  return frame;
}

// One whole gRPC message as sent in DATA: not compressed, its 32-bit
// length, then `body`.
inline std::string GrpcMessage(absl::string_view body) {
  std::string message(1, '\0');
  Put32(message, static_cast<uint32_t>(body.size()));
  message.append(body.data(), body.size());
  return message;
}

}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_HTTP2_BYTES_H_
