// routeguide-server: the RouteGuide service on gRPC's completion-queue API.
#include <malloc.h>
#include <pthread.h>
#include <signal.h>

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "credentials.h"
#include "db_loader.h"
#include "feature_store.h"
#include "flags.h"
#include "logging.h"
#include "mutex_mode.h"
#include "process_limits.h"
#include "process_memory.h"
#include "route_guide_server.h"
#if ROUTEGUIDE_WITH_METRICS
#include "metrics_exporter.h"
#endif
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, address, "[::]:50051",
          "HOST:PORT, [V6]:PORT or unix:PATH to listen on (port 0 picks a "
          "free port)");
ABSL_FLAG(bool, reuseport, false,
          "Share the port with other servers started with --reuseport "
          "(SO_REUSEPORT: the kernel spreads new connections over them); "
          "without it a port in use stops start-up");
ABSL_FLAG(bool, http2_guard, true,
          "Plaintext: relay each connection through a guard that closes "
          "clients resetting streams faster than the server completes them "
          "(HTTP/2 rapid reset, which gRPC 1.51 cannot withstand) or not "
          "acknowledging SETTINGS within --handshake_timeout");
ABSL_FLAG(int64_t, max_client_resets, 1000,
          "HTTP/2 guard: close a connection whose client resets more than "
          "this many streams within a second, and more than the server "
          "completed on it in that second");
ABSL_FLAG(absl::Duration, handshake_timeout, absl::Seconds(10),
          "Close a connection that has not completed its handshake (TLS, and "
          "HTTP/2's client preface) within this long");
ABSL_FLAG(std::string, db, "",
          "Feature database, a JSON file in the tutorial's format; empty for "
          "the built-in 100 features of the tutorial");
ABSL_FLAG(int, threads, 0, "Poller threads in all; 0 for one per core");
ABSL_FLAG(int, cqs, 0,
          "Completion queues, each polled by threads/cqs of the threads; 0 "
          "for one per thread");
ABSL_FLAG(int, calls_per_queue, 32,
          "Requests kept posted per method per completion queue");
ABSL_FLAG(absl::Duration, grace, absl::Seconds(5),
          "On SIGINT/SIGTERM, how long calls in flight may take to finish "
          "before they are cancelled");
ABSL_FLAG(absl::Duration, health_drain, absl::Seconds(1),
          "On SIGINT/SIGTERM, how long health checks answer NOT_SERVING while "
          "calls are still accepted, before the server stops accepting (part "
          "of --grace)");
ABSL_FLAG(absl::Duration, stream_idle_timeout, absl::Minutes(10),
          "End a RecordRoute or RouteChat whose client sends nothing for this "
          "long with DEADLINE_EXCEEDED (inf: never)");
ABSL_FLAG(size_t, max_notes_per_location, 100,
          "RouteChat: notes kept per location, oldest dropped first");
ABSL_FLAG(size_t, max_notes, 100000,
          "RouteChat: notes kept in all, oldest dropped first");
ABSL_FLAG(std::string, log_level, "info",
          "trace, debug, info, warn, error, critical or off");
ABSL_FLAG(std::string, metrics_address, "",
          "Serve Prometheus metrics at http://HOST:PORT/metrics (off when "
          "empty; needs a build with prometheus-cpp)");
ABSL_FLAG(bool, reflection, true,
          "Serve gRPC server reflection, so generic tools (grpcurl, grpc_cli) "
          "can list and call the service");
ABSL_FLAG(std::string, tls_cert, "", "TLS: the server's certificate chain (PEM)");
ABSL_FLAG(std::string, tls_key, "", "TLS: the server's private key (PEM)");
ABSL_FLAG(std::string, tls_client_ca, "",
          "Mutual TLS: only clients with a certificate signed by this CA "
          "(PEM) get in");
ABSL_FLAG(std::string, auth_token_file, "",
          "When set, every RouteGuide call must carry 'authorization: Bearer "
          "<token>' with the token on this file's first line (health checks "
          "are exempt)");
ABSL_FLAG(std::string, max_message_size, "4MiB",
          "Largest message received; bigger ones get RESOURCE_EXHAUSTED");
ABSL_FLAG(std::string, max_metadata_size, "16KiB",
          "Largest request metadata (headers) a call may carry; a bigger one "
          "is refused with RESOURCE_EXHAUSTED");
ABSL_FLAG(std::string, max_note_size, "4KiB",
          "Longest RouteChat note; a longer one ends the call with "
          "INVALID_ARGUMENT");
ABSL_FLAG(size_t, max_queued_replies, 256,
          "RouteChat: replies one call may queue before it stops reading the "
          "client's notes until they are sent");
ABSL_FLAG(int, max_concurrent_streams, 1000,
          "Calls in flight per connection; more wait for a free stream");
ABSL_FLAG(absl::Duration, min_ping_interval, absl::Seconds(10),
          "Keepalive enforcement: pings without data closer than this are "
          "strikes, two strikes close the connection");
ABSL_FLAG(absl::Duration, max_connection_idle, absl::Minutes(30),
          "Close connections with no call for this long (inf: never)");
ABSL_FLAG(absl::Duration, max_connection_age, absl::InfiniteDuration(),
          "Close connections this old, gracefully (inf: never)");
ABSL_FLAG(absl::Duration, max_connection_age_grace, absl::InfiniteDuration(),
          "After --max_connection_age, how long calls still open may go on "
          "before the connection is closed under them (inf: until they end)");
ABSL_FLAG(std::string, max_memory, "1GiB",
          "gRPC resource quota for the server's buffers; near it, gRPC sheds "
          "load by closing connections (GOAWAY) and resetting busy streams "
          "with RESOURCE_EXHAUSTED; new connections are still accepted. At "
          "least 1MiB; 0 means no quota at all, which leaves the server's "
          "memory unbounded against hostile clients (unsafe)");
ABSL_FLAG(absl::Duration, memory_trim_interval, absl::Seconds(10),
          "How often to check whether 16MiB or more of the heap has been "
          "freed (a wave of calls or connections, a large message), and if "
          "so hand it back to the system (0: never; else at least 100ms)");

namespace routeguide {
namespace {

// Exit codes beside 0 and kExitUsage (2).
// A second SIGINT or SIGTERM cut the grace period short.
constexpr int kExitForcedStop = 1;
// gRPC's own (TLS) listener stopped accepting; a supervisor should start
// the server again.
constexpr int kExitListenerLost = 3;

// The smallest --max_memory that still serves: below about 256 KiB gRPC
// sends every new connection a GOAWAY.
constexpr int64_t kMinMemoryQuota = 1024 * 1024;

// gRPC 1.51's listener logs this once when accept4 fails with anything but
// EAGAIN or ECONNABORTED (EMFILE: out of descriptors), and never accepts
// again (CVE-2023-4785). Plaintext listeners are our own and never stop;
// a TLS one is gRPC's, so the server drains and exits for a restart rather
// than run on deaf. Signalled to the main thread, which waits for signals.
void WatchForListenerDeath(absl::string_view message) {
  if (absl::StrContains(message, "Failed accept4")) kill(getpid(), SIGUSR2);
}

// Whether the listening address only takes connections from this host.
bool IsLoopback(absl::string_view address) {
  return absl::StartsWith(address, "127.") || absl::StartsWith(address, "[::1]") ||
         absl::StartsWith(address, "localhost:") || absl::StartsWith(address, "unix:") ||
         absl::StartsWith(address, "ipv4:127.") || absl::StartsWith(address, "ipv6:[::1]");
}

constexpr char kUsage[] =
    "routeguide-server [flags]\n\n"
    "Serves the gRPC RouteGuide service (and grpc.health.v1 Check) until\n"
    "SIGINT or SIGTERM. Flag names take '-' or '_' alike.";

int Run(int argc, char** argv) {
  DisableMutexDeadlockDetection();
  ParseFlagsOrExit(argc, argv, kUsage);

  auto level = ParseLogLevel(absl::GetFlag(FLAGS_log_level));
  if (!level.ok()) ExitWithUsageError(level.status().message());
  InitLogging(*level);
  RouteGrpcLogs(*level);
  WatchGrpcErrors(WatchForListenerDeath);
  // A client or log reader that goes away must never kill the server.
  signal(SIGPIPE, SIG_IGN);

  ServerOptions options;
  options.address = absl::GetFlag(FLAGS_address);
  options.reuse_port = absl::GetFlag(FLAGS_reuseport);
  options.handshake_timeout = absl::GetFlag(FLAGS_handshake_timeout);
  options.http2_guard = absl::GetFlag(FLAGS_http2_guard);
  options.max_client_resets = absl::GetFlag(FLAGS_max_client_resets);
  if (options.max_client_resets < 1) {
    ExitWithUsageError("--max_client_resets must be at least 1");
  }
  if (options.handshake_timeout <= absl::ZeroDuration()) {
    ExitWithUsageError("--handshake_timeout must be positive");
  }
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  options.threads = absl::GetFlag(FLAGS_threads);
  if (options.threads == 0) options.threads = cores;
  options.completion_queues = absl::GetFlag(FLAGS_cqs);
  if (options.completion_queues == 0) options.completion_queues = options.threads;
  options.calls_per_method_per_queue = absl::GetFlag(FLAGS_calls_per_queue);
  options.grace = absl::GetFlag(FLAGS_grace);
  options.reflection = absl::GetFlag(FLAGS_reflection);
  options.health_drain = absl::GetFlag(FLAGS_health_drain);
  options.stream_idle_timeout = absl::GetFlag(FLAGS_stream_idle_timeout);
  if (options.stream_idle_timeout <= absl::ZeroDuration()) {
    ExitWithUsageError("--stream_idle_timeout must be positive");
  }
  if (options.health_drain < absl::ZeroDuration()) {
    ExitWithUsageError("--health_drain must not be negative");
  }
  if (options.threads < 0 || options.completion_queues < 0 ||
      options.completion_queues > options.threads) {
    ExitWithUsageError(absl::StrCat(
        "--cqs (", options.completion_queues,
        ") must be between 1 and --threads (", options.threads, ")"));
  }
  if (options.calls_per_method_per_queue < 1) {
    ExitWithUsageError("--calls_per_queue must be at least 1");
  }
  if (options.grace < absl::ZeroDuration()) {
    ExitWithUsageError("--grace must not be negative");
  }

  FeatureStoreOptions store_options;
  store_options.max_notes_per_location =
      absl::GetFlag(FLAGS_max_notes_per_location);
  store_options.max_notes = absl::GetFlag(FLAGS_max_notes);
  if (store_options.max_notes_per_location < 1 || store_options.max_notes < 1) {
    ExitWithUsageError(
        "--max_notes_per_location and --max_notes must be at least 1");
  }

  const auto size_flag = [](const char* name, const std::string& text) {
    auto bytes = ParseByteSize(text);
    if (!bytes.ok()) {
      ExitWithUsageError(absl::StrCat("--", name, ": ", bytes.status().message()));
    }
    return *bytes;
  };
  const int64_t max_message = size_flag("max_message_size", absl::GetFlag(FLAGS_max_message_size));
  if (max_message < 1 || max_message > 4 * 1024 * 1024) {
    ExitWithUsageError("--max_message_size must be 1 byte to 4MiB");
  }
  options.max_message_bytes = static_cast<int>(max_message);
  const int64_t max_metadata =
      size_flag("max_metadata_size", absl::GetFlag(FLAGS_max_metadata_size));
  if (max_metadata < 1024 || max_metadata > 1024 * 1024) {
    ExitWithUsageError("--max_metadata_size must be 1KiB to 1MiB");
  }
  options.max_metadata_bytes = static_cast<int>(max_metadata);
  const int64_t max_note = size_flag("max_note_size", absl::GetFlag(FLAGS_max_note_size));
  if (max_note < 1 || max_note > max_message) {
    ExitWithUsageError("--max_note_size must be 1 byte to --max_message_size");
  }
  options.max_note_bytes = static_cast<size_t>(max_note);
  options.max_memory_bytes = size_flag("max_memory", absl::GetFlag(FLAGS_max_memory));
  if (options.max_memory_bytes != 0 && options.max_memory_bytes < kMinMemoryQuota) {
    ExitWithUsageError(
        "--max_memory must be at least 1MiB (below that gRPC refuses every "
        "connection), or 0 for no quota");
  }
  options.max_concurrent_streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  options.max_queued_replies = absl::GetFlag(FLAGS_max_queued_replies);
  if (options.max_queued_replies < 1) {
    ExitWithUsageError("--max_queued_replies must be at least 1");
  }
  if (options.max_concurrent_streams < 1) {
    ExitWithUsageError("--max_concurrent_streams must be at least 1");
  }
  options.min_ping_interval = absl::GetFlag(FLAGS_min_ping_interval);
  options.max_connection_idle = absl::GetFlag(FLAGS_max_connection_idle);
  options.max_connection_age = absl::GetFlag(FLAGS_max_connection_age);
  options.max_connection_age_grace = absl::GetFlag(FLAGS_max_connection_age_grace);
  if (options.min_ping_interval < absl::ZeroDuration() ||
      options.max_connection_idle <= absl::ZeroDuration() ||
      options.max_connection_age <= absl::ZeroDuration() ||
      options.max_connection_age_grace < absl::ZeroDuration()) {
    ExitWithUsageError(
        "--min_ping_interval and --max_connection_age_grace must be >= 0, "
        "--max_connection_idle and --max_connection_age > 0");
  }

  const absl::Duration trim_interval = absl::GetFlag(FLAGS_memory_trim_interval);
  if (trim_interval != absl::ZeroDuration() &&
      trim_interval < absl::Milliseconds(100)) {
    ExitWithUsageError("--memory_trim_interval must be 0 (never) or at least 100ms");
  }

  const std::string tls_cert = absl::GetFlag(FLAGS_tls_cert);
  const std::string tls_key = absl::GetFlag(FLAGS_tls_key);
  const std::string tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  if (!tls_cert.empty() || !tls_key.empty() || !tls_client_ca.empty()) {
    auto credentials = ServerTls(tls_cert, tls_key, tls_client_ca);
    if (!credentials.ok()) ExitWithUsageError(credentials.status().message());
    options.credentials = *credentials;
  } else if (!IsLoopback(options.address)) {
    spdlog::warn(
        "serving {} without TLS: anyone who can reach it can call it and read "
        "the traffic (see --tls_cert)",
        options.address);
  }
  if (const std::string path = absl::GetFlag(FLAGS_auth_token_file); !path.empty()) {
    auto token = ReadTokenFile(path);
    if (!token.ok()) ExitWithUsageError(token.status().message());
    options.auth_token = *token;
  }

  const std::string db_path = absl::GetFlag(FLAGS_db);
  auto features = db_path.empty()
                      ? DefaultFeatures()
                      : LoadFeatureDbFile(db_path);
  if (!features.ok()) ExitWithUsageError(features.status().message());
  auto store = std::make_shared<FeatureStore>(store_options);
  AddFeatures(*std::move(features), *store);

  // Once the flags and the database are good: the limits the queues and
  // connections need.
  const OpenFilesLimit files = RaiseOpenFilesLimit();
  if (absl::Status budget = CheckThreadBudget(options.threads, options.completion_queues);
      !budget.ok()) {
    ExitWithUsageError(budget.message());
  }
  LogOpenFilesLimit(files);

  // Signals go to the thread that waits for them below, not to pollers
  // that gRPC or we start: block them before any thread exists.
  // SIGUSR1 asks for a status line (calls in flight, memory), for soak
  // tests and operators; SIGUSR2 comes from WatchForListenerDeath; SIGHUP
  // is taken so that it does not kill the server.
  sigset_t signals;
  sigemptyset(&signals);
  for (int signal_number : {SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGHUP}) {
    sigaddset(&signals, signal_number);
  }
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = RouteGuideServer::Start(options, store);
  if (!server.ok()) ExitWithUsageError(server.status().message());
  // The database's text, parse tree and encoding temporaries are gone:
  // give their pages back (about 500 MiB for a million features).
  malloc_trim(0);
  // Tests and scripts read the port from this line.
  spdlog::info(
      "RouteGuide server listening on {} (port {}): {} completion queues, {} "
      "threads, {} features from {}",
      options.address, (*server)->port(), options.completion_queues,
      options.threads, store->feature_count(),
      db_path.empty() ? "the built-in database" : db_path);

  // Metrics start after the server, whose counters they read, and stop
  // before it.
#if ROUTEGUIDE_WITH_METRICS
  std::unique_ptr<MetricsExporter> metrics;
  if (const std::string address = absl::GetFlag(FLAGS_metrics_address); !address.empty()) {
    auto exporter = MetricsExporter::Start(address, **server, *store);
    if (!exporter.ok()) ExitWithUsageError(exporter.status().message());
    metrics = *std::move(exporter);
    spdlog::info("metrics at http://{}/metrics (port {})", address, metrics->port());
  }
#else
  if (!absl::GetFlag(FLAGS_metrics_address).empty()) {
    ExitWithUsageError("this build has no metrics (prometheus-cpp was not found)");
  }
#endif

  const timespec tick = absl::ToTimespec(
      trim_interval > absl::ZeroDuration() ? trim_interval : absl::Hours(1));
  int signal_number = 0;
  HeapTrimmer trimmer;
  for (;;) {
    signal_number = sigtimedwait(&signals, nullptr, &tick);
    if (signal_number < 0) {  // A tick (EAGAIN) or EINTR.
      if (errno != EAGAIN || trim_interval == absl::ZeroDuration()) continue;
      trimmer.MaybeTrim();
      continue;
    }
    if (signal_number == SIGHUP) {
      spdlog::info("received SIGHUP: not used yet (nothing to reload); carrying on");
      continue;
    }
    if (signal_number != SIGUSR1) break;
    // Hand freed memory back first, so RSS shows what is in use rather
    // than what the allocator keeps for later.
    malloc_trim(0);
    const CallRegistry& calls = (*server)->calls();
    const AcceptorStats connections = (*server)->acceptor_stats();
    const Http2GuardStats guard = (*server)->guard_stats();
    spdlog::info(
        "status: {} calls in flight, {} call objects, {} accepted, {} "
        "cancelled, {} notes, RSS {} KiB, {} connections accepted, {} "
        "awaiting their preface, {} handshake timeouts, {} shed, {} guarded, "
        "{} closed for rapid reset, {} closed for no SETTINGS ack, {} closed "
        "for too many streams before it, {} closed for an oversized message",
        calls.active(), calls.objects(), calls.accepted(), calls.cancelled(),
        store->note_count(), ResidentKiB(), connections.accepted,
        connections.pending, connections.handshake_timeouts, connections.shed,
        guard.active, guard.rapid_reset_closes, guard.settings_timeouts,
        guard.early_stream_closes, guard.oversized_message_closes);
  }
  int exit_code = 0;
  if (signal_number == SIGUSR2) {
    spdlog::error(
        "gRPC's listener on {} (port {}) stopped accepting connections (gRPC 1.51 "
        "stops for good when accept fails, e.g. out of file descriptors: "
        "CVE-2023-4785); draining, then exiting with code {} for a "
        "supervisor to restart the server",
        options.address, (*server)->port(), kExitListenerLost);
    exit_code = kExitListenerLost;
  } else {
    spdlog::info("received {}", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  }
  // Shutdown runs on a thread of its own, so that a second SIGINT or
  // SIGTERM during the grace period can still end the process at once.
  std::atomic<bool> shut_down{false};
  std::thread stopper([&server, &shut_down] {
    (*server)->Shutdown();
    shut_down.store(true, std::memory_order_release);
  });
  const timespec poll = absl::ToTimespec(absl::Milliseconds(20));
  while (!shut_down.load(std::memory_order_acquire)) {
    const int again = sigtimedwait(&signals, nullptr, &poll);
    if (again == SIGINT || again == SIGTERM) {
      spdlog::warn(
          "received a second {} during shutdown: cutting off the {} calls "
          "still in flight and exiting now (code {})",
          again == SIGINT ? "SIGINT" : "SIGTERM", (*server)->calls().active(),
          kExitForcedStop);
      spdlog::shutdown();
      // Closing the process closes every connection: the calls left end
      // at once for their clients. Nothing else is worth waiting for.
      _exit(kExitForcedStop);
    }
    if (again == SIGHUP) spdlog::info("received SIGHUP during shutdown; ignored");
  }
  stopper.join();
#if ROUTEGUIDE_WITH_METRICS
  metrics.reset();
#endif
  server->reset();
  spdlog::info("stopped");
  return exit_code;
}

}  // namespace
}  // namespace routeguide

int main(int argc, char** argv) { return routeguide::Run(argc, argv); }
