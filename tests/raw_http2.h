// Raw HTTP/2 on loopback for the HTTP/2 guard tests: frames, a client that
// speaks them byte by byte (RawClient), and honest gRPC calls to run
// alongside.
#ifndef ROUTEGUIDE_TESTS_RAW_HTTP2_H_
#define ROUTEGUIDE_TESTS_RAW_HTTP2_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "http2_bytes.h"
#include "http2_guard.h"
#include "route_guide.grpc.pb.h"
#include "route_guide_server.h"
#include "test_server.h"
#include "test_util.h"

namespace routeguide {

inline constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
// Frame types, flags and error codes (RFC 9113, sections 6 and 7).
inline constexpr uint8_t kData = 0x0;
inline constexpr uint8_t kHeaders = 0x1;
inline constexpr uint8_t kRstStream = 0x3;
inline constexpr uint8_t kSettings = 0x4;
inline constexpr uint8_t kPing = 0x6;
inline constexpr uint8_t kGoaway = 0x7;
inline constexpr uint8_t kEndStream = 0x1;  // On HEADERS and DATA.
inline constexpr uint8_t kAck = 0x1;
inline constexpr uint8_t kPadded = 0x8;
inline constexpr uint32_t kCancel = 0x8;
inline constexpr uint32_t kSettingsTimeout = 0x4;
inline constexpr uint32_t kEnhanceYourCalm = 0xb;
// A feature of the built-in database.
inline constexpr int32_t kKnownLatitude = 407838351;
inline constexpr int32_t kKnownLongitude = -746143763;

// An HPACK string literal, not Huffman-coded; every one here is shorter
// than 127 bytes, so its length fits the 7-bit prefix.
inline std::string HpackString(absl::string_view text) {
  REQUIRE(text.size() < 127);
  return absl::StrCat(std::string(1, static_cast<char>(text.size())), text);
}

// The request headers of a GetFeature call (RFC 7541): ":method: POST" and
// ":scheme: http" from the static table, the rest literal without
// indexing, so the block leaves the server's dynamic table alone and can
// be sent any number of times.
inline std::string GetFeatureHeaderBlock(int port) {
  std::string block;
  block += '\x83';                     // :method: POST (index 3).
  block += '\x86';                     // :scheme: http (index 6).
  block += '\x04';                     // :path (name index 4).
  block += HpackString("/routeguide.RouteGuide/GetFeature");
  block += '\x01';                     // :authority (name index 1).
  block += HpackString(absl::StrCat("127.0.0.1:", port));
  block += "\x0f\x10";                 // content-type (name index 31).
  block += HpackString("application/grpc");
  block += '\x00';                     // A new name.
  block += HpackString("te");
  block += HpackString("trailers");
  return block;
}

struct RawFrame {
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t stream_id = 0;
  std::string payload;
};

// How the server ended a raw connection.
struct Ending {
  bool closed = false;  // End of file or a reset, within the deadline.
  std::optional<uint32_t> goaway_error;
  uint32_t goaway_last_stream = 0;
};

// A raw HTTP/2 client on a blocking loopback socket; frames written by
// hand, so it can misbehave as no HTTP/2 library would.
class RawClient {
 public:
  explicit RawClient(int port) : port_(port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    // Every send and receive is bounded.
    timeval wait = absl::ToTimeval(absl::Seconds(5));
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &wait, sizeof(wait));
  }
  ~RawClient() { close(fd_); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  // False once the server no longer takes bytes.
  bool Send(absl::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t sent = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (sent <= 0) {
        if (sent < 0 && errno == EINTR) continue;
        return false;
      }
      bytes.remove_prefix(static_cast<size_t>(sent));
    }
    return true;
  }

  // The next frame from the server; nothing at end of file, on an error or
  // when `timeout` passes first (then `*timed_out`).
  std::optional<RawFrame> Read(absl::Duration timeout, bool* timed_out = nullptr) {
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      if (buffer_.size() >= 9) {
        const auto byte = [&](size_t i) { return static_cast<uint8_t>(buffer_[i]); };
        const size_t length = size_t{byte(0)} << 16 | size_t{byte(1)} << 8 | byte(2);
        if (buffer_.size() >= 9 + length) {
          RawFrame frame;
          frame.type = byte(3);
          frame.flags = byte(4);
          frame.stream_id = (uint32_t{byte(5)} << 24 | uint32_t{byte(6)} << 16 |
                             uint32_t{byte(7)} << 8 | byte(8)) &
                            0x7fffffffu;
          frame.payload = buffer_.substr(9, length);
          buffer_.erase(0, 9 + length);
          return frame;
        }
      }
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        if (timed_out != nullptr) *timed_out = true;
        return std::nullopt;
      }
      timeval wait = absl::ToTimeval(std::max(left, absl::Milliseconds(1)));
      setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
      char chunk[16384];
      const ssize_t got = recv(fd_, chunk, sizeof(chunk), 0);
      if (got > 0) {
        buffer_.append(chunk, static_cast<size_t>(got));
        continue;
      }
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        continue;  // The deadline is checked above.
      }
      if (got < 0) error_ = errno;
      return std::nullopt;  // End of file or a reset.
    }
  }

  // The preface and an empty SETTINGS, then waits for the server's
  // SETTINGS and, when `ack`, acknowledges them.
  void Handshake(bool ack) {
    REQUIRE(Send(absl::StrCat(absl::string_view(kPreface, sizeof(kPreface) - 1),
                              Frame(kSettings, 0, 0))));
    while (true) {
      auto frame = Read(absl::Seconds(5));
      REQUIRE(frame.has_value());
      if (frame->type == kSettings && (frame->flags & kAck) == 0) break;
    }
    if (ack) REQUIRE(Send(Frame(kSettings, kAck, 0)));
  }

  // Sends `pairs` HEADERS+RST_STREAM(CANCEL) pairs on new streams, until
  // the server stops taking them; how many were sent.
  int Flood(int pairs) {
    const std::string block = GetFeatureHeaderBlock(port_);
    std::string cancel;
    Put32(cancel, kCancel);
    int sent = 0;
    while (sent < pairs) {
      std::string batch;
      for (int i = 0; i < 100 && sent + i < pairs; ++i) {
        next_stream_ += 2;
        batch += Frame(kHeaders, kEndHeaders, next_stream_, block);
        batch += Frame(kRstStream, 0, next_stream_, cancel);
      }
      if (!Send(batch)) break;
      sent += 100;
    }
    return std::min(sent, pairs);
  }

  // Reads until the server ends the connection, noting its GOAWAY.
  Ending AwaitEnd(absl::Duration timeout) {
    Ending ending;
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      bool timed_out = false;
      auto frame = Read(deadline - absl::Now(), &timed_out);
      if (timed_out) return ending;
      if (!frame.has_value()) {
        ending.closed = error_ == 0 || error_ == ECONNRESET;
        return ending;
      }
      if (frame->type == kGoaway && frame->payload.size() >= 8) {
        const auto byte = [&](size_t i) {
          return uint32_t{static_cast<uint8_t>(frame->payload[i])};
        };
        ending.goaway_last_stream =
            (byte(0) << 24 | byte(1) << 16 | byte(2) << 8 | byte(3)) & 0x7fffffffu;
        ending.goaway_error = byte(4) << 24 | byte(5) << 16 | byte(6) << 8 | byte(7);
      }
    }
  }

  // Opens a GetFeature stream and returns its id.
  uint32_t OpenGetFeature() {
    next_stream_ += 2;
    REQUIRE(Send(Frame(kHeaders, kEndHeaders, next_stream_, GetFeatureHeaderBlock(port_))));
    return next_stream_;
  }

  uint32_t last_stream() const { return next_stream_; }

 private:
  int port_;
  int fd_ = -1;
  int error_ = 0;
  uint32_t next_stream_ = static_cast<uint32_t>(-1);  // The first is 1.
  std::string buffer_;
};

// GetFeature for the known feature; whether it came back right. Called
// from several threads, so no Catch macro here (Catch is not thread-safe).
inline bool GetKnownFeature(RouteGuide::Stub& stub) {
  grpc::ClientContext context;
  SetDeadline(context, absl::Seconds(10));
  Feature feature;
  const grpc::Status status =
      stub.GetFeature(&context, MakePoint(kKnownLatitude, kKnownLongitude), &feature);
  return status.ok() && !feature.name().empty();
}

// A RecordRoute that sends nothing and never half-closes, so its deadline
// always passes first: the client cancels it with RST_STREAM.
inline grpc::StatusCode RecordRouteCancelledByDeadline(RouteGuide::Stub& stub,
                                                absl::Duration deadline) {
  grpc::ClientContext context;
  SetDeadline(context, deadline);
  RouteSummary summary;
  auto call = stub.RecordRoute(&context, &summary);
  return call->Finish().error_code();
}

// A RecordRoute the client cancels after its first point, while the
// server waits for more: the client resets a stream the server never
// completes.
inline grpc::StatusCode RecordRouteCancelledByClient(RouteGuide::Stub& stub) {
  grpc::ClientContext context;
  SetDeadline(context, absl::Seconds(10));
  RouteSummary summary;
  auto call = stub.RecordRoute(&context, &summary);
  call->Write(MakePoint(1, 1));
  context.TryCancel();
  return call->Finish().error_code();
}

// Writes frames of `pattern` bytes to non-blocking `fd` until it has
// written `limit` bytes or the socket stayed full for `patience`; how many
// bytes went. The byte at stream offset i is Pattern(i).
inline char Pattern(uint64_t offset) { return static_cast<char>('a' + offset % 23); }

inline uint64_t WriteUntilFull(int fd, uint64_t* offset, uint64_t limit,
                        absl::Duration patience) {
  uint64_t written = 0;
  absl::Time full_since = absl::InfiniteFuture();
  char chunk[16384];
  while (written < limit) {
    const size_t size = static_cast<size_t>(std::min<uint64_t>(sizeof(chunk), limit - written));
    for (size_t i = 0; i < size; ++i) chunk[i] = Pattern(*offset + i);
    const ssize_t sent = send(fd, chunk, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent > 0) {
      *offset += static_cast<uint64_t>(sent);
      written += static_cast<uint64_t>(sent);
      full_since = absl::InfiniteFuture();
      continue;
    }
    if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) break;
    const absl::Time now = absl::Now();
    if (full_since == absl::InfiniteFuture()) full_since = now;
    if (now - full_since >= patience) break;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return written;
}

// Reads `size` bytes from non-blocking `fd` within `timeout` and checks
// them against Pattern from `*offset` on; false on a wrong byte or short.
inline bool ReadPattern(int fd, uint64_t* offset, uint64_t size, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  char chunk[16384];
  while (size > 0 && absl::Now() < deadline) {
    const ssize_t got = recv(fd, chunk, std::min<uint64_t>(sizeof(chunk), size), MSG_DONTWAIT);
    if (got <= 0) {
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        absl::SleepFor(absl::Milliseconds(1));
        continue;
      }
      return false;
    }
    for (ssize_t i = 0; i < got; ++i) {
      if (chunk[i] != Pattern(*offset + static_cast<uint64_t>(i))) return false;
    }
    *offset += static_cast<uint64_t>(got);
    size -= static_cast<uint64_t>(got);
  }
  return size == 0;
}

}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_RAW_HTTP2_H_
