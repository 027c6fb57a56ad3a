// routeguide-client load as a user runs it: exit codes, reports on disk,
// Ctrl-C.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "catch2/catch.hpp"
#include "client_process.h"
#include "db_loader.h"
#include "hostile_servers.h"
#include "nlohmann/json.hpp"
#include "route_guide_server.h"
#include "test_server.h"
#include "subprocess.h"

namespace routeguide {
namespace {

constexpr absl::Duration kClientTimeout = absl::Seconds(60);

std::unique_ptr<RouteGuideServer> StartServer() { return StartTestServer(); }

testing::RunResult RunLoad(std::vector<std::string> flags) {
  flags.insert(flags.begin(), "load");
  return testing::RunClient(flags, kClientTimeout);
}

TEST_CASE("A load run prints a table, writes JSON and HTML, exits 0",
          "[load][binary]") {
  auto server = StartServer();
  testing::ScratchDir dir;
  const auto result = RunLoad({
      absl::StrCat("--target=127.0.0.1:", server->port()), "--requests=600",
      "--concurrency=8", "--threads=2", "--metadata=x-test:1",
      "--metadata=x-other:2", "--json=" + dir.path() + "/report.json",
      "--html=" + dir.path() + "/report.html"});
  INFO(result.stderr_text);
  CHECK(result.exit.Exited(0));
  for (const char* row : {"get ", "list ", "record ", "chat ", "all ", "p99.9"}) {
    CHECK_THAT(result.stdout_text, Catch::Contains(row));
  }
  // Not a terminal: no progress line.
  CHECK_THAT(result.stderr_text, !Catch::Contains("calls/s"));
  const auto json = nlohmann::json::parse(testing::ReadWholeFile(dir.path() + "/report.json"));
  CHECK(json["total"]["ok"] == 600);
  CHECK(json["settings"]["metadata"].size() == 2);
  CHECK_THAT(testing::ReadWholeFile(dir.path() + "/report.html"), Catch::Contains("<svg"));
}

TEST_CASE("Load exits 2 for bad flags and unreachable targets",
          "[load][binary]") {
  SECTION("bad flags") {
    const std::vector<std::string> bad = GENERATE(
        std::vector<std::string>{"--mix=get:x"},
        std::vector<std::string>{"--mix=teleport:1"},
        std::vector<std::string>{"--concurrency=0"},
        std::vector<std::string>{"--arrival=bursty", "--rps=10"},
        std::vector<std::string>{"--metadata=novalue"},
        std::vector<std::string>{"--threads=abc"},
        std::vector<std::string>{"--hit_ratio=2"});
    const auto result = RunLoad(bad);
    INFO(absl::StrJoin(bad, " ") << "\n" << result.stderr_text);
    CHECK(result.exit.Exited(2));
    CHECK_THAT(result.stderr_text, Catch::Contains("error"));
  }
  SECTION("a --metadata value gRPC cannot send") {
    // Used to abort inside gRPC (SIGABRT, exit 134).
    for (const std::string value : {"x-a:\xc3\xa9", "x-a:one\ntwo", "x-a:one\rtwo"}) {
      const auto result = RunLoad({"--metadata=" + value, "--requests=1"});
      INFO(value << "\n" << result.exit.ToString() << "\n" << result.stderr_text);
      CHECK(result.exit.Exited(2));
      CHECK_THAT(result.stderr_text, Catch::Contains("--metadata"));
      CHECK_THAT(result.stderr_text, Catch::Contains("x-a"));
      CHECK_THAT(result.stderr_text, Catch::Contains("printable ASCII"));
    }
  }
  SECTION("a closed port") {
    int port = 0;
    {
      auto server = StartServer();
      port = server->port();
    }
    const std::string target = absl::StrCat("127.0.0.1:", port);
    const auto result =
        RunLoad({"--target=" + target, "--connect_timeout=1s", "--duration=5s"});
    CHECK(result.exit.Exited(2));
    CHECK_THAT(result.stderr_text, Catch::Contains(target));
  }
}

TEST_CASE("Load exits 2 on a server whose first ListFeatures never ends",
          "[load][binary]") {
  SECTION("the server never answers: --learn_deadline") {
    testing::HostileServer server(testing::ListBehavior::kSilent);
    const absl::Time start = absl::Now();
    auto result = testing::Run({testing::ClientBinary(), "load", "--target=" + server.address(),
                                "--learn_deadline=2s", "--duration=1s"},
                               absl::Seconds(20));
    REQUIRE(result.ok());  // Not still hanging after 20 s.
    INFO(result->exit.ToString() << "\n" << result->stderr_text);
    CHECK(result->exit.Exited(2));
    CHECK_THAT(result->stderr_text, Catch::Contains("--learn_deadline=2s"));
    CHECK_THAT(result->stderr_text, Catch::Contains(server.address()));
    CHECK(absl::Now() - start < absl::Seconds(10));
    CHECK(server.service().calls() == 1);
  }
  SECTION("SIGTERM while it waits for the answer ends the client at once") {
    testing::HostileServer server(testing::ListBehavior::kSilent);
    auto client = testing::Subprocess::Start(
        {testing::ClientBinary(), "load", "--target=" + server.address(),
         "--learn_deadline=60s", "--duration=1s"});
    REQUIRE(client.ok());
    // Learning: the server has the call.
    const absl::Time learning_by = absl::Now() + absl::Seconds(20);
    while (server.service().calls() == 0 && absl::Now() < learning_by) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    REQUIRE(server.service().calls() == 1);
    const absl::Time signalled = absl::Now();
    REQUIRE((*client)->Signal(SIGTERM).ok());
    auto exit = (*client)->Wait(absl::Seconds(20));
    REQUIRE(exit.ok());  // Not waiting out --learn_deadline=60s.
    INFO(exit->ToString() << "\n" << (*client)->stderr_text());
    CHECK(exit->Exited(3));
    CHECK(absl::Now() - signalled < absl::Seconds(5));
    CHECK_THAT((*client)->stderr_text(), Catch::Contains("interrupted while learning"));
    CHECK_THAT((*client)->stdout_text(), !Catch::Contains("all "));
  }
  SECTION("the server streams features without end: --max_features_learnt") {
    testing::HostileServer server(testing::ListBehavior::kEndless);
    auto result = testing::Run({testing::ClientBinary(), "load", "--target=" + server.address(),
                                "--max_features_learnt=5000", "--duration=1s"},
                               absl::Seconds(20));
    REQUIRE(result.ok());
    INFO(result->exit.ToString() << "\n" << result->stderr_text);
    CHECK(result->exit.Exited(2));
    CHECK_THAT(result->stderr_text, Catch::Contains("--max_features_learnt=5000"));
    CHECK_THAT(result->stderr_text, Catch::Contains(server.address()));
    // No measurement began: no table.
    CHECK_THAT(result->stdout_text, !Catch::Contains("all "));
  }
}

TEST_CASE("Load exits 2 before the run when a report cannot be written",
          "[load][binary]") {
  auto server = StartServer();
  testing::ScratchDir dir;
  // A directory that does not exist, and a directory where a file should be.
  for (const std::string& path : {dir.path() + "/missing/report", dir.path()}) {
    for (const char* flag : {"--json", "--html"}) {
      const auto result =
          RunLoad({absl::StrCat("--target=127.0.0.1:", server->port()),
                   "--requests=200", "--concurrency=4", absl::StrCat(flag, "=", path)});
      INFO(flag << "=" << path << "\n" << result.stderr_text);
      CHECK(result.exit.Exited(2));
      CHECK_THAT(result.stderr_text, Catch::Contains(flag));
      CHECK_THAT(result.stderr_text, Catch::Contains(path));
      // Found before the run: no call was made, no report printed.
      CHECK(server->calls().accepted() == 0);
      CHECK(result.stdout_text.empty());
    }
  }
}

TEST_CASE("Load exits 1 when errors pass --max_error_rate", "[load][binary]") {
  auto server = StartServer();
  // A deadline too short for any call to finish.
  const auto result = RunLoad({absl::StrCat("--target=127.0.0.1:", server->port()),
                               "--requests=50", "--concurrency=4",
                               "--deadline=1ns"});
  INFO(result.stdout_text << result.stderr_text);
  CHECK(result.exit.Exited(1));
  CHECK_THAT(result.stdout_text, Catch::Contains("DEADLINE_EXCEEDED"));
}

TEST_CASE("SIGINT or SIGTERM ends a load run early, writes every report, exits 3",
          "[load][binary]") {
  const int signal_number = GENERATE(SIGINT, SIGTERM);
  INFO("signal " << signal_number);
  auto server = StartServer();
  testing::ScratchDir dir;
  auto child = testing::Subprocess::Start(
      {testing::ClientBinary(), "load", absl::StrCat("--target=127.0.0.1:", server->port()),
       "--duration=1h", "--concurrency=4", "--json=" + dir.path() + "/report.json",
       "--html=" + dir.path() + "/report.html"});
  REQUIRE(child.ok());
  // The run is under way once the server has accepted calls.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (server->calls().accepted() < 100 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  REQUIRE(server->calls().accepted() >= 100);
  REQUIRE((*child)->Signal(signal_number).ok());
  auto status = (*child)->Wait(absl::Seconds(30));
  REQUIRE(status.ok());
  INFO(status->ToString() << "\n" << (*child)->stderr_text());
  CHECK(status->Exited(3));
  CHECK_THAT((*child)->stdout_text(), Catch::Contains("interrupted"));
  CHECK_THAT((*child)->stdout_text(), Catch::Contains("all "));
  const auto json = nlohmann::json::parse(testing::ReadWholeFile(dir.path() + "/report.json"));
  CHECK(json["interrupted"] == true);
  CHECK_THAT(testing::ReadWholeFile(dir.path() + "/report.html"), Catch::Contains("<svg"));
}

}  // namespace
}  // namespace routeguide
