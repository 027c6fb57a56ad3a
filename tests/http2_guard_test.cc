// The HTTP/2 guard in front of the real server on loopback: every kind of
// call goes through it; a HEADERS+RST_STREAM flood (HTTP/2 rapid reset,
// CVE-2023-44487) and a client that never acknowledges SETTINGS are cut
// off, with a GOAWAY, while honest clients, cancelling calls or not, are
// served on.

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
#include "http2_guard.h"
#include "route_guide.grpc.pb.h"
#include "route_guide_server.h"
#include "test_server.h"
#include "test_util.h"

namespace routeguide {
namespace {

constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
// Frame types, flags and error codes (RFC 9113, sections 6 and 7).
constexpr uint8_t kData = 0x0;
constexpr uint8_t kHeaders = 0x1;
constexpr uint8_t kRstStream = 0x3;
constexpr uint8_t kSettings = 0x4;
constexpr uint8_t kGoaway = 0x7;
constexpr uint8_t kEndHeaders = 0x4;
constexpr uint8_t kAck = 0x1;
constexpr uint8_t kPadded = 0x8;
constexpr uint32_t kCancel = 0x8;
constexpr uint32_t kSettingsTimeout = 0x4;
constexpr uint32_t kEnhanceYourCalm = 0xb;
// A feature of the built-in database.
constexpr int32_t kKnownLatitude = 407838351;
constexpr int32_t kKnownLongitude = -746143763;

void Put32(std::string& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

std::string Frame(uint8_t type, uint8_t flags, uint32_t stream_id,
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

// An HPACK string literal, not Huffman-coded; every one here is shorter
// than 127 bytes, so its length fits the 7-bit prefix.
std::string HpackString(absl::string_view text) {
  REQUIRE(text.size() < 127);
  return absl::StrCat(std::string(1, static_cast<char>(text.size())), text);
}

// The request headers of a GetFeature call (RFC 7541): ":method: POST" and
// ":scheme: http" from the static table, the rest literal without
// indexing, so the block leaves the server's dynamic table alone and can
// be sent any number of times.
std::string GetFeatureHeaderBlock(int port) {
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
bool GetKnownFeature(RouteGuide::Stub& stub) {
  grpc::ClientContext context;
  SetDeadline(context, absl::Seconds(10));
  Feature feature;
  const grpc::Status status =
      stub.GetFeature(&context, MakePoint(kKnownLatitude, kKnownLongitude), &feature);
  return status.ok() && !feature.name().empty();
}

// A RecordRoute that sends nothing and never half-closes, so its deadline
// always passes first: the client cancels it with RST_STREAM.
grpc::StatusCode RecordRouteCancelledByDeadline(RouteGuide::Stub& stub,
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
grpc::StatusCode RecordRouteCancelledByClient(RouteGuide::Stub& stub) {
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
char Pattern(uint64_t offset) { return static_cast<char>('a' + offset % 23); }

uint64_t WriteUntilFull(int fd, uint64_t* offset, uint64_t limit,
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
bool ReadPattern(int fd, uint64_t* offset, uint64_t size, absl::Duration timeout) {
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

TEST_CASE("Each direction holds a bounded amount for a reader that does not "
          "read, then delivers every byte in order",
          "[guard]") {
  auto guard = Http2Guard::Start(Http2GuardOptions{});
  REQUIRE(guard.ok());
  // The "client" is a socket pair too: the guard relays any stream socket.
  int client[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, client) == 0);
  auto adopted = (*guard)->Adopt(client[1], "test");
  REQUIRE(adopted.ok());
  const int grpc_end = *adopted;
  constexpr uint64_t kTotal = 16 << 20;
  // Without backpressure the writer would get all 16 MiB in; with it, no
  // more than the three sockets' buffers and the guard's 64 KiB.
  constexpr uint64_t kBound = 8 << 20;

  SECTION("server to client") {
    uint64_t written = 0, read = 0;
    const uint64_t first = WriteUntilFull(grpc_end, &written, kTotal, absl::Milliseconds(300));
    INFO("written before the reader read: " << first);
    CHECK(first < kBound);
    while (read < kTotal) {
      WriteUntilFull(grpc_end, &written, kTotal - written, absl::Milliseconds(1));
      REQUIRE(ReadPattern(client[0], &read, std::min<uint64_t>(written - read, 1 << 20),
                          absl::Seconds(5)));
    }
    CHECK(read == kTotal);
  }
  SECTION("client to server, after the preface") {
    REQUIRE(send(client[0], kPreface, sizeof(kPreface) - 1, MSG_NOSIGNAL) == 24);
    std::string preface;
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (preface.size() < 24 && absl::Now() < deadline) {
      char bytes[24];
      const ssize_t got = recv(grpc_end, bytes, 24 - preface.size(), MSG_DONTWAIT);
      if (got > 0) {
        preface.append(bytes, static_cast<size_t>(got));
      } else {
        absl::SleepFor(absl::Milliseconds(1));
      }
    }
    REQUIRE(preface == absl::string_view(kPreface, 24));
    uint64_t written = 0, read = 0;
    const uint64_t first = WriteUntilFull(client[0], &written, kTotal, absl::Milliseconds(300));
    INFO("written before the reader read: " << first);
    CHECK(first < kBound);
    while (read < kTotal) {
      WriteUntilFull(client[0], &written, kTotal - written, absl::Milliseconds(1));
      REQUIRE(ReadPattern(grpc_end, &read, std::min<uint64_t>(written - read, 1 << 20),
                          absl::Seconds(5)));
    }
    CHECK(read == kTotal);
  }
  CHECK((*guard)->stats().active == 1);
  close(client[0]);
  close(grpc_end);
  (*guard)->Stop();
}

TEST_CASE("Every kind of call works through the guard", "[guard]") {
  auto server = StartTestServer();
  auto stub = RouteGuide::NewStub(OwnChannel(server->port()));

  CHECK(GetKnownFeature(*stub));

  SECTION("ListFeatures over the world") {
    grpc::ClientContext context;
    SetDeadline(context, absl::Seconds(10));
    Rectangle world;
    *world.mutable_lo() = MakePoint(-900000000, -1800000000);
    *world.mutable_hi() = MakePoint(900000000, 1800000000);
    auto reader = stub->ListFeatures(&context, world);
    Feature feature;
    int count = 0;
    while (reader->Read(&feature)) ++count;
    CHECK(reader->Finish().ok());
    CHECK(count >= 100);
  }
  SECTION("RecordRoute: a megabyte of points, more than the guard buffers") {
    grpc::ClientContext context;
    SetDeadline(context, absl::Seconds(30));
    RouteSummary summary;
    auto writer = stub->RecordRoute(&context, &summary);
    constexpr int kPoints = 80000;
    for (int i = 0; i < kPoints; ++i) {
      if (!writer->Write(MakePoint(400000000 + i, -740000000 - i))) break;
    }
    writer->WritesDone();
    const grpc::Status status = writer->Finish();
    INFO(status.error_message());
    CHECK(status.ok());
    CHECK(summary.point_count() == kPoints);
  }
  SECTION("RouteChat: notes both ways") {
    grpc::ClientContext context;
    SetDeadline(context, absl::Seconds(10));
    auto stream = stub->RouteChat(&context);
    RouteNote note;
    *note.mutable_location() = MakePoint(111111, 222222);
    int replies = 0;
    for (int i = 0; i < 20; ++i) {
      note.set_message(absl::StrCat("note ", i, std::string(2000, 'x')));
      REQUIRE(stream->Write(note));
    }
    stream->WritesDone();
    RouteNote reply;
    while (stream->Read(&reply)) ++replies;
    CHECK(stream->Finish().ok());
    CHECK(replies == 19 * 20 / 2);  // Each note gets the ones before it.
  }
  const Http2GuardStats stats = server->guard_stats();
  CHECK(stats.relayed == 1);
  CHECK(stats.active == 1);
  CHECK(stats.rapid_reset_closes == 0);
  CHECK(stats.settings_timeouts == 0);
}

TEST_CASE("A HEADERS+RST_STREAM flood is cut off with ENHANCE_YOUR_CALM while "
          "an honest connection goes on; a second flood gets far less through",
          "[guard]") {
  auto server = StartTestServer();
  auto stub = RouteGuide::NewStub(OwnChannel(server->port()));
  REQUIRE(GetKnownFeature(*stub));

  // Honest calls all along, on a connection of their own.
  std::atomic<bool> done{false};
  std::atomic<int> honest_ok{0}, honest_failed{0};
  std::thread honest([&] {
    while (!done.load()) {
      (GetKnownFeature(*stub) ? honest_ok : honest_failed).fetch_add(1);
      absl::SleepFor(absl::Milliseconds(2));
    }
  });

  {
    RawClient attacker(server->port());
    attacker.Handshake(/*ack=*/true);
    attacker.Flood(5000);
    const Ending ending = attacker.AwaitEnd(absl::Seconds(10));
    CHECK(ending.closed);
    REQUIRE(ending.goaway_error.has_value());
    CHECK(*ending.goaway_error == kEnhanceYourCalm);
    // The last stream the guard saw opened, no later one.
    CHECK(ending.goaway_last_stream > 2000);
    CHECK(ending.goaway_last_stream <= attacker.last_stream());
  }
  Http2GuardStats stats = server->guard_stats();
  CHECK(stats.rapid_reset_closes == 1);
  CHECK(stats.goaways_sent == 1);
  CHECK(stats.strict_periods == 1);
  // Closed at the 1001st reset: the rest never reached gRPC.
  CHECK(stats.client_resets == 1001);

  // Its comeback meets the stricter limit (a hundredth, for 10 s).
  const int64_t resets_before = stats.client_resets;
  {
    RawClient attacker(server->port());
    attacker.Handshake(/*ack=*/true);
    attacker.Flood(5000);
    const Ending ending = attacker.AwaitEnd(absl::Seconds(10));
    CHECK(ending.closed);
    CHECK(ending.goaway_error == kEnhanceYourCalm);
  }
  stats = server->guard_stats();
  CHECK(stats.rapid_reset_closes == 2);
  CHECK(stats.client_resets - resets_before == 11);

  absl::SleepFor(absl::Milliseconds(100));
  done.store(true);
  honest.join();
  CHECK(GetKnownFeature(*stub));
  CHECK(honest_failed.load() == 0);
  CHECK(honest_ok.load() > 0);
  // The honest channel kept its one connection: three were relayed in all.
  CHECK(server->guard_stats().relayed == 3);
}

TEST_CASE("A message that declares far more than the limit closes its "
          "connection; one a little over it is refused by gRPC as usual",
          "[guard]") {
  ServerOptions options;
  options.max_message_bytes = 1024 * 1024;  // The guard's bound: 4 MiB.
  auto server = StartTestServer(options);
  RawClient client(server->port());
  client.Handshake(/*ack=*/true);
  const uint32_t stream = client.OpenGetFeature();
  // gRPC's 5-byte prefix, split over two DATA frames, the second padded:
  // flag 0, then a length of 100 MiB.
  std::string declared;
  declared.push_back('\0');
  Put32(declared, 100u << 20);
  std::string padded;
  padded.push_back(static_cast<char>(3));  // Pad length.
  padded += declared.substr(2);
  padded += std::string(3, '\0');  // The padding, not message bytes.
  REQUIRE(client.Send(Frame(kData, 0, stream, declared.substr(0, 2)) +
                      Frame(kData, kPadded, stream, padded)));
  const Ending ending = client.AwaitEnd(absl::Seconds(5));
  CHECK(ending.closed);
  CHECK(ending.goaway_error == kEnhanceYourCalm);
  CHECK(server->guard_stats().oversized_message_closes == 1);
  CHECK(server->guard_stats().rapid_reset_closes == 0);

  // 2 MiB: over gRPC's limit, under the guard's.
  auto stub = RouteGuide::NewStub(OwnChannel(server->port()));
  grpc::ClientContext context;
  SetDeadline(context, absl::Seconds(10));
  RouteNote note;
  note.set_message(std::string(2 << 20, 'x'));
  auto chat = stub->RouteChat(&context);
  chat->Write(note);
  chat->WritesDone();
  RouteNote reply;
  while (chat->Read(&reply)) {
  }
  CHECK(chat->Finish().error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(server->guard_stats().oversized_message_closes == 1);
}

TEST_CASE("Before acknowledging SETTINGS, a client may open twice the "
          "stream limit and no more",
          "[guard]") {
  ServerOptions options;
  options.max_concurrent_streams = 10;
  auto server = StartTestServer(options);
  SECTION("never acknowledged: closed at stream 21") {
    RawClient client(server->port());
    client.Handshake(/*ack=*/false);
    for (int i = 0; i < 20; ++i) client.OpenGetFeature();
    bool timed_out = false;
    while (!timed_out) {  // 20 are allowed: still open.
      const auto frame = client.Read(absl::Milliseconds(300), &timed_out);
      if (!timed_out) REQUIRE(frame.has_value());
    }
    CHECK(server->guard_stats().early_stream_closes == 0);
    client.OpenGetFeature();
    const Ending ending = client.AwaitEnd(absl::Seconds(5));
    CHECK(ending.closed);
    CHECK(ending.goaway_error == kEnhanceYourCalm);
    CHECK(server->guard_stats().early_stream_closes == 1);
  }
  SECTION("acknowledged: gRPC's own limit applies, the guard counts nothing") {
    RawClient client(server->port());
    client.Handshake(/*ack=*/true);
    for (int i = 0; i < 30; ++i) client.OpenGetFeature();
    // Past 10, gRPC refuses the streams or the connection: its business.
    client.AwaitEnd(absl::Milliseconds(500));
    CHECK(server->guard_stats().early_stream_closes == 0);
  }
}

TEST_CASE("A client that does not acknowledge SETTINGS in time is closed",
          "[guard]") {
  ServerOptions options;
  options.handshake_timeout = absl::Milliseconds(500);
  auto server = StartTestServer(options);

  SECTION("no acknowledgement: GOAWAY SETTINGS_TIMEOUT after the timeout") {
    RawClient client(server->port());
    const absl::Time start = absl::Now();
    client.Handshake(/*ack=*/false);
    const Ending ending = client.AwaitEnd(absl::Seconds(5));
    const absl::Duration waited = absl::Now() - start;
    CHECK(ending.closed);
    CHECK(ending.goaway_error == kSettingsTimeout);
    CHECK(waited >= absl::Milliseconds(400));
    CHECK(waited < absl::Seconds(3));
    CHECK(server->guard_stats().settings_timeouts == 1);
  }
  SECTION("acknowledged: the connection stays") {
    RawClient client(server->port());
    client.Handshake(/*ack=*/true);
    bool timed_out = false;
    while (!timed_out) {  // Whatever else the server sends, it does not close.
      const auto frame = client.Read(absl::Milliseconds(1500), &timed_out);
      if (!timed_out) REQUIRE(frame.has_value());
    }
    CHECK(server->guard_stats().settings_timeouts == 0);
  }
}

// How the cancelled calls of a load end.
enum class Cancelling { kDeadline, kClient };

// `cancelled` calls cancelled the `how` way, each after
// `normal_per_cancelled` GetFeature calls, from 8 threads; how many of
// either kind failed otherwise.
int CancellingLoad(RouteGuide::Stub& stub, Cancelling how, int cancelled,
                   int normal_per_cancelled) {
  constexpr int kThreads = 8;
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < cancelled / kThreads; ++i) {
        for (int n = 0; n < normal_per_cancelled; ++n) {
          if (!GetKnownFeature(stub)) failed.fetch_add(1);
        }
        const bool as_expected =
            how == Cancelling::kDeadline
                ? RecordRouteCancelledByDeadline(stub, absl::Milliseconds(1)) ==
                      grpc::StatusCode::DEADLINE_EXCEEDED
                : RecordRouteCancelledByClient(stub) == grpc::StatusCode::CANCELLED;
        if (!as_expected) failed.fetch_add(1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  return failed.load();
}

TEST_CASE("Honest clients that cancel calls are not taken for a rapid reset",
          "[guard]") {
  ServerOptions options;
  Cancelling how = Cancelling::kDeadline;
  SECTION("200 calls with a 1 ms deadline among 2000 completed, default limit") {}
  SECTION("200 calls with a 1 ms deadline among 2000 completed, limit 50") {
    options.max_client_resets = 50;
  }
  SECTION("200 calls cancelled by the client among 2000 completed, limit 50") {
    // Cancelled before the server answers, so only the calls completed
    // alongside keep this connection under the rule.
    options.max_client_resets = 50;
    how = Cancelling::kClient;
  }
  auto server = StartTestServer(options);
  auto stub = RouteGuide::NewStub(OwnChannel(server->port()));
  REQUIRE(GetKnownFeature(*stub));

  CHECK(CancellingLoad(*stub, how, 200, 10) == 0);
  CHECK(GetKnownFeature(*stub));
  const Http2GuardStats stats = server->guard_stats();
  INFO("opened " << stats.streams_opened << ", reset " << stats.client_resets);
  // Nearly every cancellation was a reset (a call whose trailers arrive
  // just before its deadline may need none): the limit was passed.
  CHECK(stats.client_resets >= 150);
  CHECK(stats.rapid_reset_closes == 0);
  CHECK(stats.strict_periods == 0);
  CHECK(stats.relayed == 1);  // Never reconnected.
  CHECK(stats.active == 1);
}

TEST_CASE("A client that resets more calls than it completes, past the "
          "limit, is closed even through a well-behaved HTTP/2 stack",
          "[guard]") {
  ServerOptions options;
  options.max_client_resets = 50;
  auto server = StartTestServer(options);
  auto stub = RouteGuide::NewStub(OwnChannel(server->port()));
  REQUIRE(GetKnownFeature(*stub));
  // Calls fail once the connection is closed under them; which ones is
  // up to timing. Enough of them that even a slow machine resets more
  // than 50 within some second.
  CancellingLoad(*stub, Cancelling::kClient, 1000, 0);
  const Http2GuardStats stats = server->guard_stats();
  INFO("opened " << stats.streams_opened << ", reset " << stats.client_resets);
  CHECK(stats.rapid_reset_closes >= 1);
  // gRPC reconnects, and calls that complete are served.
  CHECK(GetKnownFeature(*stub));
}

TEST_CASE("With the guard off, connections go to gRPC directly", "[guard]") {
  ServerOptions options;
  options.http2_guard = false;
  auto server = StartTestServer(options);
  auto stub = RouteGuide::NewStub(OwnChannel(server->port()));
  CHECK(GetKnownFeature(*stub));
  CHECK(server->guard_stats().relayed == 0);
  CHECK(server->acceptor_stats().handed_over == 1);
}

TEST_CASE("Shutdown lets a relayed call finish during the grace period",
          "[guard]") {
  ServerOptions options;
  options.grace = absl::Seconds(5);
  auto server = StartTestServer(options);
  auto stub = RouteGuide::NewStub(OwnChannel(server->port()));
  REQUIRE(GetKnownFeature(*stub));

  grpc::ClientContext context;
  SetDeadline(context, absl::Seconds(10));
  RouteSummary summary;
  auto writer = stub->RecordRoute(&context, &summary);
  REQUIRE(writer->Write(MakePoint(1, 1)));
  // A written message may still sit in the client's buffers: wait until the
  // server has taken the call, or Shutdown rightly sees nothing in flight.
  REQUIRE(WaitFor([&] { return server->calls().active() != 0; }, absl::Seconds(5)));
  REQUIRE(server->calls().active() == 1);
  std::thread stopper([&] { server->Shutdown(); });
  // Shutdown has begun: the call, already relayed, still goes on.
  WaitFor([&] { return server->shutdown_started(); }, absl::Seconds(5));
  absl::SleepFor(absl::Milliseconds(200));
  CHECK(writer->Write(MakePoint(2, 2)));
  writer->WritesDone();
  const grpc::Status status = writer->Finish();
  INFO(status.error_message());
  CHECK(status.ok());
  CHECK(summary.point_count() == 2);
  stopper.join();
  CHECK(server->guard_stats().active == 0);
}

}  // namespace
}  // namespace routeguide
