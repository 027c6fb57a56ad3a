// routeguide-server: the RouteGuide service on gRPC's completion-queue API.
// main() is the start-up and shutdown sequence; the flags and their checks
// live in server_flags.cc.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <ctime>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "config.h"
#include "db_loader.h"
#include "feature_store.h"
#include "flags.h"
#include "logging.h"
#include "mutex_mode.h"
#include "process_limits.h"
#include "process_memory.h"
#include "route_guide_server.h"
#include "server_flags.h"
#include "spdlog/spdlog.h"
#if ROUTEGUIDE_WITH_METRICS
#include "metrics_exporter.h"
#endif

namespace routeguide {
namespace {

// Exit codes beside 0 and kExitUsage (2).
// A second SIGINT or SIGTERM cut the grace period short.
constexpr int kExitForcedStop = 1;
// gRPC's own (TLS) listener stopped accepting; a supervisor should start
// the server again.
constexpr int kExitListenerLost = 3;

constexpr char kUsage[] =
    "routeguide-server [flags]\n\n"
    "Serves the gRPC RouteGuide service (and grpc.health.v1 Check) until\n"
    "SIGINT or SIGTERM. Flag names take '-' or '_' alike.";

template <typename T>
T OrExit(absl::StatusOr<T> value) {
  if (!value.ok()) ExitWithUsageError(value.status().message());
  return *std::move(value);
}

void OrExit(const absl::Status& status) {
  if (!status.ok()) ExitWithUsageError(status.message());
}

// gRPC 1.51's listener logs this once when accept4 fails with anything but
// EAGAIN or ECONNABORTED (EMFILE: out of descriptors), and never accepts
// again (CVE-2023-4785). Plaintext listeners are our own and never stop;
// a TLS one is gRPC's, so the server drains and exits for a restart rather
// than run on deaf. Signalled to the main thread, which waits for signals.
void WatchForListenerDeath(absl::string_view message) {
  if (absl::StrContains(message, "Failed accept4")) kill(getpid(), SIGUSR2);
}

void SetUpLogging(spdlog::level::level_enum level) {
  InitLogging(level);
  RouteGrpcLogs(level);
  WatchGrpcErrors(WatchForListenerDeath);
  // A client or log reader that goes away must never kill the server.
  signal(SIGPIPE, SIG_IGN);
}

std::shared_ptr<FeatureStore> LoadFeaturesOrExit(const ServerConfig& config) {
  auto features = config.db_path.empty() ? DefaultFeatures()
                                         : LoadFeatureDbFile(config.db_path);
  auto store = std::make_shared<FeatureStore>(config.store);
  AddFeatures(OrExit(std::move(features)), *store);
  return store;
}

// Whether the listening address only takes connections from this host.
bool IsLoopback(absl::string_view address) {
  return absl::StartsWith(address, "127.") || absl::StartsWith(address, "[::1]") ||
         absl::StartsWith(address, "localhost:") || absl::StartsWith(address, "unix:") ||
         absl::StartsWith(address, "ipv4:127.") || absl::StartsWith(address, "ipv6:[::1]");
}

void WarnIfPlaintextOffHost(const ServerOptions& options) {
  if (options.credentials != nullptr || IsLoopback(options.address)) return;
  spdlog::warn(
      "serving {} without TLS: anyone who can reach it can call it and read "
      "the traffic (see --tls_cert)",
      options.address);
}

// The limits the queues and connections need.
void RaiseProcessLimitsOrExit(const ServerOptions& options) {
  const OpenFilesLimit files = RaiseOpenFilesLimit();
  OrExit(CheckThreadBudget(options.threads, options.completion_queues));
  LogOpenFilesLimit(files);
}

// Signals go to the thread that waits for them (main), not to pollers that
// gRPC or we start: blocked before any thread exists. SIGUSR1 asks for a
// status line (calls in flight, memory), for soak tests and operators;
// SIGUSR2 comes from WatchForListenerDeath; SIGHUP is taken so that it
// does not kill the server.
sigset_t BlockServerSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  for (int signal_number : {SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGHUP}) {
    sigaddset(&signals, signal_number);
  }
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

// Metrics start after the server, whose counters they read, and stop
// before it.
#if ROUTEGUIDE_WITH_METRICS
std::unique_ptr<MetricsExporter> StartMetricsOrExit(const std::string& address,
                                                    const RouteGuideServer& server,
                                                    const FeatureStore& store) {
  if (address.empty()) return nullptr;
  auto metrics = OrExit(MetricsExporter::Start(address, server, store));
  spdlog::info("metrics at http://{}/metrics (port {})", address, metrics->port());
  return metrics;
}
#else
std::unique_ptr<int> StartMetricsOrExit(const std::string& address,
                                        const RouteGuideServer& /*server*/,
                                        const FeatureStore& /*store*/) {
  if (!address.empty()) {
    ExitWithUsageError("this build has no metrics (prometheus-cpp was not found)");
  }
  return nullptr;
}
#endif

void LogStatus(const RouteGuideServer& server, const FeatureStore& store) {
  const CallRegistry& calls = server.calls();
  const AcceptorStats connections = server.acceptor_stats();
  const Http2GuardStats guard = server.guard_stats();
  spdlog::info(
      "status: {} calls in flight, {} call objects, {} accepted, {} "
      "cancelled, {} notes, RSS {} KiB, heap in use {} KiB, {} connections "
      "accepted, {} awaiting their preface, {} handshake timeouts, {} shed, "
      "{} guarded, {} streams open through the guard, {} reset by gRPC, "
      "{} bytes held by the guard, "
      "{} closed for rapid reset, {} closed for no SETTINGS ack, {} closed "
      "for too many streams before it, {} closed for an oversized message, "
      "{} closed for too many unfinished messages, guard spin: {} waits "
      "caught, {} us spun for nothing",
      calls.active(), calls.objects(), calls.accepted(), calls.cancelled(),
      store.note_count(), ResidentKiB(), HeapInUseBytes() / 1024,
      connections.accepted, connections.pending,
      connections.handshake_timeouts, connections.shed,
      guard.active, guard.open_streams, guard.server_resets, guard.held_bytes,
      guard.rapid_reset_closes, guard.settings_timeouts,
      guard.early_stream_closes, guard.oversized_message_closes,
      guard.unfinished_message_closes, guard.spin_hits, guard.spin_wasted_us);
}

// Serves until SIGINT, SIGTERM or SIGUSR2, which it returns; meanwhile
// trims the heap on the trimmer's ticks and answers SIGUSR1 and SIGHUP.
int ServeUntilStopSignal(const sigset_t& signals, const RouteGuideServer& server,
                         const FeatureStore& store, HeapTrimmer& trimmer) {
  const timespec tick = absl::ToTimespec(trimmer.tick_interval());
  for (;;) {
    const int signal_number = sigtimedwait(&signals, nullptr, &tick);
    if (signal_number < 0) {  // A tick (EAGAIN) or EINTR.
      if (errno == EAGAIN) trimmer.OnTick();
    } else if (signal_number == SIGHUP) {
      spdlog::info("received SIGHUP: not used yet (nothing to reload); carrying on");
    } else if (signal_number == SIGUSR1) {
      // Hand freed memory back first, so RSS shows what is in use rather
      // than what the allocator keeps for later.
      trimmer.TrimNow();
      LogStatus(server, store);
    } else {
      return signal_number;
    }
  }
}

// Logs why the server stops; returns the exit code that says so.
int ReportStopSignal(int signal_number, const RouteGuideServer& server,
                     const ServerOptions& options) {
  if (signal_number != SIGUSR2) {
    spdlog::info("received {}", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
    return 0;
  }
  spdlog::error(
      "gRPC's listener on {} (port {}) stopped accepting connections (gRPC 1.51 "
      "stops for good when accept fails, e.g. out of file descriptors: "
      "CVE-2023-4785); draining, then exiting with code {} for a "
      "supervisor to restart the server",
      options.address, server.port(), kExitListenerLost);
  return kExitListenerLost;
}

// Shuts the server down on a thread of its own, so that a second SIGINT or
// SIGTERM during the grace period can still end the process at once.
void ShutDownUnlessCutShort(const sigset_t& signals, RouteGuideServer& server) {
  std::atomic<bool> shut_down{false};
  std::thread stopper([&server, &shut_down] {
    server.Shutdown();
    shut_down.store(true, std::memory_order_release);
  });
  const timespec poll = absl::ToTimespec(absl::Milliseconds(20));
  while (!shut_down.load(std::memory_order_acquire)) {
    const int again = sigtimedwait(&signals, nullptr, &poll);
    if (again == SIGINT || again == SIGTERM) {
      spdlog::warn(
          "received a second {} during shutdown: cutting off the {} calls "
          "still in flight and exiting now (code {})",
          again == SIGINT ? "SIGINT" : "SIGTERM", server.calls().active(),
          kExitForcedStop);
      spdlog::shutdown();
      // Closing the process closes every connection: the calls left end
      // at once for their clients. Nothing else is worth waiting for.
      _exit(kExitForcedStop);
    }
    if (again == SIGHUP) spdlog::info("received SIGHUP during shutdown; ignored");
  }
  stopper.join();
}

int Run(int argc, char** argv) {
  DisableMutexDeadlockDetection();
  ParseFlagsOrExit(argc, argv, kUsage);
  ServerConfig config = OrExit(ServerConfigFromFlags(UsableCores()));
  SetUpLogging(config.log_level);
  OrExit(ReadServerCredentials(config.server));
  OrExit(ReadNotesStorePassword(config));
  // Before any warning: a bad database is the first thing to hear about.
  std::shared_ptr<FeatureStore> store = LoadFeaturesOrExit(config);
  WarnIfPlaintextOffHost(config.server);
  RaiseProcessLimitsOrExit(config.server);
  const sigset_t signals = BlockServerSignals();

  // After the signals are blocked: its thread must not take them.
  std::shared_ptr<RedisNotesStore> shared_notes;
  if (config.shared_notes.has_value()) {
    shared_notes = OrExit(RedisNotesStore::Start(*config.shared_notes));
  }
  auto started = RouteGuideServer::Start(config.server, store, shared_notes);
  if (!started.ok()) shared_notes.reset();  // Its thread ends before the exit.
  std::unique_ptr<RouteGuideServer> server = OrExit(std::move(started));
  // A database file's text, parse tree and encoding temporaries are gone:
  // give their pages back (about 500 MiB for a million features). The
  // built-in table is compiled in and leaves nothing worth a trim, whose
  // walk of every arena would only hold up the first calls.
  HeapTrimmer trimmer(config.memory_trim_interval);
  if (!config.db_path.empty()) trimmer.TrimNow();
  // Tests and scripts read the port from this line.
  spdlog::info(
      "RouteGuide server listening on {} (port {}): {} completion queues, {} "
      "threads, {} features from {}",
      config.server.address, server->port(), config.server.completion_queues,
      config.server.threads, store->feature_count(),
      config.db_path.empty() ? "the built-in database" : config.db_path);
  auto metrics = StartMetricsOrExit(config.metrics_address, *server, *store);

  const int stop_signal = ServeUntilStopSignal(signals, *server, *store, trimmer);
  const int exit_code = ReportStopSignal(stop_signal, *server, config.server);
  ShutDownUnlessCutShort(signals, *server);
  metrics.reset();
  server.reset();
  spdlog::info("stopped");
  return exit_code;
}

}  // namespace
}  // namespace routeguide

int main(int argc, char** argv) { return routeguide::Run(argc, argv); }
