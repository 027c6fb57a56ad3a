#include "route_guide_server.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <optional>
#include <atomic>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "call_spawners.h"
#include "grpc/grpc.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/server_posix.h"
#include "process_limits.h"
#include "spdlog/spdlog.h"
#include "tagged_call.h"

namespace routeguide {
namespace {

// How long Shutdown waits, after gRPC has cancelled what was left, for the
// call objects to see their last completions. Cancelled operations complete
// at once, so this only catches a call that is stuck by a bug.
constexpr absl::Duration kFreeCallsTimeout = absl::Seconds(30);
// At shutdown, how long no call may be in flight before the connections
// still open are closed instead of waited for.
constexpr absl::Duration kNoCallsBeforeClosing = absl::Milliseconds(50);
// At shutdown, how long the HTTP/2 guard may take to pass on what gRPC
// wrote last before it is stopped.
constexpr absl::Duration kGuardFlushTimeout = absl::Milliseconds(500);
// The idle sweep looks at every stream this many times per idle timeout,
// at most once a second and at least 10 ms apart: an idle stream ends
// between the timeout and an eighth of it (or a second) later.
constexpr int kIdleSweepsPerTimeout = 8;
constexpr absl::Duration kMaxIdleSweepPeriod = absl::Seconds(1);
constexpr absl::Duration kMinIdleSweepPeriod = absl::Milliseconds(10);

}  // namespace

RouteGuideServer::RouteGuideServer(const ServerOptions& options,
                                   std::shared_ptr<FeatureStore> store,
                                   std::shared_ptr<RedisNotesStore> shared_notes)
    : options_(options),
      store_(std::move(store)),
      shared_notes_(std::move(shared_notes)),
      wire_(store_.get()) {
  env_.options = &options_;
  env_.service = &service_;
  env_.wire = &wire_;
  env_.health = &health_;
  env_.reflection = options_.reflection ? &reflection_ : nullptr;
  env_.store = store_.get();
  env_.shared_notes = shared_notes_.get();
  env_.registry = &registry_;
  env_.streams = &streams_;
}

namespace {

int ClampedMillis(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return INT_MAX;
  const int64_t ms = absl::ToInt64Milliseconds(d);
  return static_cast<int>(std::min<int64_t>(std::max<int64_t>(ms, 0), INT_MAX));
}

}  // namespace

absl::StatusOr<std::unique_ptr<RouteGuideServer>> RouteGuideServer::Start(
    const ServerOptions& options, std::shared_ptr<FeatureStore> store,
    std::shared_ptr<RedisNotesStore> shared_notes) {
  if (absl::Status valid = ValidateServerOptions(options); !valid.ok()) return valid;
  std::unique_ptr<RouteGuideServer> self(
      new RouteGuideServer(options, std::move(store), std::move(shared_notes)));

  grpc::ServerBuilder builder;
  if (options.credentials == nullptr) {
    // Plaintext: our accept loop listens and hands connections to gRPC.
    AcceptorOptions acceptor;
    acceptor.address = options.address;
    acceptor.reuse_port = options.reuse_port;
    acceptor.handshake_timeout = options.handshake_timeout;
    auto listening = ConnectionAcceptor::Listen(acceptor);
    if (!listening.ok()) return listening.status();
    self->acceptor_ = *std::move(listening);
    self->port_ = self->acceptor_->port();
    self->registry_.set_peer_directory(&self->acceptor_->peers());
    if (options.http2_guard) {
      Http2GuardOptions guard;
      guard.max_client_resets = options.max_client_resets;
      guard.thread_nice = options.http2_guard_nice;
      guard.spin = options.http2_guard_spin;
      guard.settings_timeout = options.handshake_timeout;
      // Twice the limit: an honest client may open streams before it has
      // read the SETTINGS that carry the limit (it must assume none until
      // then), but not thousands more.
      guard.max_streams_before_ack = 2 * static_cast<int64_t>(options.max_concurrent_streams);
      // Far past the limit: surely not an honest message a little too big,
      // which gRPC refuses with RESOURCE_EXHAUSTED once it has it.
      guard.max_declared_message_bytes =
          std::max<uint64_t>(4 * static_cast<uint64_t>(options.max_message_bytes), 1 << 20);
      auto started = Http2Guard::Start(guard);
      if (!started.ok()) return started.status();
      self->guard_ = *std::move(started);
    }
  } else {
    // TLS: gRPC 1.51 takes connections from a descriptor only without
    // credentials, so gRPC's listener serves; main() watches for it dying.
    builder.AddListeningPort(options.address, options.credentials, &self->port_);
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, options.reuse_port ? 1 : 0);
    builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                               ClampedMillis(options.handshake_timeout));
  }
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, options.max_metadata_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             options.max_concurrent_streams);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             ClampedMillis(options.min_ping_interval));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  // Arguments that would only restate gRPC's own behaviour (the probe on,
  // no idle or age limit) are left unset: every connection converts the
  // argument list for each filter it builds, about 4,000 instructions an
  // argument each time.
  if (!options.http2_bdp_probe) builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  // The server never compresses what it sends, so the filter that would
  // is left out of every call's path (compressed requests are still
  // read: decompression is a filter of its own, kept).
  builder.AddChannelArgument(GRPC_ARG_ENABLE_PER_MESSAGE_COMPRESSION, 0);
  if (options.max_connection_idle != absl::InfiniteDuration()) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                               ClampedMillis(options.max_connection_idle));
  }
  if (options.max_connection_age != absl::InfiniteDuration()) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                               ClampedMillis(options.max_connection_age));
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                               ClampedMillis(options.max_connection_age_grace));
  }
  // Lives until Start returns: by then the server holds gRPC initialised.
  // Had it been destroyed before BuildAndStart, its grpc_shutdown would end
  // the gRPC its constructor started (joining three threads), only for the
  // server to start it all again: about 0.3 ms of every start-up.
  std::optional<grpc::ResourceQuota> quota;
  if (options.max_memory_bytes > 0) {
    quota.emplace("routeguide-server");
    quota->Resize(static_cast<size_t>(options.max_memory_bytes));
    builder.SetResourceQuota(*quota);
  }
  builder.RegisterService(&self->service_);
  builder.RegisterService(&self->health_);
  if (options.reflection) builder.RegisterService(&self->reflection_);
  for (int i = 0; i < options.completion_queues; ++i) {
    self->queues_.push_back(builder.AddCompletionQueue());
  }
  self->server_ = builder.BuildAndStart();
  if (self->server_ == nullptr || (self->acceptor_ == nullptr && self->port_ == 0)) {
    if (self->server_ != nullptr) self->server_->Shutdown();
    for (auto& cq : self->queues_) {
      cq->Shutdown();
      PollUntilShutdown(cq.get());
    }
    self->queues_.clear();
    self->server_.reset();
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options.address,
        " (port in use? start every server sharing it with --reuseport; or "
        "not an address of this host)"));
  }

  for (auto& cq : self->queues_) {
    for (int i = 0; i < options.calls_per_method_per_queue; ++i) {
      SpawnGetFeatureCall(self->env_, cq.get());
      SpawnListFeaturesCall(self->env_, cq.get());
      SpawnRecordRouteCall(self->env_, cq.get());
      SpawnRouteChatCall(self->env_, cq.get());
    }
    // Health checks are rare: a couple waiting per queue is plenty.
    SpawnHealthCheckCall(self->env_, cq.get());
    SpawnHealthCheckCall(self->env_, cq.get());
    // Reflection too: generic tools make a call or two.
    if (options.reflection) SpawnReflectionCall(self->env_, cq.get());
  }
  for (int i = 0; i < options.threads; ++i) {
    grpc::ServerCompletionQueue* cq =
        self->queues_[i % self->queues_.size()].get();
    self->pollers_.emplace_back([cq, i] {
      NameThisThread(absl::StrCat("rg-poller-", i).c_str());
      PollUntilShutdown(cq);
    });
  }
  if (self->acceptor_ != nullptr) {
    grpc::Server* server = self->server_.get();
    self->acceptor_->Start([server](int fd) { grpc::AddInsecureChannelFromFd(server, fd); },
                           self->guard_.get());
  }
  if (options.stream_idle_timeout != absl::InfiniteDuration()) {
    const absl::Duration period =
        std::clamp(options.stream_idle_timeout / kIdleSweepsPerTimeout,
                   kMinIdleSweepPeriod, kMaxIdleSweepPeriod);
    self->idle_sweep_ = std::make_unique<IdleSweep>(
        &self->streams_, self->queues_.front().get(), period);
    self->idle_sweep_->Start();
  }
  return self;
}

RouteGuideServer::~RouteGuideServer() { Shutdown(); }

ShutdownReport RouteGuideServer::Shutdown() {
  absl::MutexLock lock(&shutdown_mu_);
  if (shut_down_ || server_ == nullptr) return report_;
  shut_down_ = true;
  shutdown_started_.store(true, std::memory_order_release);

  const absl::Time deadline = absl::Now() + options_.grace;
  report_.calls_in_flight = registry_.active();
  const int64_t cancelled_before = registry_.cancelled();
  spdlog::info("shutting down: {} calls in flight, grace {}",
               report_.calls_in_flight, absl::FormatDuration(options_.grace));

  // Health says NOT_SERVING from now on. For the drain period everything
  // is still served, so load balancers that poll health see the change and
  // send new calls elsewhere before this server stops accepting.
  env_.serving.store(false, std::memory_order_release);
  const absl::Duration drain = std::min(options_.health_drain, options_.grace);
  if (drain > absl::ZeroDuration()) {
    spdlog::info("health is NOT_SERVING; still accepting calls for {}",
                 absl::FormatDuration(drain));
    absl::SleepFor(drain);
  }

  // Stops accepting at once; waits for calls in flight until the deadline,
  // then cancels what is left. The pollers keep running meanwhile, so the
  // calls can make progress.
  // Our accept loop hands gRPC no more connections from here on; gRPC
  // must not get one after its shutdown began.
  if (acceptor_ != nullptr) acceptor_->Stop();
  std::atomic<bool> stopped{false};
  std::thread stopper([this, deadline, &stopped] {
    server_->Shutdown(absl::ToChronoTime(deadline));
    stopped.store(true, std::memory_order_release);
  });
  // Streams still open just before the deadline are ended with a status
  // (UNAVAILABLE) instead of being reset when gRPC cancels them.
  const absl::Time end_streams_at =
      deadline - std::min(absl::Seconds(1), options_.grace / 4);
  // gRPC's shutdown also waits for every connection to close after its
  // GOAWAY, so one idle client that never answers would hold it for the
  // whole grace period with no call left. Once no call is in flight (for a
  // moment: a call gRPC already matched may be on its way to a poller),
  // the connections that remain are closed.
  absl::Time no_calls_since = absl::InfiniteFuture();
  bool connections_closed = false;
  while (!stopped.load(std::memory_order_acquire) && absl::Now() < end_streams_at) {
    absl::SleepFor(absl::Milliseconds(1));
    if (connections_closed) continue;
    if (registry_.active() != 0) {
      no_calls_since = absl::InfiniteFuture();
    } else if (no_calls_since == absl::InfiniteFuture()) {
      no_calls_since = absl::Now();
    } else if (absl::Now() - no_calls_since >= kNoCallsBeforeClosing) {
      spdlog::info("no calls left; closing the connections that remain");
      grpc_server_cancel_all_calls(server_->c_server());
      connections_closed = true;
    }
  }
  if (!stopped.load(std::memory_order_acquire)) {
    spdlog::info("ending {} calls still open", registry_.active());
    streams_.StopAll();
  }
  stopper.join();
  // Every call has ended or been cancelled, so no stream needs the sweep
  // any more (streams stay registered until their last tags come back);
  // it stops here, before the queues it arms alarms on are shut down.
  if (idle_sweep_ != nullptr) idle_sweep_->Stop();
  // Only now: the connections the guard relays carried the calls that ran
  // through the grace period, and gRPC has closed its end of each by now.
  // What gRPC wrote last (the statuses of the streams it ended) may still
  // be on its way through the guard: it closes each relay once that is
  // passed on and the client hangs up, so wait for that, briefly, before
  // cutting off what is left.
  if (guard_ != nullptr) {
    const absl::Time flush_deadline = absl::Now() + kGuardFlushTimeout;
    while (guard_->stats().active > 0 && absl::Now() < flush_deadline) {
      absl::SleepFor(absl::Milliseconds(2));
    }
    guard_->Stop();
  }
  // A call may still post its last operations (Finish after a failed read)
  // until it is freed; only then may the queues shut down.
  const bool all_freed = registry_.AwaitNoObjects(kFreeCallsTimeout);
  report_.calls_cancelled = registry_.cancelled() - cancelled_before;
  if (!all_freed) {
    // Going on would shut queues down under a live call (which may still
    // post to them) and free what it points to: a clear stop beats memory
    // corruption.
    spdlog::critical("{} call objects still alive {} after shutdown; aborting",
                     registry_.objects(), absl::FormatDuration(kFreeCallsTimeout));
    spdlog::shutdown();
    std::abort();
  }
  for (auto& cq : queues_) cq->Shutdown();
  for (std::thread& poller : pollers_) poller.join();  // Each drains its queue.
  pollers_.clear();
  server_.reset();
  queues_.clear();
  spdlog::info("drained {} calls ({} finished, {} cancelled)",
               report_.calls_in_flight,
               report_.calls_in_flight - report_.calls_cancelled,
               report_.calls_cancelled);
  return report_;
}

}  // namespace routeguide
