#ifndef ROUTEGUIDE_SERVER_HTTP2_GUARD_H_
#define ROUTEGUIDE_SERVER_HTTP2_GUARD_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "spin_window.h"

namespace routeguide {

class Http2Policy;   // http2_policy.h
struct Http2Relay;   // http2_relay.h

struct Http2GuardOptions {
  // Rapid reset (CVE-2023-44487). In one-second windows the guard counts,
  // per connection, the client's RST_STREAM frames and the server's
  // trailers (HEADERS with END_STREAM: calls the server completed). The
  // connection is closed once, within one window, its client has reset
  // more than this many streams AND more streams than the server completed.
  //
  // Honest clients complete most of their calls, and a call cancelled by
  // its deadline is usually completed by the server too (it sends
  // DEADLINE_EXCEEDED trailers), so cancelling some calls never trips the
  // rule, at any rate. A HEADERS+RST_STREAM flood completes nothing and is
  // cut off after this many resets. Only a client that, within a second,
  // cancels more calls than this before the server answers them, and more
  // than the server completes, is closed; it then costs the server what a
  // flood costs.
  //
  // Since a client cut off can reconnect at once, for 10 s after any
  // connection was closed for rapid reset (or all clients together reset
  // more than 10 times this many streams in a second) the limit is a
  // hundredth of this (at least 1), for every connection. The second
  // condition still protects honest clients then.
  int64_t max_client_resets = 1000;
  // The client must acknowledge the server's SETTINGS within this long of
  // the connection being handed over: gRPC 1.51 applies the concurrent
  // stream and header size limits only from that acknowledgement on.
  absl::Duration settings_timeout = absl::Seconds(10);
  // Bytes buffered per connection and direction. When full, the guard
  // stops reading that direction's source until it drains.
  size_t buffer_bytes = 64 * 1024;
  // A gRPC message that declares more than this is refused by closing the
  // connection: gRPC 1.51 buffers a message whole (up to 4 GiB) before it
  // compares it with its own limit. Set well above that limit, so an
  // honest message a little too large still gets RESOURCE_EXHAUSTED.
  uint64_t max_declared_message_bytes = uint64_t{64} << 20;
  // Streams a client may have open before it acknowledges the server's
  // SETTINGS: gRPC 1.51 enforces its max concurrent streams only from the
  // acknowledgement on, so a client that never sends it could open any
  // number, each holding its headers. Also the most streams whose DATA may
  // stop inside a gRPC message at once (the guard keeps a few bytes of
  // state for each): an honest client has no more streams open than this,
  // while DATA sent on streams long closed (which gRPC drops) could
  // otherwise make the guard keep state for every stream id.
  int64_t max_streams_before_ack = 1000;
  // The guard's thread runs this much nicer than the thread that starts
  // it (0 to 19, capped at nice 19; higher yields sooner), so a server
  // started under `nice` keeps the gap. Above gRPC's pollers, the guard relays when they have
  // finished what it gave them, so each of its turns moves more bytes: on
  // a busy core, GetFeature at 64 in flight runs about 1.3x faster than at
  // 0 (docs/benchmarks.md). It cannot starve: what the pollers do
  // comes through the guard, so they go idle without it.
  int thread_nice = 10;
  // The longest the guard's thread keeps polling, once it has nothing to
  // do, before it sleeps (yielding its core to any thread that wants it);
  // zero: it sleeps at once. At most kMaxGuardSpin. How long it polls
  // within that follows the waits it has seen (SpinWindow): a client that
  // waits for each answer before its next request then finds the guard
  // awake, where otherwise the core has gone idle and waking it is most of
  // what the relay adds to such a call, while traffic spread wider than
  // this costs a few short polls per call. One window serves every
  // connection, so events closer together than this, from any of them,
  // keep the core busy throughout (docs/benchmarks.md).
  absl::Duration spin = kDefaultGuardSpin;
  // ...and it spins only while at most this many streams are under way,
  // on all connections together. The spin is for calls made one or a few
  // at a time, whose next event is the next step of the same call. With
  // many under way the core has their work to do anyway, and a guard that
  // relays each request the moment it lands left a client's uploads on
  // the same machine, under BBR, a congestion window of a dozen segments
  // (docs/benchmarks.md, run T). At least 0.
  int64_t spin_max_open_streams = kDefaultSpinMaxOpenStreams;
};

// Counters, for tests and the status line.
struct Http2GuardStats {
  int64_t relayed = 0;             // Connections taken over since start.
  int64_t active = 0;              // Relayed now.
  int64_t refused = 0;             // Not taken: out of descriptors, stopped.
  int64_t rapid_reset_closes = 0;  // Closed for resetting streams.
  int64_t settings_timeouts = 0;   // Closed for not acknowledging SETTINGS.
  int64_t oversized_message_closes = 0;  // Closed for a message declared too large.
  int64_t early_stream_closes = 0;  // Too many streams before the SETTINGS ack.
  // Too many streams stopped inside a message at once.
  int64_t unfinished_message_closes = 0;
  int64_t goaways_sent = 0;        // GOAWAYs the guard wrote itself.
  // Times a rapid reset made the guard lower every connection's limit.
  int64_t strict_periods = 0;
  int64_t streams_opened = 0;      // HEADERS on a new stream, all clients.
  int64_t client_resets = 0;       // RST_STREAM frames, all clients.
  // RST_STREAM frames gRPC sent: streams refused, cut under --max_memory,
  // or ended before the client's half-close.
  int64_t server_resets = 0;
  int64_t held_bytes = 0;  // Relayed bytes waiting in the guard for a socket.
  int64_t open_streams = 0;        // Streams under way now, all clients.
  int64_t spin_polls = 0;  // Polls that found nothing, made while spinning.
  int64_t spin_hits = 0;   // Waits that a spin saw end (no sleep needed).
  // The windows, in microseconds, of spins that ran out with nothing come
  // (the guard slept after them).
  int64_t spin_wasted_us = 0;
};

// Relays plaintext HTTP/2 connections to gRPC and closes the ones that
// abuse it in ways gRPC 1.51 cannot defend against itself.
//
// gRPC 1.51 reads a connection for as long as bytes are waiting and defers
// the cleanup each HEADERS+RST_STREAM pair creates, so a client sending
// pairs faster than the server frees them grows its memory without bound
// (HTTP/2 rapid reset, CVE-2023-44487). The guard sits between the client
// and gRPC: gRPC gets one end of a socketpair, and one thread relays bytes
// between the client's socket and the other end, reading nothing but the
// 9-byte frame headers each way (payloads are skipped by length, no
// HPACK). It counts the streams the client opens and resets and the ones
// the server completes (trailers), and on a rapid reset (see
// Http2GuardOptions::max_client_resets) or a SETTINGS acknowledgement that
// does not come in time it writes a GOAWAY to the client (ENHANCE_YOUR_CALM
// or SETTINGS_TIMEOUT, at a frame boundary of what the server sent, or not
// at all) and closes both sockets; gRPC sees end of file and frees the
// connection, and the client's bytes after the offending frame never reach
// gRPC.
//
// One thread, one epoll set, non-blocking sockets. Each direction buffers
// at most `buffer_bytes`; when that is full the guard stops reading the
// source, so a slow reader holds its writer back rather than filling
// memory. End of file on one side is passed on (shutdown for writing) once
// what was buffered for the other is written; an error closes both.
//
// Files: http2_frames.h reads the framing, http2_policy.h holds the rules
// and their counters, http2_relay.h the sockets and buffers of one
// connection (Http2Guard's relay I/O is in http2_relay.cc), and
// http2_guard.cc the loop, adoption and closing.
class Http2Guard {
 public:
  static absl::StatusOr<std::unique_ptr<Http2Guard>> Start(
      const Http2GuardOptions& options);
  ~Http2Guard();  // Stops.
  Http2Guard(const Http2Guard&) = delete;
  Http2Guard& operator=(const Http2Guard&) = delete;

  // Takes `client_fd`, a connected non-blocking socket whose next bytes
  // are the HTTP/2 client preface, and returns the descriptor to give
  // gRPC in its place (the caller, then gRPC, owns that one). `peer` names
  // the client in the log. On failure `client_fd` is closed. Thread-safe.
  absl::StatusOr<int> Adopt(int client_fd, std::string peer)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Closes every relayed connection (gRPC sees end of file on each) and
  // joins the thread; later Adopt calls fail. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  Http2GuardStats stats() const;

 private:
  struct Incoming {
    int client_fd;
    int relay_fd;  // Our end of the socketpair.
    int grpc_fd;   // gRPC's end: only its number, for the log.
    std::string peer;
  };
  enum class Side { kClient = 0, kGrpc = 1 };

  explicit Http2Guard(const Http2GuardOptions& options);
  void Loop();
  void TakeIncoming(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  void ExpireTimers(absl::Time now);
  // Closes gRPC's side, writes a GOAWAY with `error_code` to the client
  // when it can at a frame boundary, then closes the client too.
  void Reject(Http2Relay& relay, uint32_t error_code, absl::Time now, bool* closed);

  // The relay I/O (http2_relay.cc).
  // Moves what it can both ways; queues the relay for another turn when it
  // used up its share of this one.
  void Pump(uint64_t id, absl::Time now);
  // Adds `fd` to the epoll set, or changes what is watched on it: always
  // input, room to write when `out`. False on failure.
  bool Watch(int fd, uint64_t id, Side side, bool out, bool add = false);
  // One round of relaying; false when nothing moved. May close the relay
  // (then sets `*closed`).
  bool Step(Http2Relay& relay, absl::Time now, bool* closed);
  bool StepClosing(Http2Relay& relay, bool* closed);
  // gRPC's side is gone: what was queued for the client is written, then
  // the client's side is closed too (after a short linger).
  void BeginClosing(Http2Relay& relay, absl::Time now);
  void CloseRelay(uint64_t id);
  // held_bytes_ += delta (the loop thread is the only writer).
  void AddHeldBytes(int64_t delta) {
    held_bytes_.store(held_bytes_.load(std::memory_order_relaxed) + delta,
                      std::memory_order_relaxed);
  }

  const Http2GuardOptions options_;
  // The rules: what the frames say, and when a connection must go.
  const std::unique_ptr<Http2Policy> policy_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // An eventfd: new connections, or Stop.
  std::thread thread_;
  std::atomic<bool> stopping_{false};

  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Incoming> incoming_ ABSL_GUARDED_BY(mu_);

  // Loop-thread state.
  absl::flat_hash_map<uint64_t, std::unique_ptr<Http2Relay>> relays_;
  uint64_t next_id_ = 1;
  std::vector<uint64_t> ready_;  // Relays that still had work at turn end.
  // Where each recv lands; not zeroed, as only the bytes received are read
  // (zeroing 64 KiB was 1% of a start-up's instructions).
  std::unique_ptr<char[]> scratch_;
  size_t scratch_size_ = 0;
  // (deadline, relay id), earliest first; an entry outliving its relay or
  // its reason is skipped when it comes up.
  std::priority_queue<std::pair<absl::Time, uint64_t>,
                      std::vector<std::pair<absl::Time, uint64_t>>,
                      std::greater<>>
      timers_;

  // Bytes the relays hold for either side; written by the loop alone.
  std::atomic<int64_t> held_bytes_{0};
  std::atomic<int64_t> relayed_{0}, active_{0}, refused_{0}, goaways_sent_{0},
      spin_polls_{0}, spin_hits_{0}, spin_wasted_us_{0};
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_HTTP2_GUARD_H_
