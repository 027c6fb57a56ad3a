#include "baseline_server.h"

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "db_loader.h"
#include "flags.h"
#include "mutex_mode.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "logging.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, address, "127.0.0.1:0",
          "HOST:PORT to listen on (port 0 picks a free port)");
ABSL_FLAG(std::string, db, "",
          "Feature database, a JSON file in the tutorial's format; empty for "
          "the built-in 100 features of the tutorial");

namespace routeguide {
namespace bench {
namespace {

// How long calls in flight may take to finish once a stop signal came;
// then they are cancelled. Short: a benchmark's server has no one to drain
// for.
constexpr std::chrono::seconds kShutdownGrace(1);

// Our server's default --max_message_size, also gRPC's default.
constexpr int kMaxReceiveMessageBytes = 4 * 1024 * 1024;

}  // namespace

int RunBaselineServer(const BaselineConfig& config,
                      const ServiceFactory& make_service,
                      const AsyncHooks& hooks) {
  // As our server does, so gRPC's locks cost the same in every server.
  DisableMutexDeadlockDetection();
  // Signals go to the thread that waits for them below, not to threads
  // gRPC starts: block them before any thread exists.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  InitLogging(spdlog::level::info);

  auto features = config.db_path.empty() ? DefaultFeatures()
                                         : LoadFeatureDbFile(config.db_path);
  if (!features.ok()) ExitWithUsageError(features.status().message());
  auto store = std::make_shared<FeatureStore>();
  AddFeatures(*std::move(features), *store);

  std::unique_ptr<grpc::Service> service = make_service(store);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.address, grpc::InsecureServerCredentials(),
                           &port);
  builder.SetMaxReceiveMessageSize(kMaxReceiveMessageBytes);
  builder.RegisterService(service.get());
  if (hooks.configure) hooks.configure(builder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    if (server != nullptr) server->Shutdown();
    if (hooks.stopped) hooks.stopped();
    ExitWithUsageError(absl::StrCat("cannot listen on ", config.address));
  }
  if (hooks.started) hooks.started(*server);
  // Scripts and tests read the port from this line, as from our server's.
  spdlog::info("RouteGuide {} server listening on {} (port {}): {} features from {}",
               config.name, config.address, port, store->feature_count(),
               config.db_path.empty() ? "the built-in database" : config.db_path);

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  spdlog::info("received {}", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  if (hooks.stopped) hooks.stopped();
  server.reset();
  spdlog::info("stopped");
  return 0;
}

int BaselineMain(int argc, char** argv, const std::string& name,
                 const ServiceFactory& make_service, const AsyncHooks& hooks) {
  const std::string binary = absl::StrCat(
      absl::StrReplaceAll(name, {{" ", "-"}}), "-server");
  const std::string usage = absl::StrCat(
      binary, " [--address=HOST:PORT] [--db=FILE]\n\nA benchmark baseline: "
      "RouteGuide as a ", name, " server with gRPC's default settings, serving "
      "until SIGINT or SIGTERM.");
  ParseFlagsOrExit(argc, argv, usage);
  BaselineConfig config;
  config.name = name;
  config.address = absl::GetFlag(FLAGS_address);
  config.db_path = absl::GetFlag(FLAGS_db);
  return RunBaselineServer(config, make_service, hooks);
}

}  // namespace bench
}  // namespace routeguide
