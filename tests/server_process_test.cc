// The routeguide-server binary as a user runs it: a child process on
// 127.0.0.1:0 whose port is read from its log, called over real channels,
// stopped by signals; and refusing bad flags and databases.
// (Shutdown under load: server_process_shutdown_test.cc.)

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
#include "server_process_calls.h"
#include "subprocess.h"
#include "test_util.h"

namespace routeguide {
namespace {


using testing::ServerPath;
using testing::ServerProcess;
using testing::StartServerProcess;
using testing::Subprocess;
using testing::kListeningLine;

TEST_CASE("The server binary serves calls and exits 0 after SIGTERM or SIGINT",
          "[process]") {
  const int stop_signal = GENERATE(SIGTERM, SIGINT);
  const std::string signal_name = stop_signal == SIGTERM ? "SIGTERM" : "SIGINT";
  CAPTURE(signal_name);
  // A grace longer than the wait below: the server must not wait it out
  // when nothing is in flight.
  ServerProcess server = StartServerProcess({"--grace=60s"});
  // Left open across the signal, idle: the server must not wait for it to
  // close (a sync channel reads its socket only when gRPC's backup poller
  // runs, every 5 s, so it would hold a server that waits for connections).
  auto channel = grpc::CreateChannel(server.target(), grpc::InsecureChannelCredentials());
  {
    auto stub = RouteGuide::NewStub(channel);
    grpc::ClientContext context;
    SetDeadline(context, kRpcDeadline);
    Point point;
    point.set_latitude(409146138);
    point.set_longitude(-746188906);
    Feature feature;
    const grpc::Status status = stub->GetFeature(&context, point, &feature);
    INFO(status.error_message());
    REQUIRE(status.ok());
    CHECK(feature.name() ==
          "Berkshire Valley Management Area Trail, Jefferson, NJ, USA");

    auto health = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext health_context;
    SetDeadline(health_context, kRpcDeadline);
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    const grpc::Status health_status =
        health->Check(&health_context, request, &response);
    INFO(health_status.error_message());
    REQUIRE(health_status.ok());
    CHECK(response.status() == grpc::health::v1::HealthCheckResponse::SERVING);
  }

  const absl::Time signalled = absl::Now();
  REQUIRE(server.process->Signal(stop_signal).ok());
  // The last line is the last thing it does: the process is gone at once.
  auto stopped = server.process->WaitForStderrLineContaining(
      "] stopped", absl::Now() + absl::Seconds(30));
  REQUIRE(stopped.ok());
  const absl::Time stopped_at = absl::Now();
  const testing::ExitStatus exit = WaitForExit(*server.process);
  const absl::Duration linger = absl::Now() - stopped_at;
  const std::string& log = server.process->stderr_text();
  INFO("server stderr:\n" << log << "\nfrom the signal to 'stopped' "
                          << (stopped_at - signalled) << ", then to exit " << linger);
  CHECK(exit.Exited(0));
  // The default 1 s health drain, then no wait for the idle connection.
  CHECK(stopped_at - signalled < absl::Seconds(4));
  // (Under AddressSanitizer the leak check runs after "stopped".)
  CHECK(linger < kSanitizerSlowdown * absl::Milliseconds(500));
  CHECK(absl::StrContains(log, "received " + signal_name));
  CHECK(absl::StrContains(log, "drained"));
}

TEST_CASE(
    "On SIGTERM the server ends an idle RouteChat with UNAVAILABLE before the "
    "grace period runs out, and exits 0",
    "[process]") {
  const std::string drain = GENERATE(std::string("0s"), std::string("200ms"));
  ServerProcess server =
      StartServerProcess({"--grace=1s", "--health_drain=" + drain});
  grpc::Status status;
  {
    auto stub = NewStub(server.target());
    grpc::ClientContext context;
    SetDeadline(context, kRpcDeadline);
    auto stream = OpenIdleChat(*stub, context);

    REQUIRE(server.process->Signal(SIGTERM).ok());
    // The server ends the call with a status; Finish must not wait for the
    // deadline.
    status = stream->Finish();
  }  // The channel closes (see the first test case for why it matters).
  CAPTURE(status.error_code(), status.error_message());
  CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(absl::StrContains(status.error_message(), "shutting down"));

  const testing::ExitStatus exit = WaitForExit(*server.process);
  const std::string& log = server.process->stderr_text();
  INFO("server stderr:\n" << log);
  CHECK(exit.Exited(0));
  CHECK(absl::StrContains(log, "shutting down: 1 calls in flight"));
  CHECK(absl::StrContains(log, "0 cancelled"));
}

TEST_CASE(
    "On SIGTERM the server lets a RouteChat that ends within the grace "
    "period finish OK, then exits 0 without waiting out the grace",
    "[process]") {
  ServerProcess server = StartServerProcess({"--grace=30s"});
  grpc::Status status;
  {
    auto stub = NewStub(server.target());
    grpc::ClientContext context;
    SetDeadline(context, kRpcDeadline);
    auto stream = OpenIdleChat(*stub, context);

    REQUIRE(server.process->Signal(SIGTERM).ok());
    // Finish the call only once the server is shutting down.
    auto shutting_down = server.process->WaitForStderrLineContaining(
        "shutting down", absl::Now() + kProcessTimeout);
    INFO(shutting_down.status().ToString());
    REQUIRE(shutting_down.ok());
    CHECK(absl::StrContains(*shutting_down, "1 calls in flight"));

    CHECK(stream->WritesDone());
    status = stream->Finish();
  }  // The channel closes (see the first test case for why it matters).
  CAPTURE(status.error_code(), status.error_message());
  CHECK(status.ok());

  // Well within the 30 s grace: the server stops once the call is done.
  const testing::ExitStatus exit = WaitForExit(*server.process);
  const std::string& log = server.process->stderr_text();
  INFO("server stderr:\n" << log);
  CHECK(exit.Exited(0));
  CHECK(absl::StrContains(log, "drained 1 calls (1 finished, 0 cancelled)"));
}

// A directory made for one test and removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string name =
        absl::StrCat(base != nullptr && *base != '\0' ? base : "/tmp",
                     "/routeguide_server_process_test.XXXXXX");
    REQUIRE(mkdtemp(name.data()) != nullptr);
    path_ = name;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // A path inside the directory.
  std::string PathOf(const std::string& name) const {
    return (path_ / name).string();
  }
  // Writes `contents` to a file in the directory; returns its path.
  std::string Write(const std::string& name, const std::string& contents) {
    const std::string file = PathOf(name);
    std::ofstream out(file, std::ios::binary);
    out << contents;
    out.close();
    REQUIRE(out.good());
    return file;
  }

 private:
  std::filesystem::path path_;
};

TEST_CASE("The server binary exits 2 with a clear message on bad input",
          "[process]") {
  TempDir dir;
  std::vector<std::string> flags;
  std::vector<std::string> mentions;  // What the message must name.

  SECTION("a --db file that does not exist") {
    const std::string db = dir.PathOf("missing.json");
    flags = {"--db=" + db};
    mentions = {db};
  }
  SECTION("a --db file that is not JSON") {
    const std::string db = dir.Write("broken.json",
                                     "[\n  {\"location\": {\"latitude\": 1, "
                                     "\"longitude\": 2}},\n  oops\n]\n");
    flags = {"--db=" + db};
    mentions = {db, "line"};
  }
  SECTION("a --db file with a value of the wrong type") {
    const std::string db = dir.Write(
        "wrong_type.json",
        "[{\"location\": {\"latitude\": \"north\", \"longitude\": 2}, "
        "\"name\": \"x\"}]\n");
    flags = {"--db=" + db};
    mentions = {db, "[0].location"};
  }
  SECTION("a --threads value that is not a number") {
    flags = {"--threads=abc"};
    mentions = {"threads", "abc"};
  }
  SECTION("an unknown flag") {
    flags = {"--bogus"};
    mentions = {"bogus"};
  }
  SECTION("more completion queues than threads") {
    flags = {"--cqs=3", "--threads=2"};
    mentions = {"cqs"};
  }
  SECTION("a memory quota too small to serve") {
    flags = {"--max_memory=1"};
    mentions = {"max_memory", "1MiB"};
  }
  SECTION("a note size of zero") {
    flags = {"--max_note_size=0"};
    mentions = {"max_note_size"};
  }
  SECTION("more completion queues than the open-files limit allows") {
    flags = {"--threads=30000", "--cqs=30000"};
    mentions = {"open files limit"};
  }
  SECTION("an unknown log level") {
    flags = {"--log_level=loud"};
    mentions = {"loud"};
  }

  std::vector<std::string> argv = {ServerPath(), "--address=127.0.0.1:0"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  CAPTURE(absl::StrJoin(argv, " "));
  auto run = testing::Run(argv, kProcessTimeout);
  INFO(run.status().ToString());
  REQUIRE(run.ok());
  INFO("server stderr:\n" << run->stderr_text);
  CHECK(run->exit.Exited(2));
  CHECK(absl::StartsWith(run->stderr_text, "routeguide-server: error: "));
  for (const std::string& text : mentions) {
    CHECK(absl::StrContains(run->stderr_text, text));
  }
  CHECK_FALSE(absl::StrContains(run->stderr_text, kListeningLine));
}

}  // namespace
}  // namespace routeguide
