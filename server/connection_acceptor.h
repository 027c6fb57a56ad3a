#ifndef ROUTEGUIDE_SERVER_CONNECTION_ACCEPTOR_H_
#define ROUTEGUIDE_SERVER_CONNECTION_ACCEPTOR_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace routeguide {

class Http2Guard;

// Which remote address each connection handed to gRPC came from. gRPC
// names a connection it got as a descriptor "fd:N"; this maps N back to
// the address, for the access log. An open descriptor's number is unique,
// so a number reused by a later connection simply replaces the entry.
// Thread-safe.
class PeerDirectory {
 public:
  void Record(int fd, std::string address) ABSL_LOCKS_EXCLUDED(mu_);
  // The address behind a gRPC peer string "fd:N", or `peer` unchanged.
  std::string Resolve(absl::string_view peer) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<int, std::string> addresses_ ABSL_GUARDED_BY(mu_);
};

struct AcceptorOptions {
  // "HOST:PORT", "[V6]:PORT", "ipv4:HOST:PORT", "ipv6:[V6]:PORT" or
  // "unix:PATH". A host name binds every address it resolves to.
  std::string address;
  // Share the port with other processes (SO_REUSEPORT). Off: a port in
  // use is an error.
  bool reuse_port = false;
  // A connection must send HTTP/2's 24-byte client preface within this
  // long, or it is closed.
  absl::Duration handshake_timeout = absl::Seconds(10);
};

// Counters, for the status line and tests.
struct AcceptorStats {
  int64_t accepted = 0;
  int64_t handed_over = 0;            // Sent the preface; now gRPC's.
  int64_t handshake_timeouts = 0;     // Silent past the handshake timeout.
  int64_t not_http2 = 0;              // Sent something else, or hung up.
  int64_t shed = 0;                   // Closed at once: no descriptor free
                                      // (or the HTTP/2 guard had none).
  int64_t pending = 0;                // Waiting for their preface now.
};

// Owns plaintext listening sockets and their accept loop, so that running
// out of file descriptors never stops the server accepting: gRPC 1.51's
// own listener stops for good on the first EMFILE (CVE-2023-4785).
//
// One thread runs an epoll loop over the listening sockets and the
// connections that have not yet sent the HTTP/2 preface. Out of
// descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM), it takes the waiting
// connection with a descriptor kept in reserve, closes it, and stops
// accepting for a backoff (10 ms, doubling to 1 s) before it tries again.
// A connection that sends the preface in time is handed over (to gRPC,
// through `hand_over`, which then owns the descriptor); one that stays
// silent past the handshake timeout, or sends anything else, is closed.
// With an HTTP/2 guard, the guard takes the connection and `hand_over`
// gets the guard's stand-in for it instead (see http2_guard.h).
class ConnectionAcceptor {
 public:
  // Binds and listens (nothing is accepted before Start). Errors name the
  // address: in use (see reuse_port), not an address of this host, bad
  // syntax.
  static absl::StatusOr<std::unique_ptr<ConnectionAcceptor>> Listen(
      const AcceptorOptions& options);
  ~ConnectionAcceptor();  // Stops.
  ConnectionAcceptor(const ConnectionAcceptor&) = delete;
  ConnectionAcceptor& operator=(const ConnectionAcceptor&) = delete;

  // The port bound (0 for a unix socket).
  int port() const { return port_; }
  const PeerDirectory& peers() const { return peers_; }

  // Starts accepting on a thread of its own. `hand_over(fd)` runs on that
  // thread and takes ownership of the descriptor. With a `guard` (which
  // must outlive the accept loop, i.e. Stop), each connection goes to the
  // guard, and `hand_over` gets the descriptor the guard relays it on;
  // peers() names that one.
  void Start(std::function<void(int fd)> hand_over, Http2Guard* guard = nullptr);
  // Stops accepting: closes the listening sockets and every connection not
  // yet handed over, then joins the thread. Idempotent.
  void Stop();

  AcceptorStats stats() const;

 private:
  struct Pending;
  explicit ConnectionAcceptor(const AcceptorOptions& options);
  void Loop();
  // Accepts what is waiting on listening socket `index`.
  void AcceptFrom(size_t index, absl::Time now);
  // A pending connection became readable (or hung up).
  void CheckPreface(int fd);
  void ClosePending(int fd);
  void ExpirePending(absl::Time now);
  // Out of descriptors: shed one waiting connection and pause accepting.
  void Shed(size_t index, int error, absl::Time now);
  // Stops watching the listening sockets for the current backoff.
  void PauseAccepting(absl::Time now);
  void WatchListeners(bool on);

  const AcceptorOptions options_;
  std::vector<int> listen_fds_;
  std::vector<std::string> listen_names_;
  std::string unix_path_;  // Removed on Stop when we created it.
  int port_ = 0;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;     // An eventfd that Stop writes to.
  int reserve_fd_ = -1;  // Kept open to be freed when descriptors run out.
  std::function<void(int)> hand_over_;
  Http2Guard* guard_ = nullptr;
  std::thread thread_;
  bool stopped_ = false;
  PeerDirectory peers_;

  // Loop-thread state: connections waiting for their preface, oldest
  // first (all share one timeout, so arrival order is deadline order).
  absl::flat_hash_map<int, std::unique_ptr<Pending>> pending_;
  std::vector<std::pair<absl::Time, std::pair<int, uint64_t>>> deadlines_;
  size_t deadlines_head_ = 0;
  uint64_t next_id_ = 0;
  // While out of descriptors: accepting resumes at `paused_until_`.
  bool paused_ = false;
  absl::Time paused_until_;
  absl::Duration backoff_;
  int64_t shed_in_episode_ = 0;

  std::atomic<int64_t> accepted_{0}, handed_over_{0}, handshake_timeouts_{0},
      not_http2_{0}, shed_{0}, pending_count_{0};
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_CONNECTION_ACCEPTOR_H_
