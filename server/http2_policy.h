#ifndef ROUTEGUIDE_SERVER_HTTP2_POLICY_H_
#define ROUTEGUIDE_SERVER_HTTP2_POLICY_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "http2_frames.h"
#include "http2_guard.h"

namespace routeguide {

// How many streams the server ended inside one of the client's messages a
// connection remembers (Http2ConnectionState::ended_inside). The rest of
// such a message is whatever the client had sent before it saw the end, so
// it comes soon after, or not at all.
inline constexpr size_t kMaxEndedInsideMessage = 64;

// What the HTTP/2 guard's policy knows about one connection: the frames
// each way, and the counts its rules look at. Loop thread only.
struct Http2ConnectionState {
  FrameCursor from_client{kClientPrefaceSize};
  FrameCursor from_grpc{0};

  bool settings_acked = false;
  absl::Time settings_deadline;
  uint32_t last_stream_id = 0;  // Highest stream the client opened.
  // The client streams whose DATA stopped inside a gRPC message (or its
  // prefix): where each is in the framing. A stream at a message boundary
  // has no entry; one is dropped when its stream ends.
  absl::flat_hash_map<uint32_t, StreamMessages> messages;
  // Streams the server ended (trailers or a reset) while the client was
  // inside a message, oldest first: the rest of the message may still come
  // and must not be read as a new one. gRPC drops DATA on a stream it
  // ended, so such DATA is let through unread.
  std::vector<uint32_t> ended_inside;
  // The rest of the DATA frame being read is on one of them.
  bool skipping_data = false;
  uint8_t pad_length = 0;  // Of the DATA frame being read.
  uint64_t oversized_length = 0;  // The declared length it was closed for.
  // The client's streams that neither side has ended (the server's
  // trailers or a reset from either). Until the client acknowledges
  // SETTINGS gRPC 1.51 does not bound them, so the policy does
  // (max_streams_before_ack); after it gRPC refuses streams past its own
  // limit, and the set, kept to max_streams_before_ack, is what the
  // guard's spin looks at.
  absl::flat_hash_set<uint32_t> open_streams;
  bool too_many_early_streams = false;  // What it was closed for.
  bool too_many_unfinished_messages = false;  // Likewise.
  int64_t limit = 0;            // The reset limit it ran into.
  // The current one-second window of the reset rule.
  absl::Time window_start;
  int64_t window_opened = 0;
  int64_t window_resets = 0;
  int64_t window_completed = 0;  // Streams the server ended (trailers).

  void RollWindow(absl::Time now);
};

// The guard's rules (see Http2GuardOptions): reads the frame headers of
// each connection and decides when one must be closed; counts and logs the
// closes (a few warnings a second, the rest summed up), and lowers every
// connection's reset limit for a while during a rapid reset. Loop thread
// only, except AddStats.
class Http2Policy {
 public:
  explicit Http2Policy(const Http2GuardOptions& options) : options_(options) {}

  // Looks at the frame headers in bytes the client sent; false when the
  // connection must be closed (then `*error_code` says why).
  bool InspectClientBytes(Http2ConnectionState& connection, const char* data,
                          size_t size, absl::Time now, uint32_t* error_code);
  // Looks at what gRPC sent: the streams it completed or reset.
  void InspectServerBytes(Http2ConnectionState& connection, const char* data,
                          size_t size, absl::Time now);

  // A connection is being closed for `error_code`: counted before its
  // sockets close, so that whoever sees them close sees the count.
  void CountClose(const Http2ConnectionState& connection, uint32_t error_code);
  // ...and once closed: logs it, naming `peer` and gRPC's `grpc_fd`
  // (`goaway`: whether the client gets a GOAWAY), and after a rapid reset
  // lowers every connection's limit, as its client is likely to be back
  // at once on a new connection.
  void ReportClose(const Http2ConnectionState& connection, uint32_t error_code,
                   bool goaway, const std::string& peer, int grpc_fd, absl::Time now);
  // Why the connection is closed for `error_code`, in a few words: the
  // GOAWAY's debug data.
  static const char* CloseReason(const Http2ConnectionState& connection,
                                 uint32_t error_code);
  // Logs how many closes went unlogged (at Stop).
  void LogSuppressedWarnings();

  // The connection is closing: its streams are under way no longer.
  void EndStreams(Http2ConnectionState& connection);
  // Streams under way on every connection (open_streams, summed).
  int64_t open_streams() const { return open_streams_.load(std::memory_order_relaxed); }

  // Fills in the policy's counters.
  void AddStats(Http2GuardStats& stats) const;

 private:
  // What a connection is closed for; the first that holds, in this order.
  enum class CloseCause {
    kEarlyStreams,        // Too many streams before the SETTINGS ack.
    kUnfinishedMessages,  // Too many streams stopped inside a message.
    kOversizedMessage,    // A message declared too large.
    kRapidReset,          // Any other ENHANCE_YOUR_CALM: resets.
    kSettingsTimeout,
  };
  static constexpr size_t kCloseCauses =
      static_cast<size_t>(CloseCause::kSettingsTimeout) + 1;
  static size_t IndexOf(CloseCause cause) { return static_cast<size_t>(cause); }
  static CloseCause CauseOf(const Http2ConnectionState& connection, uint32_t error_code);
  // Whether the close is for rapid reset (rather than another reason that
  // also sends ENHANCE_YOUR_CALM).
  static bool IsRapidReset(const Http2ConnectionState& connection, uint32_t error_code) {
    return CauseOf(connection, error_code) == CloseCause::kRapidReset;
  }
  void StreamEnded(Http2ConnectionState& connection, uint32_t stream_id);
  void AddOpenStreams(int64_t delta);
  // Lowers every connection's reset limit for a while (see kStrictPeriod).
  void BeStrict(absl::Time now);
  void Warn(const Http2ConnectionState& connection, uint32_t error_code, bool goaway,
            const std::string& peer, int grpc_fd, absl::Time now);

  const Http2GuardOptions options_;
  // Rapid reset under way: the stricter limit holds until then.
  absl::Time strict_until_ = absl::InfinitePast();
  // Resets from all clients in the current second.
  absl::Time global_window_start_ = absl::InfinitePast();
  int64_t global_resets_ = 0;
  // At most a few warnings a second, so an attacker that reconnects cannot
  // flood the log; the rest are counted and summed up.
  absl::Time warn_window_start_ = absl::InfinitePast();
  int warnings_in_window_ = 0;
  int64_t warnings_suppressed_ = 0;

  // Connections closed, by IndexOf(CloseCause).
  std::array<std::atomic<int64_t>, kCloseCauses> closes_{};
  std::atomic<int64_t> strict_periods_{0}, streams_opened_{0}, client_resets_{0},
      server_resets_{0};
  // Written by the loop thread alone; atomic for stats().
  std::atomic<int64_t> open_streams_{0};
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_HTTP2_POLICY_H_
