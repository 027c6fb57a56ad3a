// Calls to a routeguide-server child process, for the process tests.
#ifndef ROUTEGUIDE_TESTS_SERVER_PROCESS_CALLS_H_
#define ROUTEGUIDE_TESTS_SERVER_PROCESS_CALLS_H_

#include <signal.h>
#include <stdlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "grpcpp/completion_queue.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "health.grpc.pb.h"
#include "route_guide.grpc.pb.h"
#include "server_process.h"
#include "subprocess.h"
#include "test_util.h"

namespace routeguide {

// Bounds each wait on the server: starting, logging, exiting. A healthy
// server needs a small fraction of it.
inline constexpr absl::Duration kProcessTimeout = absl::Seconds(20);
// Every RPC's deadline.
inline constexpr absl::Duration kRpcDeadline = absl::Seconds(10);

// Waits for the child to end and returns how.
inline testing::ExitStatus WaitForExit(testing::Subprocess& process) {
  auto exit = process.Wait(kProcessTimeout);
  INFO(exit.status().ToString());
  REQUIRE(exit.ok());
  return *exit;
}

inline std::unique_ptr<RouteGuide::Stub> NewStub(const std::string& target) {
  return RouteGuide::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
}

// Opens a RouteChat on `stub` and leaves it idle, known to be in flight on
// the server: a first note is written, then a second at the same point,
// whose reply (the first note) proves the server has the call.
inline std::unique_ptr<grpc::ClientReaderWriter<RouteNote, RouteNote>> OpenIdleChat(
    RouteGuide::Stub& stub, grpc::ClientContext& context) {
  auto stream = stub.RouteChat(&context);
  REQUIRE(stream->Write(MakeNote("first", 123456789, -123456789)));
  REQUIRE(stream->Write(MakeNote("second", 123456789, -123456789)));
  RouteNote reply;
  REQUIRE(stream->Read(&reply));
  CHECK(reply.message() == "first");
  return stream;
}

}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_SERVER_PROCESS_CALLS_H_
