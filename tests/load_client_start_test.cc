// routeguide-client load's --hgrm files and --start_at, as a user runs them.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "client_process.h"
#include "hgrm_text.h"
#include "nlohmann/json.hpp"
#include "subprocess.h"
#include "test_server.h"
#include "test_util.h"

namespace routeguide {
namespace {

testing::RunResult RunLoad(std::vector<std::string> flags) {
  flags.insert(flags.begin(), "load");
  return testing::RunClient(flags);
}

bool Exists(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_full, t, absl::UTCTimeZone());
}

absl::Time ParseRfc3339(const std::string& text) {
  absl::Time t;
  std::string error;
  INFO(text << ": " << error);
  REQUIRE(absl::ParseTime(absl::RFC3339_full, text, &t, &error));
  return t;
}

// The row at exactly `fraction` (0.5 and 0.9 are rows at 5 ticks per half
// distance).
const testing::HgrmRow& RowAt(const testing::HgrmText& hgrm, double fraction) {
  for (const auto& row : hgrm.rows) {
    if (row.fraction == fraction) return row;
  }
  FAIL("no row at " << fraction);
  return hgrm.rows.front();
}

// One .hgrm file against the JSON's figures (nanoseconds) of the same
// histogram: same count and max, and the same buckets at p50 and p90
// (values rounded to the microsecond in the file).
void CheckHgrmMatchesJson(const std::string& path, const nlohmann::json& latency) {
  INFO(path << "\n" << latency.dump());
  REQUIRE(Exists(path));
  const testing::HgrmText hgrm = testing::ParseHgrm(testing::ReadWholeFile(path));
  CHECK(hgrm.total == latency["count"].get<uint64_t>());
  CHECK(hgrm.rows.back().count == latency["count"].get<uint64_t>());
  CHECK(std::abs(hgrm.max_ms * 1e6 - latency["max"].get<double>()) <= 500.5);
  CHECK(std::abs(RowAt(hgrm, 0.5).value_ms * 1e6 - latency["p50"].get<double>()) <= 500.5);
  CHECK(std::abs(RowAt(hgrm, 0.9).value_ms * 1e6 - latency["p90"].get<double>()) <= 500.5);
}

TEST_CASE("--hgrm writes each kind's distribution, matching the JSON",
          "[load][binary][hgrm]") {
  auto server = StartTestServer();
  testing::ScratchDir dir;
  const std::string prefix = dir.path() + "/run";
  const std::string target = absl::StrCat("--target=127.0.0.1:", server->port());
  const auto result = RunLoad({target, "--requests=800", "--concurrency=4",
                                 "--mix=get:40,list:20,record:20,chat:20",
                                 "--hgrm=" + prefix, "--json=" + dir.path() + "/run.json"});
  INFO(result.stderr_text);
  REQUIRE(result.exit.Exited(0));
  const auto json = nlohmann::json::parse(testing::ReadWholeFile(dir.path() + "/run.json"));
  for (const char* kind : {"get", "list", "record", "chat"}) {
    CheckHgrmMatchesJson(absl::StrCat(prefix, ".", kind, ".hgrm"),
                         json["kinds"][kind]["latency_ns"]);
  }
  CheckHgrmMatchesJson(prefix + ".all.hgrm", json["total"]["latency_ns"]);
  CHECK(json["total"]["latency_ns"]["count"] == 800);
  CheckHgrmMatchesJson(prefix + ".list_first_message.hgrm",
                       json["kinds"]["list"]["first_message_latency_ns"]);
  CheckHgrmMatchesJson(prefix + ".chat_reply.hgrm",
                       json["kinds"]["chat"]["reply_latency_ns"]);

  SECTION("a kind without calls gets no file; an earlier run's is removed") {
    const auto again = RunLoad({target, "--requests=100", "--concurrency=2",
                                  "--mix=get:1", "--hgrm=" + prefix});
    INFO(again.stderr_text);
    REQUIRE(again.exit.Exited(0));
    CHECK(testing::ParseHgrm(testing::ReadWholeFile(prefix + ".get.hgrm")).total == 100);
    CHECK(testing::ParseHgrm(testing::ReadWholeFile(prefix + ".all.hgrm")).total == 100);
    for (const char* gone : {"list", "record", "chat", "list_first_message", "chat_reply"}) {
      INFO(gone);
      CHECK_FALSE(Exists(absl::StrCat(prefix, ".", gone, ".hgrm")));
    }
  }
}

TEST_CASE("An --hgrm prefix that cannot be written is refused before the run",
          "[load][binary][hgrm]") {
  auto server = StartTestServer();
  testing::ScratchDir dir;
  const std::string prefix = dir.path() + "/missing/run";
  const auto result =
      RunLoad({absl::StrCat("--target=127.0.0.1:", server->port()),
                 "--requests=100", "--concurrency=2", "--hgrm=" + prefix});
  INFO(result.stderr_text);
  CHECK(result.exit.Exited(2));
  CHECK_THAT(result.stderr_text, Catch::Contains("--hgrm"));
  CHECK_THAT(result.stderr_text, Catch::Contains(prefix));
  CHECK(server->calls().accepted() == 0);
  CHECK(result.stdout_text.empty());
}

TEST_CASE("--start_at in the past, too far ahead or malformed exits 2",
          "[load][binary][start_at]") {
  const absl::Time now = absl::Now();
  const std::string bad = GENERATE_COPY(
      Rfc3339(now - absl::Seconds(5)), std::string("2000-01-01T00:00:00Z"),
      Rfc3339(now + absl::Minutes(61)), std::string("tomorrow"),
      std::string("2026-12-02 10:00:00"), std::string("2026-13-02T10:00:00Z"));
  // Refused before connecting: the target need not exist.
  const auto result = RunLoad({"--target=127.0.0.1:1", "--start_at=" + bad,
                                 "--duration=1s"});
  INFO(bad << "\n" << result.stderr_text);
  CHECK(result.exit.Exited(2));
  CHECK_THAT(result.stderr_text, Catch::Contains("--start_at"));
  CHECK_THAT(result.stderr_text, !Catch::Contains("127.0.0.1:1"));
}

TEST_CASE("Two generators with the same --start_at begin measuring together",
          "[load][binary][start_at]") {
  auto server = StartTestServer();
  testing::ScratchDir dir;
  const absl::Time start_at =
      absl::Now() + kSanitizerSlowdown * absl::Milliseconds(2500);
  std::vector<std::unique_ptr<testing::Subprocess>> clients;
  for (int i = 0; i < 2; ++i) {
    if (i > 0) absl::SleepFor(absl::Seconds(1));  // Started apart, by hand.
    auto child = testing::Subprocess::Start(
        {testing::ClientBinary(), "load", absl::StrCat("--target=127.0.0.1:", server->port()),
         "--start_at=" + Rfc3339(start_at), "--duration=1s", "--concurrency=2",
         absl::StrCat("--json=", dir.path(), "/", i, ".json")});
    REQUIRE(child.ok());
    clients.push_back(*std::move(child));
  }
  std::vector<absl::Time> started;
  for (int i = 0; i < 2; ++i) {
    auto status = clients[i]->Wait(absl::Seconds(30));
    REQUIRE(status.ok());
    INFO("client " << i << ": " << status->ToString() << "\n"
                   << clients[i]->stderr_text());
    CHECK(status->Exited(0));
    CHECK_THAT(clients[i]->stderr_text(), Catch::Contains("waiting"));
    const auto json = nlohmann::json::parse(testing::ReadWholeFile(absl::StrCat(dir.path(), "/", i, ".json")));
    started.push_back(ParseRfc3339(json["started_at"].get<std::string>()));
    CHECK(json["total"]["completed"].get<uint64_t>() > 0);
    // The report says what it waited for.
    CHECK(json["settings"]["start_at"] == Rfc3339(start_at));
  }
  INFO("start_at " << Rfc3339(start_at) << ", started " << Rfc3339(started[0])
                   << " and " << Rfc3339(started[1]));
  // Started a second apart by hand: without --start_at they would begin
  // about that far apart.
  const absl::Duration together = kSanitizerSlowdown * absl::Milliseconds(50);
  CHECK(absl::AbsDuration(started[0] - started[1]) <= together);
  for (const absl::Time t : started) {
    CHECK(t >= start_at);
    CHECK(t - start_at <= together);
  }
}

TEST_CASE("SIGINT while waiting for --start_at exits 3 with no report",
          "[load][binary][start_at]") {
  auto server = StartTestServer();
  testing::ScratchDir dir;
  const std::string json_path = dir.path() + "/report.json";
  auto child = testing::Subprocess::Start(
      {testing::ClientBinary(), "load", absl::StrCat("--target=127.0.0.1:", server->port()),
       "--start_at=" + Rfc3339(absl::Now() + absl::Seconds(30)), "--duration=1s",
       "--concurrency=2", "--json=" + json_path});
  REQUIRE(child.ok());
  REQUIRE((*child)
              ->WaitForStderrLineContaining("--start_at", absl::Now() + absl::Seconds(20))
              .ok());
  const absl::Time signalled = absl::Now();
  REQUIRE((*child)->Signal(SIGINT).ok());
  auto status = (*child)->Wait(absl::Seconds(10));
  REQUIRE(status.ok());
  INFO(status->ToString() << "\n" << (*child)->stderr_text());
  CHECK(status->Exited(3));
  CHECK(absl::Now() - signalled < absl::Seconds(2));
  CHECK_THAT((*child)->stderr_text(), Catch::Contains("no report"));
  CHECK((*child)->stdout_text().empty());
  CHECK_FALSE(Exists(json_path));
}

}  // namespace
}  // namespace routeguide
