#ifndef ROUTEGUIDE_TESTS_TEST_SERVER_H_
#define ROUTEGUIDE_TESTS_TEST_SERVER_H_

// The real server in-process on 127.0.0.1:0, and channels to it. (As a
// child process: server_process.h.)

#include <memory>
#include <string>

#include "catch2/catch.hpp"
#include "db_loader.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "route_guide.grpc.pb.h"
#include "route_guide_server.h"
#include "test_util.h"

namespace routeguide {

// A store holding the built-in 100 features.
inline std::shared_ptr<FeatureStore> DefaultTestStore(
    FeatureStoreOptions store_options = {}) {
  auto store = std::make_shared<FeatureStore>(store_options);
  AddFeatures(*DefaultFeatures(), *store);
  return store;
}

// Starts the server with `options` as they are; fails the test if it
// cannot.
inline std::unique_ptr<RouteGuideServer> StartServerOrFail(
    const ServerOptions& options, std::shared_ptr<FeatureStore> store) {
  auto server = RouteGuideServer::Start(options, std::move(store));
  INFO(server.status().ToString());
  REQUIRE(server.ok());
  return *std::move(server);
}

// The real server on 127.0.0.1:0 with two queues and threads, serving
// `store` (the built-in 100 features when null).
inline std::unique_ptr<RouteGuideServer> StartTestServer(
    ServerOptions options = {}, std::shared_ptr<FeatureStore> store = nullptr) {
  if (store == nullptr) store = DefaultTestStore();
  options.address = "127.0.0.1:0";
  options.threads = 2;
  options.completion_queues = 2;
  return StartServerOrFail(options, std::move(store));
}

inline std::string LocalTarget(int port) {
  return "127.0.0.1:" + std::to_string(port);
}

// A channel to 127.0.0.1:`port` on a connection of its own.
inline std::shared_ptr<grpc::Channel> OwnChannel(
    int port, std::shared_ptr<grpc::ChannelCredentials> credentials =
                  grpc::InsecureChannelCredentials()) {
  grpc::ChannelArguments args;
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  return grpc::CreateCustomChannel(LocalTarget(port), credentials, args);
}

// A channel to 127.0.0.1:`port` on a connection of its own whose HTTP/2
// flow-control window stays at its initial 64 KiB (no BDP probing grows
// it), so replies the client does not read soon hold the server back.
inline std::shared_ptr<grpc::Channel> SmallWindowChannel(int port) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  return grpc::CreateCustomChannel(LocalTarget(port),
                                   grpc::InsecureChannelCredentials(), args);
}

// A server on its own store (the built-in features), and a stub bound to
// it on a connection of its own.
struct TestServer {
  explicit TestServer(ServerOptions options = DefaultOptions(),
                      FeatureStoreOptions store_options = {})
      : store(DefaultTestStore(store_options)),
        server(StartServerOrFail(options, store)),
        channel(NewChannel()),
        stub(RouteGuide::NewStub(channel)) {}

  // 127.0.0.1:0, more threads than queues, a few calls pre-posted.
  static ServerOptions DefaultOptions() {
    ServerOptions options;
    options.address = "127.0.0.1:0";
    options.threads = 4;
    options.completion_queues = 2;
    options.calls_per_method_per_queue = 4;
    options.health_drain = absl::ZeroDuration();  // No load balancer to tell.
    return options;
  }

  std::string target() const { return LocalTarget(server->port()); }
  // A channel of its own: a separate HTTP/2 connection.
  std::shared_ptr<grpc::Channel> NewChannel() const {
    return OwnChannel(server->port());
  }

  std::shared_ptr<FeatureStore> store;
  std::unique_ptr<RouteGuideServer> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<RouteGuide::Stub> stub;
};

// Calls in flight drop back to zero once the server has freed every call.
inline bool NoCallsInFlight(const RouteGuideServer& server) {
  return WaitFor([&] { return server.calls().active() == 0; });
}
inline bool NoCallsInFlight(const TestServer& test) {
  return NoCallsInFlight(*test.server);
}

}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_TEST_SERVER_H_
