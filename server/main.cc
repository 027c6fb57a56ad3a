// routeguide-server: the RouteGuide service on gRPC's completion-queue API.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "db_loader.h"
#include "feature_store.h"
#include "flags.h"
#include "logging.h"
#include "route_guide_server.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, address, "[::]:50051",
          "HOST:PORT to listen on (port 0 picks a free port)");
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
ABSL_FLAG(size_t, max_notes_per_location, 100,
          "RouteChat: notes kept per location, oldest dropped first");
ABSL_FLAG(size_t, max_notes, 100000,
          "RouteChat: notes kept in all, oldest dropped first");
ABSL_FLAG(std::string, log_level, "info",
          "trace, debug, info, warn, error, critical or off");

namespace routeguide {
namespace {

constexpr char kUsage[] =
    "routeguide-server [flags]\n\n"
    "Serves the gRPC RouteGuide service (and grpc.health.v1 Check) until\n"
    "SIGINT or SIGTERM. Flag names take '-' or '_' alike.";

int Run(int argc, char** argv) {
  ParseFlagsOrExit(argc, argv, kUsage);

  auto level = ParseLogLevel(absl::GetFlag(FLAGS_log_level));
  if (!level.ok()) ExitWithUsageError(level.status().message());
  InitLogging(*level);

  ServerOptions options;
  options.address = absl::GetFlag(FLAGS_address);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  options.threads = absl::GetFlag(FLAGS_threads);
  if (options.threads == 0) options.threads = cores;
  options.completion_queues = absl::GetFlag(FLAGS_cqs);
  if (options.completion_queues == 0) options.completion_queues = options.threads;
  options.calls_per_method_per_queue = absl::GetFlag(FLAGS_calls_per_queue);
  options.grace = absl::GetFlag(FLAGS_grace);
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

  const std::string db_path = absl::GetFlag(FLAGS_db);
  auto features = db_path.empty()
                      ? DefaultFeatures()
                      : LoadFeatureDbFile(db_path);
  if (!features.ok()) ExitWithUsageError(features.status().message());
  auto store = std::make_shared<FeatureStore>(store_options);
  AddFeatures(*std::move(features), *store);

  // Signals go to the thread that waits for them below, not to pollers
  // that gRPC or we start: block them before any thread exists.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto server = RouteGuideServer::Start(options, store);
  if (!server.ok()) ExitWithUsageError(server.status().message());
  // Tests and scripts read the port from this line.
  spdlog::info(
      "RouteGuide server listening on {} (port {}): {} completion queues, {} "
      "threads, {} features from {}",
      options.address, (*server)->port(), options.completion_queues,
      options.threads, store->feature_count(),
      db_path.empty() ? "the built-in database" : db_path);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  spdlog::info("received {}", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  (*server)->Shutdown();
  server->reset();
  spdlog::info("stopped");
  return 0;
}

}  // namespace
}  // namespace routeguide

int main(int argc, char** argv) { return routeguide::Run(argc, argv); }
