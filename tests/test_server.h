#ifndef ROUTEGUIDE_TESTS_TEST_SERVER_H_
#define ROUTEGUIDE_TESTS_TEST_SERVER_H_

#include <memory>
#include <string>

#include "catch2/catch.hpp"
#include "db_loader.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "route_guide_server.h"

namespace routeguide {

// The real server on 127.0.0.1:0 with two queues and threads, serving
// `store` (the built-in 100 features when null).
inline std::unique_ptr<RouteGuideServer> StartTestServer(
    ServerOptions options = {}, std::shared_ptr<FeatureStore> store = nullptr) {
  if (store == nullptr) {
    store = std::make_shared<FeatureStore>();
    AddFeatures(*DefaultFeatures(), *store);
  }
  options.address = "127.0.0.1:0";
  options.threads = 2;
  options.completion_queues = 2;
  auto server = RouteGuideServer::Start(options, store);
  INFO(server.status().ToString());
  REQUIRE(server.ok());
  return *std::move(server);
}

// A channel to 127.0.0.1:`port` on a connection of its own whose HTTP/2
// flow-control window stays at its initial 64 KiB (no BDP probing grows
// it), so replies the client does not read soon hold the server back.
inline std::shared_ptr<grpc::Channel> SmallWindowChannel(int port) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials(), args);
}

}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_TEST_SERVER_H_
