#ifndef ROUTEGUIDE_TESTS_TEST_SERVER_H_
#define ROUTEGUIDE_TESTS_TEST_SERVER_H_

#include <memory>

#include "catch2/catch.hpp"
#include "db_loader.h"
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

}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_TEST_SERVER_H_
