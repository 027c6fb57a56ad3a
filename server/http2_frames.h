#ifndef ROUTEGUIDE_SERVER_HTTP2_FRAMES_H_
#define ROUTEGUIDE_SERVER_HTTP2_FRAMES_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/string_view.h"

// HTTP/2 and gRPC framing, as far as the HTTP/2 guard reads it: frame
// headers (payloads skipped by length, no HPACK) and the length prefix of
// each gRPC message.
namespace routeguide {

// What every HTTP/2 client sends first (RFC 9113, section 3.4); the
// acceptor checked it, the guard passes it on unread.
inline constexpr uint64_t kClientPrefaceSize = 24;
inline constexpr size_t kFrameHeaderSize = 9;

// Frame types, flags and error codes (RFC 9113, sections 6 and 7).
inline constexpr uint8_t kDataFrame = 0x0;
inline constexpr uint8_t kHeadersFrame = 0x1;
inline constexpr uint8_t kRstStreamFrame = 0x3;
inline constexpr uint8_t kSettingsFrame = 0x4;
inline constexpr uint8_t kGoawayFrame = 0x7;
inline constexpr uint8_t kEndStreamFlag = 0x1;  // On HEADERS and DATA.
inline constexpr uint8_t kPaddedFlag = 0x8;     // On DATA.
inline constexpr uint8_t kAckFlag = 0x1;        // On SETTINGS.
inline constexpr uint32_t kSettingsTimeout = 0x4;
inline constexpr uint32_t kEnhanceYourCalm = 0xb;

struct FrameHeader {
  uint32_t length = 0;
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t stream_id = 0;
};

// The 9 bytes at `bytes` as a frame header.
inline FrameHeader ParseFrameHeader(const unsigned char* bytes) {
  FrameHeader frame;
  frame.length = uint32_t{bytes[0]} << 16 | uint32_t{bytes[1]} << 8 | bytes[2];
  frame.type = bytes[3];
  frame.flags = bytes[4];
  frame.stream_id = (uint32_t{bytes[5]} << 24 | uint32_t{bytes[6]} << 16 |
                     uint32_t{bytes[7]} << 8 | bytes[8]) &
                    0x7fffffffu;
  return frame;
}

// Follows one direction of an HTTP/2 connection frame by frame: reads each
// 9-byte frame header and skips the payload by its length, wherever the
// reads happen to cut the stream.
class FrameCursor {
 public:
  // `skip`: bytes before the first frame (the client preface).
  explicit FrameCursor(uint64_t skip) : skip_(skip), frame_start_(skip) {}

  // Feeds the next bytes. `on_header(const FrameHeader&)` runs for each
  // frame header completed; when it returns false the rest of `data` is
  // not looked at, and the cursor must not be fed again.
  template <typename OnHeader>
  void Feed(const char* data, size_t size, OnHeader&& on_header) {
    Feed(data, size, on_header, [](const FrameHeader&, uint32_t, const char*, size_t) {
      return true;
    });
  }
  // The same, with `on_payload(frame, offset, bytes, n)` for each piece of
  // a frame's payload (`offset` into the payload); false stops as above.
  template <typename OnHeader, typename OnPayload>
  void Feed(const char* data, size_t size, OnHeader&& on_header, OnPayload&& on_payload) {
    size_t i = 0;
    while (i < size) {
      const size_t left = size - i;
      if (skip_ > 0 || payload_left_ > 0) {
        const bool payload = skip_ == 0;
        uint64_t& rest = skip_ > 0 ? skip_ : payload_left_;
        const size_t n = static_cast<size_t>(std::min<uint64_t>(rest, left));
        const auto offset = static_cast<uint32_t>(frame_.length - rest);
        rest -= n;
        i += n;
        if (rest == 0) frame_start_ = offset_ + i;
        if (payload && !on_payload(frame_, offset, data + i - n, n)) return;
        continue;
      }
      FrameHeader frame;
      if (have_ == 0 && left >= kFrameHeaderSize) {
        // The usual case: the whole header is here, read in place.
        frame = ParseFrameHeader(reinterpret_cast<const unsigned char*>(data + i));
        i += kFrameHeaderSize;
        if (frame.length > 0 && left - kFrameHeaderSize >= frame.length) {
          // ...and the whole payload too: one turn for the frame.
          frame_ = frame;
          if (!on_header(frame)) return;
          i += frame.length;
          frame_start_ = offset_ + i;
          if (!on_payload(frame, 0, data + i - frame.length, frame.length)) return;
          continue;
        }
      } else {
        const size_t n = std::min(kFrameHeaderSize - have_, left);
        std::memcpy(header_ + have_, data + i, n);
        have_ += n;
        i += n;
        if (have_ < kFrameHeaderSize) break;
        have_ = 0;
        frame = ParseFrameHeader(header_);
      }
      payload_left_ = frame.length;
      frame_ = frame;
      if (frame.length == 0) frame_start_ = offset_ + i;
      if (!on_header(frame)) return;
    }
    offset_ += size;
  }

  // The stream offset where the frame being read began: the end of the
  // last whole frame fed.
  uint64_t boundary() const { return frame_start_; }

 private:
  uint64_t skip_;
  uint64_t offset_ = 0;  // Bytes fed.
  uint64_t frame_start_;
  uint64_t payload_left_ = 0;
  FrameHeader frame_;  // The frame whose payload is being read.
  unsigned char header_[kFrameHeaderSize] = {};
  size_t have_ = 0;
};

// A GOAWAY frame for the connection: streams after `last_stream_id` were
// not processed; `debug` is the reason in words.
std::string GoawayFrame(uint32_t last_stream_id, uint32_t error_code,
                        absl::string_view debug);

// Where one client stream is in gRPC's message framing: a 5-byte prefix
// (flag, 32-bit length), then that many bytes; so each length a message
// declares is seen as it starts.
struct StreamMessages {
  uint64_t body_left = 0;
  unsigned char prefix[5] = {};
  size_t prefix_have = 0;
};

// The length a gRPC message prefix declares (flag byte, then 32 bits, big
// endian).
inline uint64_t DeclaredLength(const unsigned char* prefix) {
  return uint64_t{prefix[1]} << 24 | uint64_t{prefix[2]} << 16 |
         uint64_t{prefix[3]} << 8 | prefix[4];
}

// Follows `stream`'s messages through `n` bytes of its DATA; false, with
// the length in `oversized`, when one declares more than `max_bytes`.
bool CheckMessageLengths(StreamMessages& stream, const char* bytes, size_t n,
                         uint64_t max_bytes, uint64_t* oversized);

// The same, quick when `bytes` are one whole message from a message
// boundary, as most DATA frames are.
inline bool CheckMessages(StreamMessages& stream, const char* bytes, size_t n,
                          uint64_t max_bytes, uint64_t* oversized) {
  if (stream.body_left == 0 && stream.prefix_have == 0 && n >= sizeof(stream.prefix)) {
    const uint64_t declared = DeclaredLength(reinterpret_cast<const unsigned char*>(bytes));
    if (declared == n - sizeof(stream.prefix) && declared <= max_bytes) return true;
  }
  return CheckMessageLengths(stream, bytes, n, max_bytes, oversized);
}

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_HTTP2_FRAMES_H_
