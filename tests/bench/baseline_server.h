#ifndef ROUTEGUIDE_TESTS_BENCH_BASELINE_SERVER_H_
#define ROUTEGUIDE_TESTS_BENCH_BASELINE_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "feature_store.h"
#include "grpcpp/impl/service_type.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"

namespace routeguide {
namespace bench {

// The longest RouteChat note the baselines take, as our server's default
// --max_note_size: a longer one ends the call with INVALID_ARGUMENT.
inline constexpr size_t kMaxNoteBytes = 4 * 1024;

// What a baseline binary's flags say.
struct BaselineConfig {
  // Short name for the log line, e.g. "sync baseline".
  std::string name;
  // HOST:PORT; port 0 picks a free port.
  std::string address;
  // Feature database file; empty for the built-in DefaultFeatures().
  std::string db_path;
};

// Makes the service on the store (loaded before it is called).
using ServiceFactory =
    std::function<std::unique_ptr<grpc::Service>(std::shared_ptr<FeatureStore>)>;

// What a baseline on the completion-queue API adds around the server's
// life; the sync and callback baselines leave them empty.
struct AsyncHooks {
  // Before BuildAndStart, e.g. to add completion queues.
  std::function<void(grpc::ServerBuilder&)> configure;
  // Once the server has started, e.g. to post requests and start pollers.
  std::function<void(grpc::Server&)> started;
  // After Server::Shutdown, before the server is destroyed: shut the
  // queues down, drain them and join the pollers.
  std::function<void()> stopped;
};

// The part both baseline servers share, so that they differ only in how
// their service is written: turns absl::Mutex deadlock detection off (as
// our binaries do, see common/mutex_mode.h), blocks SIGINT and SIGTERM before any thread
// exists, loads the features into a FeatureStore with our server's default
// options, builds a server on `config.address` with `make_service`'s service
// and gRPC's default settings (max receive message 4 MiB, as ours), logs
// "... listening on ADDRESS (port N) ..." to stderr, waits for SIGINT or
// SIGTERM, shuts down with a short deadline and returns the exit code (0).
// Bad flags or databases and an unusable address exit with kExitUsage.
int RunBaselineServer(const BaselineConfig& config,
                      const ServiceFactory& make_service,
                      const AsyncHooks& hooks = {});

// A baseline binary's main: parses --address (default 127.0.0.1:0) and
// --db (bad flags exit with kExitUsage) and runs RunBaselineServer with
// `make_service`. `name` ("sync baseline") goes into the usage text and the
// log.
int BaselineMain(int argc, char** argv, const std::string& name,
                 const ServiceFactory& make_service,
                 const AsyncHooks& hooks = {});

}  // namespace bench
}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_BENCH_BASELINE_SERVER_H_
