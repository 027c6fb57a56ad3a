#include "http2_policy.h"

#include <algorithm>

#include "spdlog/spdlog.h"

namespace routeguide {
namespace {

constexpr absl::Duration kResetWindow = absl::Seconds(1);
// A client closed for rapid reset usually reconnects at once, and each
// connection gets max_client_resets resets through before it is closed: an
// attacker that reconnects hundreds of times a second still feeds gRPC far
// more than it can free (measured with that rule alone: 640 reconnects a
// second, RSS at 2.9 GiB 15 s after a 5 s attack, gRPC still working
// through it). So once a connection was closed for rapid reset, or all
// clients together reset more than kGlobalResetFactor times the limit
// within a second, the limit is divided by kStrictDivisor for every
// connection for kStrictPeriod. Clients that complete more calls than they
// reset are never closed, so this only costs clients that reset most of
// their calls.
constexpr absl::Duration kStrictPeriod = absl::Seconds(10);
constexpr int64_t kStrictDivisor = 100;
constexpr int64_t kGlobalResetFactor = 10;
constexpr int kMaxWarningsPerSecond = 10;

bool EndedInsideMessage(const Http2ConnectionState& connection, uint32_t stream_id) {
  return std::find(connection.ended_inside.begin(), connection.ended_inside.end(),
                   stream_id) != connection.ended_inside.end();
}

// The client ended its side of the stream too: nothing more can come.
void ForgetEndedInsideMessage(Http2ConnectionState& connection, uint32_t stream_id) {
  auto& ended = connection.ended_inside;
  ended.erase(std::remove(ended.begin(), ended.end(), stream_id), ended.end());
}

// The server ended a stream: where the client was inside a message, the
// rest of it may still be on its way.
void ServerEndedStream(Http2ConnectionState& connection, uint32_t stream_id) {
  const auto it = connection.messages.find(stream_id);
  if (it == connection.messages.end()) return;
  connection.messages.erase(it);
  auto& ended = connection.ended_inside;
  if (ended.size() >= kMaxEndedInsideMessage) ended.erase(ended.begin());
  ended.push_back(stream_id);
}

}  // namespace

void Http2ConnectionState::RollWindow(absl::Time now) {
  if (now - window_start < kResetWindow) return;
  window_start = now;
  window_opened = window_resets = window_completed = 0;
}

bool Http2Policy::InspectClientBytes(Http2ConnectionState& connection, const char* data,
                                     size_t size, absl::Time now, uint32_t* error_code) {
  connection.RollWindow(now);
  bool allowed = true;
  connection.from_client.Feed(data, size, [&](const FrameHeader& frame) {
    switch (frame.type) {
      case kHeadersFrame:
        // A client's streams have odd ids, each higher than the last (RFC
        // 9113, section 5.1.1); HEADERS on an older one carries trailers.
        if ((frame.stream_id & 1) != 0 && frame.stream_id > connection.last_stream_id) {
          connection.last_stream_id = frame.stream_id;
          ++connection.window_opened;
          streams_opened_.fetch_add(1, std::memory_order_relaxed);
          const int64_t open = static_cast<int64_t>(connection.open_streams.size());
          // After the acknowledgement gRPC bounds the streams it serves,
          // but not the ones it ignores (new streams after its final
          // GOAWAY get no reset), so the set stops growing at the same
          // bound. Past it the count is low, which the spin, the only
          // reader then, does not notice: its limit is far below.
          if (!connection.settings_acked || open < options_.max_streams_before_ack) {
            connection.open_streams.insert(frame.stream_id);
            AddOpenStreams(1);
          }
          if (!connection.settings_acked && open + 1 > options_.max_streams_before_ack) {
            connection.too_many_early_streams = true;
            *error_code = kEnhanceYourCalm;
            allowed = false;
          }
        }
        break;
      case kRstStreamFrame: {
        ++connection.window_resets;
        client_resets_.fetch_add(1, std::memory_order_relaxed);
        if (now - global_window_start_ >= kResetWindow) {
          global_window_start_ = now;
          global_resets_ = 0;
        }
        if (++global_resets_ / kGlobalResetFactor > options_.max_client_resets) {
          BeStrict(now);
        }
        const int64_t limit = now < strict_until_
                                  ? std::max<int64_t>(1, options_.max_client_resets /
                                                             kStrictDivisor)
                                  : options_.max_client_resets;
        if (connection.window_resets > limit &&
            connection.window_resets > connection.window_completed) {
          connection.limit = limit;
          *error_code = kEnhanceYourCalm;
          allowed = false;
        }
        break;
      }
      case kSettingsFrame:
        if ((frame.flags & kAckFlag) != 0) {
          connection.settings_acked = true;
        }
        break;
      case kDataFrame:
        connection.skipping_data = false;
        break;
      default:
        break;
    }
    if (frame.type == kRstStreamFrame) StreamEnded(connection, frame.stream_id);
    const bool client_ends_stream =
        frame.type == kRstStreamFrame ||
        (frame.type == kDataFrame && frame.length == 0 && (frame.flags & kEndStreamFlag) != 0);
    if (allowed && client_ends_stream) {
      connection.messages.erase(frame.stream_id);
      if (!connection.ended_inside.empty()) {
        ForgetEndedInsideMessage(connection, frame.stream_id);
      }
    }
    return allowed;
  }, [&](const FrameHeader& frame, uint32_t offset, const char* bytes, size_t n) {
    if (frame.type != kDataFrame || frame.stream_id == 0) return true;
    // Checked for every part of the frame, since gRPC may end the stream
    // between two reads of one frame; once skipped, the frame's rest is
    // too, even should the stream be forgotten meanwhile.
    if (!connection.skipping_data && !connection.ended_inside.empty() &&
        EndedInsideMessage(connection, frame.stream_id)) {
      connection.skipping_data = true;
    }
    if (connection.skipping_data) {
      if (offset + n == frame.length && (frame.flags & kEndStreamFlag) != 0) {
        ForgetEndedInsideMessage(connection, frame.stream_id);
      }
      return true;
    }
    // Padding (RFC 9113, 6.1): a length byte first, that many bytes last.
    uint32_t data_begin = 0;
    uint32_t data_end = frame.length;
    if ((frame.flags & kPaddedFlag) != 0) {
      if (offset == 0) connection.pad_length = static_cast<uint8_t>(bytes[0]);
      data_begin = 1;
      data_end = frame.length >= 1u + connection.pad_length ? frame.length - connection.pad_length : 1;
    }
    const uint32_t from = std::max(offset, data_begin);
    const uint32_t to = std::min<uint32_t>(offset + static_cast<uint32_t>(n), data_end);
    const bool stream_ends = offset + n == frame.length && (frame.flags & kEndStreamFlag) != 0;
    if (from >= to) {
      if (stream_ends) connection.messages.erase(frame.stream_id);
      return true;
    }
    // Only streams stopped inside a message have an entry: DATA frames
    // usually hold whole messages, and while no stream is inside one no
    // lookup is needed.
    auto it = connection.messages.empty() ? connection.messages.end()
                                          : connection.messages.find(frame.stream_id);
    const bool known = it != connection.messages.end();
    StreamMessages at_boundary;
    StreamMessages& stream = known ? it->second : at_boundary;
    if (!CheckMessages(stream, bytes + (from - offset), to - from,
                       options_.max_declared_message_bytes,
                       &connection.oversized_length)) {
      *error_code = kEnhanceYourCalm;
      allowed = false;
      return false;
    }
    const bool inside_message = stream.body_left > 0 || stream.prefix_have > 0;
    if (known && (stream_ends || !inside_message)) {
      connection.messages.erase(it);
    } else if (!known && inside_message && !stream_ends) {
      if (static_cast<int64_t>(connection.messages.size()) >=
          options_.max_streams_before_ack) {
        connection.too_many_unfinished_messages = true;
        *error_code = kEnhanceYourCalm;
        allowed = false;
        return false;
      }
      connection.messages.emplace(frame.stream_id, stream);
    }
    return true;
  });
  return allowed;
}

void Http2Policy::InspectServerBytes(Http2ConnectionState& connection, const char* data,
                                     size_t size, absl::Time now) {
  connection.RollWindow(now);
  connection.from_grpc.Feed(data, size, [&](const FrameHeader& frame) {
    // Trailers: the server finished the call.
    if (frame.type == kHeadersFrame && (frame.flags & kEndStreamFlag) != 0 &&
        frame.stream_id != 0) {
      ++connection.window_completed;
      ServerEndedStream(connection, frame.stream_id);
      StreamEnded(connection, frame.stream_id);
    }
    if (frame.type == kRstStreamFrame) {
      server_resets_.fetch_add(1, std::memory_order_relaxed);
      ServerEndedStream(connection, frame.stream_id);
      StreamEnded(connection, frame.stream_id);
    }
    return true;
  });
}

void Http2Policy::StreamEnded(Http2ConnectionState& connection, uint32_t stream_id) {
  // A stream both sides end (a client's reset, then the server's) counts
  // once.
  if (connection.open_streams.erase(stream_id) == 1) AddOpenStreams(-1);
}

void Http2Policy::EndStreams(Http2ConnectionState& connection) {
  AddOpenStreams(-static_cast<int64_t>(connection.open_streams.size()));
  connection.open_streams = {};
}

void Http2Policy::AddOpenStreams(int64_t delta) {
  // The loop thread is the only writer, so a plain load and store do;
  // a locked add would cost every call for nothing.
  open_streams_.store(open_streams_.load(std::memory_order_relaxed) + delta,
                      std::memory_order_relaxed);
}

Http2Policy::CloseCause Http2Policy::CauseOf(const Http2ConnectionState& connection,
                                              uint32_t error_code) {
  if (connection.too_many_early_streams) return CloseCause::kEarlyStreams;
  if (connection.too_many_unfinished_messages) return CloseCause::kUnfinishedMessages;
  if (connection.oversized_length > 0) return CloseCause::kOversizedMessage;
  if (error_code == kEnhanceYourCalm) return CloseCause::kRapidReset;
  return CloseCause::kSettingsTimeout;
}

const char* Http2Policy::CloseReason(const Http2ConnectionState& connection,
                                     uint32_t error_code) {
  // In CloseCause's order.
  static constexpr const char* kReasons[kCloseCauses] = {
      "too many streams before the SETTINGS ack",
      "too many streams stopped inside a message",
      "a message declared too large",
      "too many stream resets",
      "SETTINGS not acknowledged in time",
  };
  return kReasons[IndexOf(CauseOf(connection, error_code))];
}

void Http2Policy::CountClose(const Http2ConnectionState& connection, uint32_t error_code) {
  closes_[IndexOf(CauseOf(connection, error_code))].fetch_add(1, std::memory_order_relaxed);
}

void Http2Policy::ReportClose(const Http2ConnectionState& connection, uint32_t error_code,
                              bool goaway, const std::string& peer, int grpc_fd,
                              absl::Time now) {
  Warn(connection, error_code, goaway, peer, grpc_fd, now);
  if (IsRapidReset(connection, error_code)) BeStrict(now);
}

void Http2Policy::LogSuppressedWarnings() {
  if (warnings_suppressed_ > 0) {
    spdlog::warn("HTTP/2 guard: {} more connections were closed than logged",
                 warnings_suppressed_);
    warnings_suppressed_ = 0;
  }
}

void Http2Policy::AddStats(Http2GuardStats& stats) const {
  auto closes = [&](CloseCause cause) {
    return closes_[IndexOf(cause)].load(std::memory_order_relaxed);
  };
  stats.rapid_reset_closes = closes(CloseCause::kRapidReset);
  stats.settings_timeouts = closes(CloseCause::kSettingsTimeout);
  stats.oversized_message_closes = closes(CloseCause::kOversizedMessage);
  stats.early_stream_closes = closes(CloseCause::kEarlyStreams);
  stats.unfinished_message_closes = closes(CloseCause::kUnfinishedMessages);
  stats.strict_periods = strict_periods_.load(std::memory_order_relaxed);
  stats.streams_opened = streams_opened_.load(std::memory_order_relaxed);
  stats.client_resets = client_resets_.load(std::memory_order_relaxed);
  stats.server_resets = server_resets_.load(std::memory_order_relaxed);
  stats.open_streams = open_streams_.load(std::memory_order_relaxed);
}

void Http2Policy::BeStrict(absl::Time now) {
  if (now >= strict_until_) {
    strict_periods_.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn(
        "HTTP/2 guard: rapid reset under way; for the next {} every "
        "connection may reset at most {} streams a second beyond those the "
        "server completes",
        absl::FormatDuration(kStrictPeriod),
        std::max<int64_t>(1, options_.max_client_resets / kStrictDivisor));
  }
  strict_until_ = now + kStrictPeriod;
}

void Http2Policy::Warn(const Http2ConnectionState& connection, uint32_t error_code,
                       bool goaway, const std::string& peer, int grpc_fd,
                       absl::Time now) {
  if (now - warn_window_start_ >= absl::Seconds(1)) {
    if (warnings_suppressed_ > 0) {
      spdlog::warn("HTTP/2 guard: {} more connections were closed than logged",
                   warnings_suppressed_);
    }
    warn_window_start_ = now;
    warnings_in_window_ = 0;
    warnings_suppressed_ = 0;
  }
  if (warnings_in_window_ >= kMaxWarningsPerSecond) {
    ++warnings_suppressed_;
    return;
  }
  ++warnings_in_window_;
  const char* how = goaway ? "sent GOAWAY and closed it" : "closed it";
  const CloseCause cause = CauseOf(connection, error_code);
  if (cause == CloseCause::kEarlyStreams) {
    spdlog::warn(
        "HTTP/2 guard: the connection from {} (gRPC's fd:{}) opened more than "
        "{} streams before acknowledging the server's SETTINGS (which carry "
        "that limit; gRPC 1.51 applies it only from the acknowledgement on); "
        "{} (ENHANCE_YOUR_CALM)",
        peer, grpc_fd, options_.max_streams_before_ack, how);
  } else if (cause == CloseCause::kUnfinishedMessages) {
    spdlog::warn(
        "HTTP/2 guard: the connection from {} (gRPC's fd:{}) stopped DATA "
        "inside a gRPC message on more than {} streams at once; {} "
        "(ENHANCE_YOUR_CALM)",
        peer, grpc_fd, options_.max_streams_before_ack, how);
  } else if (cause == CloseCause::kOversizedMessage) {
    spdlog::warn(
        "HTTP/2 guard: the connection from {} (gRPC's fd:{}) began a message "
        "of {} bytes, past {} (gRPC 1.51 would buffer it whole before "
        "refusing it); {} (ENHANCE_YOUR_CALM)",
        peer, grpc_fd, connection.oversized_length,
        options_.max_declared_message_bytes, how);
  } else if (cause == CloseCause::kRapidReset) {
    spdlog::warn(
        "HTTP/2 guard: the connection from {} (gRPC's fd:{}) opened {} "
        "streams and reset {} within a second while the server completed {} "
        "(limit {}): HTTP/2 rapid reset (CVE-2023-44487); {} "
        "(ENHANCE_YOUR_CALM)",
        peer, grpc_fd, connection.window_opened, connection.window_resets,
        connection.window_completed, connection.limit, how);
  } else {
    spdlog::warn(
        "HTTP/2 guard: the connection from {} (gRPC's fd:{}) did not "
        "acknowledge the server's SETTINGS within {}; {} (SETTINGS_TIMEOUT)",
        peer, grpc_fd, absl::FormatDuration(options_.settings_timeout),
        how);
  }
}

}  // namespace routeguide
