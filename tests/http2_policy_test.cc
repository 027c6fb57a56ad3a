// The HTTP/2 guard's reading of gRPC's message framing (Http2Policy and
// http2_frames.h), on bytes alone: the declared length of every message is
// seen however DATA frames and reads cut the stream, and a stream at a
// message boundary holds no state. No network; the guard over a real
// server is http2_guard_test.
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "catch2/catch.hpp"
#include "http2_bytes.h"
#include "http2_frames.h"
#include "http2_guard.h"
#include "http2_policy.h"

namespace routeguide {
namespace {

constexpr uint64_t kMaxDeclared = 1000;

std::string DataFrame(uint32_t stream, const std::string& payload,
                      bool end_stream = false, int padding = -1) {
  std::string body;
  if (padding >= 0) body.push_back(static_cast<char>(padding));
  body += payload;
  // Padding of 0xff: read as a message prefix, it would declare 4 GiB.
  if (padding > 0) body += std::string(static_cast<size_t>(padding), '\xff');
  uint8_t flags = end_stream ? kEndStreamFlag : 0;
  if (padding >= 0) flags |= kPaddedFlag;
  return Frame(kDataFrame, flags, stream, body);
}

// gRPC's framing of one message: flag, 32-bit length, then (some of) the
// body.
std::string Message(uint32_t declared, size_t body_bytes) {
  std::string out(1, '\0');
  Put32(out, declared);
  return out + std::string(body_bytes, 'm');
}

std::string RstStreamFrame(uint32_t stream) {
  std::string code;
  Put32(code, 0x8);  // CANCEL.
  return Frame(kRstStreamFrame, 0, stream, code);
}

struct Verdict {
  bool closed = false;
  uint64_t oversized = 0;
  bool too_many_unfinished = false;
  size_t streams_held = 0;  // Streams the policy keeps state for.
};

// Feeds the preface and `frames` to a fresh policy in reads of the given
// sizes (cycled; the rest in one read when empty).
Verdict Inspect(const std::string& frames, const std::vector<size_t>& reads = {},
                int64_t max_streams = 1000) {
  Http2GuardOptions options;
  options.max_declared_message_bytes = kMaxDeclared;
  options.max_streams_before_ack = max_streams;
  Http2Policy policy(options);
  Http2ConnectionState connection;
  const absl::Time now = absl::Now();
  connection.window_start = now;
  const std::string bytes = std::string(kClientPrefaceSize, 'P') + frames;
  Verdict verdict;
  size_t at = 0;
  for (size_t i = 0; at < bytes.size(); ++i) {
    const size_t size = reads.empty() ? bytes.size() - at
                                      : std::min(reads[i % reads.size()], bytes.size() - at);
    uint32_t error_code = 0;
    if (!policy.InspectClientBytes(connection, bytes.data() + at, size, now, &error_code)) {
      CHECK(error_code == kEnhanceYourCalm);
      verdict.closed = true;
      verdict.oversized = connection.oversized_length;
      verdict.too_many_unfinished = connection.too_many_unfinished_messages;
      break;
    }
    at += size;
  }
  verdict.streams_held = connection.messages.size();
  return verdict;
}

// What the policy must find, worked out another way: each stream's DATA
// bytes gathered, then read message by message; the first declaration
// over the limit, in the order the bytes arrive, and the streams left
// inside a message (a stream's end drops it).
struct Expected {
  std::optional<uint64_t> oversized;
  size_t streams_inside = 0;
};
struct Piece {
  uint32_t stream;
  std::string payload;
  bool end_stream;
};

Expected Model(const std::vector<Piece>& pieces) {
  std::map<uint32_t, std::string> pending;
  std::map<uint32_t, uint64_t> body_left;
  std::map<uint32_t, bool> ended;
  Expected expected;
  for (const Piece& piece : pieces) {
    std::string& bytes = pending[piece.stream];
    bytes += piece.payload;
    while (true) {
      uint64_t& left = body_left[piece.stream];
      if (left > 0) {
        const size_t skipped = static_cast<size_t>(std::min<uint64_t>(left, bytes.size()));
        left -= skipped;
        bytes.erase(0, skipped);
        if (left > 0) break;
      }
      if (bytes.size() < 5) break;
      left = uint64_t{static_cast<uint8_t>(bytes[1])} << 24 |
             uint64_t{static_cast<uint8_t>(bytes[2])} << 16 |
             uint64_t{static_cast<uint8_t>(bytes[3])} << 8 | static_cast<uint8_t>(bytes[4]);
      bytes.erase(0, 5);
      if (left > kMaxDeclared) {
        expected.oversized = left;
        return expected;
      }
    }
    ended[piece.stream] = ended[piece.stream] || piece.end_stream;
  }
  for (const auto& [stream, bytes] : pending) {
    if (!ended[stream] && (!bytes.empty() || body_left[stream] > 0)) ++expected.streams_inside;
  }
  return expected;
}

TEST_CASE("DATA frames of whole messages leave the guard holding nothing per stream",
          "[guard]") {
  std::string frames;
  for (uint32_t round = 0; round < 50; ++round) {
    for (uint32_t stream = 1; stream <= 15; stream += 2) {
      frames += DataFrame(stream, Message(12, 12) + Message(0, 0));
      frames += DataFrame(stream, Message(kMaxDeclared, kMaxDeclared));
    }
  }
  SECTION("read at once") {
    const Verdict verdict = Inspect(frames);
    CHECK(!verdict.closed);
    CHECK(verdict.streams_held == 0);
  }
  SECTION("read a byte at a time") {
    const Verdict verdict = Inspect(frames, {1});
    CHECK(!verdict.closed);
    CHECK(verdict.streams_held == 0);
  }
}

TEST_CASE("A message cut across DATA frames is followed to its end, between other "
          "streams' frames", "[guard]") {
  // Stream 1: a 600-byte message in three frames, its prefix cut too;
  // stream 3's whole messages in between.
  const std::string message = Message(600, 600);
  std::string frames = DataFrame(1, message.substr(0, 3)) +
                       DataFrame(3, Message(10, 10)) +
                       DataFrame(1, message.substr(3, 300)) +
                       DataFrame(3, Message(10, 10)) +
                       DataFrame(1, message.substr(303), false, /*padding=*/4);
  SECTION("the message ends where its length says: nothing held, nothing wrong") {
    const Verdict verdict = Inspect(frames);
    CHECK(!verdict.closed);
    CHECK(verdict.streams_held == 0);
  }
  SECTION("stopped inside it, the stream is held; its end of stream drops it") {
    const Verdict inside = Inspect(frames + DataFrame(1, Message(50, 20)));
    CHECK(!inside.closed);
    CHECK(inside.streams_held == 1);
    const Verdict ended =
        Inspect(frames + DataFrame(1, Message(50, 20)) + DataFrame(1, "", /*end_stream=*/true));
    CHECK(ended.streams_held == 0);
  }
  SECTION("the next message declares too much: closed, whatever the reads") {
    // Had the guard lost its place in stream 1, it would read this prefix
    // from the middle of the body before it.
    frames += DataFrame(1, Message(5000, 0));
    for (const std::vector<size_t>& reads :
         {std::vector<size_t>{}, {1}, {7}, {9, 2}, {13, 5, 1}}) {
      const Verdict verdict = Inspect(frames, reads);
      CHECK(verdict.closed);
      CHECK(verdict.oversized == 5000);
    }
  }
}

TEST_CASE("A whole message declared too large is caught in one frame too", "[guard]") {
  // Body and all: the quick path for frames of one whole message must
  // still compare the length with the limit.
  const std::string frames = DataFrame(1, Message(10, 10)) +
                             DataFrame(1, Message(kMaxDeclared + 1, kMaxDeclared + 1));
  for (const std::vector<size_t>& reads : {std::vector<size_t>{}, {3}, {9, 1000}}) {
    const Verdict verdict = Inspect(frames, reads);
    CHECK(verdict.closed);
    CHECK(verdict.oversized == kMaxDeclared + 1);
  }
}

TEST_CASE("A stream's end or reset drops what the guard held for it", "[guard]") {
  const std::string inside = DataFrame(1, Message(50, 20)) + DataFrame(3, Message(50, 20));
  REQUIRE(Inspect(inside).streams_held == 2);
  SECTION("END_STREAM on a frame with data") {
    CHECK(Inspect(inside + DataFrame(1, std::string(10, 'm'), /*end_stream=*/true))
              .streams_held == 1);
  }
  SECTION("RST_STREAM from the client") {
    CHECK(Inspect(inside + RstStreamFrame(3)).streams_held == 1);
  }
}

TEST_CASE("The policy counts the streams under way on all connections, each "
          "ended once, by either side",
          "[guard]") {
  Http2Policy policy{Http2GuardOptions()};
  const absl::Time now = absl::Now();
  Http2ConnectionState first, second;
  first.window_start = second.window_start = now;
  const auto from_client = [&](Http2ConnectionState& connection, const std::string& bytes) {
    uint32_t error_code = 0;
    REQUIRE(policy.InspectClientBytes(connection, bytes.data(), bytes.size(), now,
                                      &error_code));
  };
  const auto from_server = [&](Http2ConnectionState& connection, const std::string& bytes) {
    policy.InspectServerBytes(connection, bytes.data(), bytes.size(), now);
  };
  const auto headers = [](uint32_t stream, uint8_t flags = kEndHeaders) {
    return Frame(kHeadersFrame, flags, stream, "h");
  };
  const uint8_t kTrailers = kEndHeaders | kEndStreamFlag;
  from_client(first, std::string(kClientPrefaceSize, 'P') + headers(1) + headers(3) +
                         headers(5) + Frame(kSettingsFrame, kAckFlag, 0));
  from_client(second, std::string(kClientPrefaceSize, 'P') + headers(1));
  CHECK(policy.open_streams() == 4);
  Http2GuardStats stats;
  policy.AddStats(stats);
  CHECK(stats.open_streams == 4);

  // The client's own trailers end nothing; the server's do.
  from_client(first, headers(1, kTrailers));
  CHECK(policy.open_streams() == 4);
  from_server(first, headers(1) + Frame(kDataFrame, 0, 1, "d") + headers(1, kTrailers));
  CHECK(policy.open_streams() == 3);
  SECTION("a reset from the client, then the server's: one end") {
    from_client(first, RstStreamFrame(3));
    CHECK(policy.open_streams() == 2);
    from_server(first, RstStreamFrame(3));
    CHECK(policy.open_streams() == 2);
  }
  SECTION("a reset from the server (a stream refused)") {
    from_server(first, RstStreamFrame(5));
    CHECK(policy.open_streams() == 2);
  }
  SECTION("streams past the early bound, after the acknowledgement, are not "
          "kept (gRPC ignores new streams after its final GOAWAY)") {
    const int64_t bound = Http2GuardOptions().max_streams_before_ack;
    std::string many;
    for (int64_t i = 0; i < bound + 10; ++i) {
      many += headers(static_cast<uint32_t>(7 + 2 * i));
    }
    from_client(first, many);  // Not closed: acknowledged.
    CHECK(static_cast<int64_t>(first.open_streams.size()) == bound);
    CHECK(policy.open_streams() == bound + 1);  // With the other connection's.
    // A stream not kept ends without miscounting.
    from_server(first, RstStreamFrame(static_cast<uint32_t>(7 + 2 * (bound + 5))));
    CHECK(policy.open_streams() == bound + 1);
    from_server(first, RstStreamFrame(7));
    CHECK(policy.open_streams() == bound);
  }
  SECTION("a connection that closes takes its streams along") {
    policy.EndStreams(first);
    CHECK(policy.open_streams() == 1);
    policy.EndStreams(first);  // Once only.
    CHECK(policy.open_streams() == 1);
    from_server(second, headers(1, kTrailers));  // Trailers-only.
    CHECK(policy.open_streams() == 0);
  }
}

// A policy and one connection's state, fed bytes from either side.
struct OneConnection {
  explicit OneConnection(int64_t max_streams)
      : policy([max_streams] {
          Http2GuardOptions options;
          options.max_declared_message_bytes = kMaxDeclared;
          options.max_streams_before_ack = max_streams;
          return options;
        }()) {
    connection.window_start = now;
  }
  bool FromClient(const std::string& bytes) {
    uint32_t error_code = 0;
    return policy.InspectClientBytes(connection, bytes.data(), bytes.size(), now,
                                     &error_code);
  }
  void FromServer(const std::string& bytes) {
    policy.InspectServerBytes(connection, bytes.data(), bytes.size(), now);
  }

  Http2Policy policy;
  Http2ConnectionState connection;
  const absl::Time now = absl::Now();
};

TEST_CASE("A message the server ended inside (its reset or trailers) is not "
          "misread when the rest of it, already sent, comes after",
          "[guard]") {
  // Under --max_memory gRPC resets busy streams (ENHANCE_YOUR_CALM) while
  // a client's note is on its way: the note's remaining bytes still come.
  // Read as a new message, its body ('m's, 0x6d) would declare 1.8 GB.
  OneConnection one(/*max_streams=*/3);
  Http2ConnectionState& connection = one.connection;
  const auto from_client = [&](const std::string& bytes) { return one.FromClient(bytes); };
  const auto from_server = [&](const std::string& bytes) { one.FromServer(bytes); };
  const auto headers = [](uint32_t stream, uint8_t flags = kEndHeaders) {
    return Frame(kHeadersFrame, flags, stream, "h");
  };
  REQUIRE(from_client(std::string(kClientPrefaceSize, 'P') + headers(1) + headers(3) +
                      Frame(kSettingsFrame, kAckFlag, 0) +
                      DataFrame(1, Message(600, 100)) + DataFrame(3, Message(600, 100))));
  REQUIRE(connection.messages.size() == 2);
  SECTION("reset by the server") {
    from_server(RstStreamFrame(1));
  }
  SECTION("trailers from the server") {
    from_server(headers(1) + headers(1, kEndHeaders | kEndStreamFlag));
  }
  CHECK(connection.messages.size() == 1);
  // Padded (0xff: read as a prefix, 4 GiB), and cut across two reads.
  const std::string padded = DataFrame(1, std::string(300, 'm'), false, /*padding=*/9);
  CHECK(from_client(padded.substr(0, 20)));
  CHECK(from_client(padded.substr(20)));
  CHECK(from_client(DataFrame(1, std::string(200, 'm'), /*end_stream=*/true)));
  CHECK(!connection.oversized_length);
  // A stream still open is followed as before.
  CHECK(from_client(DataFrame(3, std::string(500, 'm'))));
  CHECK(connection.messages.empty());
  CHECK(!from_client(DataFrame(3, Message(kMaxDeclared + 1, 0))));
  CHECK(connection.oversized_length == kMaxDeclared + 1);
}

TEST_CASE("A stream the server ends between two reads of one of the client's DATA "
          "frames has the frame's rest let through unread",
          "[guard]") {
  OneConnection one(/*max_streams=*/3);
  REQUIRE(one.FromClient(std::string(kClientPrefaceSize, 'P') +
                         Frame(kHeadersFrame, kEndHeaders, 1, "h") +
                         Frame(kSettingsFrame, kAckFlag, 0)));
  const std::string frame = DataFrame(1, Message(600, 600));
  REQUIRE(one.FromClient(frame.substr(0, 100)));
  REQUIRE(one.connection.messages.size() == 1);
  one.FromServer(RstStreamFrame(1));
  CHECK(one.FromClient(frame.substr(100)));
  CHECK(!one.connection.oversized_length);
  // The next frame on it too.
  CHECK(one.FromClient(DataFrame(1, std::string(100, 'm'), /*end_stream=*/true)));
  CHECK(one.connection.ended_inside.empty());
}

TEST_CASE("The GOAWAY says what the connection was closed for", "[guard]") {
  Http2ConnectionState connection;
  CHECK(std::string(Http2Policy::CloseReason(connection, kSettingsTimeout)) ==
        "SETTINGS not acknowledged in time");
  CHECK(std::string(Http2Policy::CloseReason(connection, kEnhanceYourCalm)) ==
        "too many stream resets");
  SECTION("a message declared too large") {
    connection.oversized_length = kMaxDeclared + 1;
    CHECK(std::string(Http2Policy::CloseReason(connection, kEnhanceYourCalm)) ==
          "a message declared too large");
  }
  SECTION("too many streams before the acknowledgement") {
    connection.too_many_early_streams = true;
    CHECK(std::string(Http2Policy::CloseReason(connection, kEnhanceYourCalm)) ==
          "too many streams before the SETTINGS ack");
  }
  SECTION("too many streams stopped inside a message") {
    connection.too_many_unfinished_messages = true;
    CHECK(std::string(Http2Policy::CloseReason(connection, kEnhanceYourCalm)) ==
          "too many streams stopped inside a message");
  }
}

TEST_CASE("Streams the server ended inside a message are remembered up to a bound, "
          "and not counted as unfinished messages",
          "[guard]") {
  OneConnection one(/*max_streams=*/4);
  Http2ConnectionState& connection = one.connection;
  REQUIRE(one.FromClient(std::string(kClientPrefaceSize, 'P') +
                         Frame(kSettingsFrame, kAckFlag, 0)));
  // Many more streams than either bound, each reset by the server inside a
  // message whose rest never comes (the client saw the reset).
  for (uint32_t stream = 1; stream < 2 * 1000; stream += 2) {
    REQUIRE(one.FromClient(Frame(kHeadersFrame, kEndHeaders, stream, "h") +
                           DataFrame(stream, Message(600, 100))));
    one.FromServer(RstStreamFrame(stream));
  }
  CHECK(connection.messages.empty());
  CHECK(connection.ended_inside.size() == kMaxEndedInsideMessage);
  // The latest is still known: the rest of its message passes, and its end
  // of stream forgets it.
  CHECK(one.FromClient(DataFrame(1997, std::string(500, 'm'), /*end_stream=*/true)));
  CHECK(connection.ended_inside.size() == kMaxEndedInsideMessage - 1);
  CHECK(!connection.oversized_length);
  // A client's reset forgets one too.
  CHECK(one.FromClient(RstStreamFrame(1995)));
  CHECK(connection.ended_inside.size() == kMaxEndedInsideMessage - 2);
}

TEST_CASE("Streams stopped inside a message are bounded, like streams before the "
          "SETTINGS ack", "[guard]") {
  // DATA on streams that were never opened, or closed long ago, is dropped
  // by gRPC, but each would cost the guard an entry.
  std::string frames;
  for (uint32_t stream = 1; stream <= 2 * 10 - 1; stream += 2) {
    frames += DataFrame(stream, Message(50, 1));
  }
  const Verdict at_limit = Inspect(frames, {}, /*max_streams=*/10);
  CHECK(!at_limit.closed);
  CHECK(at_limit.streams_held == 10);
  const Verdict past = Inspect(frames + DataFrame(21, Message(50, 1)), {7}, /*max_streams=*/10);
  CHECK(past.closed);
  CHECK(past.too_many_unfinished);
  CHECK(past.oversized == 0);
}

TEST_CASE("The guard finds the first message declared too large however frames and "
          "reads cut the streams (random)", "[guard]") {
  std::mt19937 random(20261202);
  for (int trial = 0; trial < 2000; ++trial) {
    // A few streams' byte sequences of messages, mostly honest.
    std::map<uint32_t, std::string> streams;
    for (uint32_t stream = 1; stream <= 7; stream += 2) {
      std::string& bytes = streams[stream];
      const int messages = std::uniform_int_distribution<int>(0, 6)(random);
      for (int m = 0; m < messages; ++m) {
        const bool too_large = std::uniform_int_distribution<int>(0, 40)(random) == 0;
        const uint32_t declared =
            too_large ? std::uniform_int_distribution<uint32_t>(kMaxDeclared + 1, 1u << 31)(random)
                      : std::uniform_int_distribution<uint32_t>(0, 200)(random);
        bytes += Message(declared, too_large ? 0 : declared);
      }
      // Some streams stop inside a message: cut anywhere.
      if (!bytes.empty() && std::uniform_int_distribution<int>(0, 2)(random) == 0) {
        bytes.resize(std::uniform_int_distribution<size_t>(1, bytes.size())(random));
      }
    }
    // Cut into DATA frames of random sizes, streams interleaved at random.
    std::string frames;
    std::vector<Piece> pieces;
    std::map<uint32_t, size_t> sent;
    while (true) {
      std::vector<uint32_t> left;
      for (const auto& [stream, bytes] : streams) {
        if (sent[stream] < bytes.size()) left.push_back(stream);
      }
      if (left.empty()) break;
      const uint32_t stream =
          left[std::uniform_int_distribution<size_t>(0, left.size() - 1)(random)];
      const size_t size = std::min(streams[stream].size() - sent[stream],
                                   std::uniform_int_distribution<size_t>(1, 40)(random));
      const std::string payload = streams[stream].substr(sent[stream], size);
      sent[stream] += size;
      const bool padded = std::uniform_int_distribution<int>(0, 4)(random) == 0;
      // A stream's last frame ends it, half the time.
      const bool end_stream = sent[stream] == streams[stream].size() &&
                              std::uniform_int_distribution<int>(0, 1)(random) == 0;
      frames += DataFrame(stream, payload, end_stream, padded ? 2 : -1);
      pieces.push_back({stream, payload, end_stream});
    }
    const Expected expected = Model(pieces);
    std::vector<size_t> reads;
    for (int r = 0; r < 5; ++r) {
      reads.push_back(std::uniform_int_distribution<size_t>(1, 64)(random));
    }
    for (const Verdict& verdict : {Inspect(frames), Inspect(frames, reads)}) {
      INFO("trial " << trial);
      REQUIRE(verdict.closed == expected.oversized.has_value());
      if (expected.oversized) {
        REQUIRE(verdict.oversized == *expected.oversized);
      } else {
        REQUIRE(verdict.streams_held == expected.streams_inside);
      }
    }
  }
}

// One frame as the cursor should report it: its header and payload, and
// where it ends in the stream.
struct ExpectedFrame {
  FrameHeader header;
  std::string payload;
  uint64_t end = 0;
};

TEST_CASE("The frame cursor reports every header, every payload byte and the "
          "last whole frame's end, however reads cut the stream",
          "[guard]") {
  const uint64_t skip = GENERATE(uint64_t{0}, kClientPrefaceSize);
  std::mt19937 random(static_cast<unsigned>(7 + skip));
  for (int round = 0; round < 200; ++round) {
    // Frames of every kind of length: empty, shorter than a header, long.
    std::string stream(static_cast<size_t>(skip), 'P');
    std::vector<ExpectedFrame> frames;
    const int count = 1 + static_cast<int>(random() % 8);
    for (int f = 0; f < count; ++f) {
      const size_t length = std::vector<size_t>{0, 1, 5, 9, 40, 3000}[random() % 6];
      ExpectedFrame frame;
      frame.header.length = static_cast<uint32_t>(length);
      frame.header.type = static_cast<uint8_t>(random() % 10);
      frame.header.flags = static_cast<uint8_t>(random() % 256);
      frame.header.stream_id = static_cast<uint32_t>(random() % 1000);
      for (size_t b = 0; b < length; ++b) {
        frame.payload.push_back(static_cast<char>('a' + random() % 26));
      }
      stream += Frame(frame.header.type, frame.header.flags, frame.header.stream_id,
                      frame.payload);
      frame.end = stream.size();
      frames.push_back(frame);
    }

    FrameCursor cursor(skip);
    std::vector<FrameHeader> headers;
    std::map<size_t, std::string> payloads;  // By frame, as pieces arrived.
    size_t fed = 0;
    while (fed < stream.size()) {
      const size_t read = std::min<size_t>(stream.size() - fed, 1 + random() % 60);
      cursor.Feed(
          stream.data() + fed, read,
          [&](const FrameHeader& header) {
            headers.push_back(header);
            return true;
          },
          [&](const FrameHeader& header, uint32_t offset, const char* bytes, size_t n) {
            std::string& payload = payloads[headers.size() - 1];
            CHECK(header.stream_id == headers.back().stream_id);
            CHECK(offset == payload.size());  // In order, nothing skipped.
            payload.append(bytes, n);
            return true;
          });
      fed += read;
      // The end of the last frame wholly fed, or the skipped bytes.
      uint64_t boundary = skip;
      for (const ExpectedFrame& frame : frames) {
        if (frame.end <= fed) boundary = frame.end;
      }
      INFO("round " << round << ", " << fed << " of " << stream.size() << " bytes fed");
      REQUIRE(cursor.boundary() == boundary);
    }
    REQUIRE(headers.size() == frames.size());
    for (size_t f = 0; f < frames.size(); ++f) {
      INFO("round " << round << ", frame " << f);
      CHECK(headers[f].length == frames[f].header.length);
      CHECK(headers[f].type == frames[f].header.type);
      CHECK(headers[f].flags == frames[f].header.flags);
      CHECK(headers[f].stream_id == frames[f].header.stream_id);
      CHECK(payloads[f] == frames[f].payload);
    }
  }
}

TEST_CASE("The frame cursor stops where its caller says", "[guard]") {
  const std::string stream = Frame(kDataFrame, 0, 1, "abc") + Frame(kDataFrame, 0, 3, "de");
  FrameCursor cursor(0);
  int headers = 0;
  cursor.Feed(stream.data(), stream.size(), [&](const FrameHeader&) {
    ++headers;
    return false;
  });
  CHECK(headers == 1);
}

}  // namespace
}  // namespace routeguide
