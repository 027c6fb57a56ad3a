#ifndef ROUTEGUIDE_SERVER_ROUTE_GUIDE_SERVER_H_
#define ROUTEGUIDE_SERVER_ROUTE_GUIDE_SERVER_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "call_environment.h"
#include "connection_acceptor.h"
#include "feature_store.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "http2_guard.h"

namespace routeguide {

struct ServerOptions {
  std::string address = "[::]:50051";
  // Share the port with other server processes (SO_REUSEPORT). Off, a port
  // already in use is a start-up error.
  bool reuse_port = false;
  // A connection must finish its handshake (TLS, and HTTP/2's preface)
  // within this long or it is closed. With the HTTP/2 guard, a plaintext
  // client must also acknowledge the server's SETTINGS within this long of
  // sending the preface.
  absl::Duration handshake_timeout = absl::Seconds(10);
  // Plaintext only: relay every connection through the HTTP/2 guard
  // (http2_guard.h), which closes clients that reset streams faster than
  // the server completes them (HTTP/2 rapid reset, CVE-2023-44487, which
  // gRPC 1.51 cannot withstand) or that do not acknowledge SETTINGS in
  // time. Off: connections go to gRPC directly.
  bool http2_guard = true;
  // The guard closes a connection whose client reset more than this many
  // streams within a second, and more than the server completed on it in
  // that second; for 10 s after such a close, a hundredth of this (see
  // Http2GuardOptions::max_client_resets).
  int64_t max_client_resets = 1000;
  // Poller threads in all, spread round-robin over `completion_queues`.
  int threads = 1;
  int completion_queues = 1;
  // Requests kept posted per method per completion queue.
  int calls_per_method_per_queue = 32;
  // How long in-flight calls may take to finish once shutdown starts.
  absl::Duration grace = absl::Seconds(5);
  // A RecordRoute or RouteChat whose client sends nothing for this long is
  // ended with DEADLINE_EXCEEDED (infinite: never).
  absl::Duration stream_idle_timeout = absl::Minutes(10);
  // The first part of the grace period, during which health checks answer
  // NOT_SERVING but calls are still accepted (capped at `grace`).
  absl::Duration health_drain = absl::ZeroDuration();

  // Serve gRPC server reflection (grpc.reflection.v1alpha), so generic
  // tools can list and call the service.
  bool reflection = false;

  // Who gets in. Insecure when null.
  std::shared_ptr<grpc::ServerCredentials> credentials;
  // When not empty, every RouteGuide call must carry "authorization:
  // Bearer <token>" (health checks are exempt).
  std::string auth_token;

  // Bounds. A message bigger than max_message_bytes gets
  // RESOURCE_EXHAUSTED; a RouteChat note longer than max_note_bytes ends
  // the call with INVALID_ARGUMENT.
  int max_message_bytes = 4 * 1024 * 1024;
  // A call whose metadata (headers) is bigger is refused.
  int max_metadata_bytes = 16 * 1024;
  size_t max_note_bytes = 4096;
  // RouteChat: replies one call may queue before it stops reading notes
  // until they are sent (backpressure on a client that does not read).
  size_t max_queued_replies = 256;
  int max_concurrent_streams = 1000;  // Per connection.
  // Keepalive enforcement: pings closer together than this (without data)
  // count as strikes; two strikes close the connection.
  absl::Duration min_ping_interval = absl::Seconds(10);
  // Connections idle this long, or this old, are closed (gracefully).
  absl::Duration max_connection_idle = absl::Minutes(30);
  absl::Duration max_connection_age = absl::InfiniteDuration();
  // After the age, how long open calls may go on before the connection is
  // closed under them.
  absl::Duration max_connection_age_grace = absl::InfiniteDuration();
  // gRPC's ResourceQuota for the server's buffers; 0 leaves it unbounded.
  // Near it gRPC sheds load: it closes connections and resets busy streams
  // (RESOURCE_EXHAUSTED) rather than refusing new ones.
  int64_t max_memory_bytes = 1024 * 1024 * 1024;
};

// What Shutdown saw, for the log and for tests.
struct ShutdownReport {
  int64_t calls_in_flight = 0;  // When shutdown started.
  // Calls that ended cancelled during shutdown: cut off when the grace
  // period ended, or cancelled by their client or deadline before that.
  int64_t calls_cancelled = 0;
};

// The RouteGuide (and health) service on gRPC's completion-queue API.
//
// Start builds the server, pre-posts requests for every method on every
// completion queue and starts the pollers. Shutdown stops accepting, lets
// calls in flight finish for up to the grace period, cancels the rest,
// waits until every call object is freed, then shuts each queue down,
// drains it and joins its pollers. Shutdown is idempotent and thread-safe
// but must not run on a poller thread; the destructor calls it.
class RouteGuideServer {
 public:
  static absl::StatusOr<std::unique_ptr<RouteGuideServer>> Start(
      const ServerOptions& options, std::shared_ptr<FeatureStore> store);
  ~RouteGuideServer();
  RouteGuideServer(const RouteGuideServer&) = delete;
  RouteGuideServer& operator=(const RouteGuideServer&) = delete;

  // The port bound (useful when the address asked for port 0).
  int port() const { return port_; }
  const ServerOptions& options() const { return options_; }
  const CallRegistry& calls() const { return registry_; }
  // The plaintext accept loop's counters; all zero for a TLS server, which
  // gRPC's own listener serves.
  AcceptorStats acceptor_stats() const {
    return acceptor_ != nullptr ? acceptor_->stats() : AcceptorStats{};
  }
  // The HTTP/2 guard's counters; all zero without one.
  Http2GuardStats guard_stats() const {
    return guard_ != nullptr ? guard_->stats() : Http2GuardStats{};
  }
  // True from the moment Shutdown begins.
  bool shutdown_started() const {
    return shutdown_started_.load(std::memory_order_acquire);
  }

  ShutdownReport Shutdown() ABSL_LOCKS_EXCLUDED(shutdown_mu_);

 private:
  RouteGuideServer(const ServerOptions& options,
                   std::shared_ptr<FeatureStore> store);

  const ServerOptions options_;
  std::shared_ptr<FeatureStore> store_;
  FeatureWireCache wire_;
  RouteGuideAsyncService service_;
  grpc::health::v1::Health::AsyncService health_;
  CallRegistry registry_;
  StreamRegistry streams_;
  CallEnvironment env_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
  // Plaintext only: our own listening sockets, so running out of
  // descriptors cannot stop the server accepting (gRPC 1.51's listener
  // does stop). Destroyed after server_, which it hands connections to.
  std::unique_ptr<ConnectionAcceptor> acceptor_;
  // Plaintext with http2_guard: relays the acceptor's connections to gRPC.
  // Stopped once gRPC's shutdown returned (connections it relays must work
  // through the grace period); destroyed after server_.
  std::unique_ptr<Http2Guard> guard_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::thread> pollers_;
  int port_ = 0;

  std::atomic<bool> shutdown_started_{false};
  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
  ShutdownReport report_ ABSL_GUARDED_BY(shutdown_mu_);
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_ROUTE_GUIDE_SERVER_H_
