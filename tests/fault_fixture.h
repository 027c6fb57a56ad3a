// The server in-process for the fault tests, and what they check after each
// fault: calls back to the baseline, the server still serving.
#ifndef ROUTEGUIDE_TESTS_FAULT_FIXTURE_H_
#define ROUTEGUIDE_TESTS_FAULT_FIXTURE_H_

#include <signal.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "call_tags.h"
#include "catch2/catch.hpp"
#include "client_calls.h"
#include "client_queues.h"
#include "db_loader.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "route_guide.grpc.pb.h"
#include "route_guide_server.h"
#include "server_process.h"
#include "subprocess.h"
#include "test_server.h"
#include "test_util.h"

namespace routeguide {

struct Fixture {
  explicit Fixture(FeatureStoreOptions store_options = {}) {
    store = DefaultTestStore(store_options);
    ServerOptions options;
    options.address = "127.0.0.1:0";
    options.threads = 2;
    options.completion_queues = 2;
    options.calls_per_method_per_queue = 8;
    server = StartServerOrFail(options, store);
    baseline_objects = server->calls().objects();
    channel = grpc::CreateChannel(target(), grpc::InsecureChannelCredentials());
    stub = RouteGuide::NewStub(channel);
  }
  std::string target() const { return LocalTarget(server->port()); }

  // Waits until no call is in flight and only the pre-posted call objects
  // remain.
  bool BackToBaseline() const {
    return WaitFor(
        [&] {
          return server->calls().active() == 0 &&
                 server->calls().objects() == baseline_objects;
        },
        absl::Seconds(30), absl::Milliseconds(2));
  }
  bool StillServes() const {
    grpc::ClientContext context;
    SetDeadline(context, absl::Seconds(10));
    Feature feature;
    return stub->GetFeature(&context, MakePoint(409146138, -746188906), &feature).ok() &&
           !feature.name().empty();
  }

  std::shared_ptr<FeatureStore> store;
  std::unique_ptr<RouteGuideServer> server;
  int64_t baseline_objects = 0;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<RouteGuide::Stub> stub;
};

inline std::chrono::system_clock::time_point In(absl::Duration d) {
  return absl::ToChronoTime(absl::Now() + d);
}

}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_FAULT_FIXTURE_H_
