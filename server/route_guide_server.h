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
#include "idle_sweep.h"
#include "server_options.h"

namespace routeguide {

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
  // RouteChat's notes go to `shared_notes` when it is set (shared by every
  // replica on the same Redis), else to `store`.
  static absl::StatusOr<std::unique_ptr<RouteGuideServer>> Start(
      const ServerOptions& options, std::shared_ptr<FeatureStore> store,
      std::shared_ptr<RedisNotesStore> shared_notes = nullptr);
  ~RouteGuideServer();
  RouteGuideServer(const RouteGuideServer&) = delete;
  RouteGuideServer& operator=(const RouteGuideServer&) = delete;

  // The port bound (useful when the address asked for port 0).
  int port() const { return port_; }
  const ServerOptions& options() const { return options_; }
  const CallRegistry& calls() const { return registry_; }
  // The shared notes store, or null when notes stay in this process.
  const RedisNotesStore* shared_notes() const { return shared_notes_.get(); }
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
                   std::shared_ptr<FeatureStore> store,
                   std::shared_ptr<RedisNotesStore> shared_notes);

  const ServerOptions options_;
  std::shared_ptr<FeatureStore> store_;
  // Outlives the calls, which hold tickets of its requests.
  std::shared_ptr<RedisNotesStore> shared_notes_;
  FeatureWireCache wire_;
  RouteGuideAsyncService service_;
  grpc::health::v1::Health::AsyncService health_;
  ReflectionAsyncService reflection_;  // Registered when options_.reflection.
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
  // With a finite --stream_idle_timeout: ends the streams whose client has
  // stopped making progress (StreamRegistry::EndIdle), from Start until
  // Shutdown has ended every call, on the first queue's pollers. Destroyed
  // before the queues, after they were drained.
  std::unique_ptr<IdleSweep> idle_sweep_;
  int port_ = 0;

  std::atomic<bool> shutdown_started_{false};
  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
  ShutdownReport report_ ABSL_GUARDED_BY(shutdown_mu_);
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_ROUTE_GUIDE_SERVER_H_
