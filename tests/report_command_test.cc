// routeguide-client report merge|compare as a user runs them, on reports
// of real load runs: exit codes, merged files that load again, regressions
// flagged.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "catch2/catch.hpp"
#include "client_process.h"
#include "files.h"
#include "load_fixture_server.h"
#include "nlohmann/json.hpp"
#include "report_file.h"
#include "subprocess.h"
#include "test_server.h"

namespace routeguide {
namespace {

constexpr absl::Duration kClientTimeout = absl::Seconds(60);

// A short closed-loop run against 127.0.0.1:`port`, its report in `json`.
std::vector<std::string> LoadArgs(int port, const std::string& json,
                                  const std::string& mix = "get:70,list:10,record:10,chat:10") {
  return {"load", absl::StrCat("--target=127.0.0.1:", port), "--duration=1s",
          "--concurrency=4", "--threads=1", "--hit_ratio=0", "--mix=" + mix,
          "--json=" + json};
}

void RunLoadOk(const std::vector<std::string>& args) {
  const testing::RunResult result = testing::RunClient(args);
  INFO(result.stderr_text);
  REQUIRE(result.exit.Exited(0));
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  REQUIRE(out.good());
}

TEST_CASE("report merge adds up two load runs made at the same time",
          "[report][binary]") {
  auto server = StartTestServer();
  testing::ScratchDir dir;
  // Both runs at once, as from two machines.
  std::vector<std::unique_ptr<testing::Subprocess>> runs;
  for (const char* name : {"a.json", "b.json"}) {
    std::vector<std::string> argv = {testing::ClientBinary()};
    for (const std::string& arg : LoadArgs(server->port(), dir / name)) argv.push_back(arg);
    auto run = testing::Subprocess::Start(argv);
    REQUIRE(run.ok());
    runs.push_back(*std::move(run));
  }
  for (auto& run : runs) {
    auto exit = run->Wait(kClientTimeout);
    REQUIRE(exit.ok());
    INFO(run->stderr_text());
    REQUIRE(exit->Exited(0));
  }
  const testing::RunResult merged =
      testing::RunClient({"report", "merge", dir / "a.json", dir / "b.json",
                 "--json=" + dir / "m.json", "--html=" + dir / "m.html"});
  INFO(merged.stdout_text << merged.stderr_text);
  CHECK(merged.exit.Exited(0));
  CHECK_THAT(merged.stdout_text, Catch::Contains("merged 2 reports"));
  CHECK_THAT(merged.stdout_text, Catch::Contains("p99.9"));
  CHECK_THAT(testing::ReadWholeFile(dir / "m.html"), Catch::Contains("<svg"));

  const auto a = nlohmann::json::parse(testing::ReadWholeFile(dir / "a.json"));
  const auto b = nlohmann::json::parse(testing::ReadWholeFile(dir / "b.json"));
  const auto m = nlohmann::json::parse(testing::ReadWholeFile(dir / "m.json"));
  CHECK(m["schema"] == "routeguide.load.v2");
  CHECK(m["total"]["ok"].get<uint64_t>() > 0);
  for (const char* field : {"started", "ok", "completed", "messages_sent"}) {
    INFO(field);
    CHECK(m["total"][field] == a["total"][field].get<uint64_t>() + b["total"][field].get<uint64_t>());
    CHECK(m["kinds"]["get"][field] ==
          a["kinds"]["get"][field].get<uint64_t>() + b["kinds"]["get"][field].get<uint64_t>());
  }
  CHECK(m["settings"]["concurrency"] == 8);
  // The merged report loads again, and merges again.
  auto again = ReadReportFile(dir / "m.json");
  INFO(again.status().ToString());
  REQUIRE(again.ok());
  CHECK(again->report.total.latency.count() == m["total"]["latency_ns"]["count"]);
  CHECK(testing::RunClient({"report", "merge", dir / "m.json", dir / "a.json"}).exit.Exited(0));

  // Two runs against the same server, generous limits: no regression.
  const testing::RunResult same =
      testing::RunClient({"report", "compare", dir / "a.json", dir / "b.json",
                 "--max_regression=p50:1000%,calls_per_second:90%,error_rate:1%"});
  INFO(same.stdout_text << same.stderr_text);
  CHECK(same.exit.Exited(0));
  CHECK_THAT(same.stdout_text, Catch::Contains("no regression past the limits"));
}

TEST_CASE("report compare flags a slowed server's p99 and exits 1", "[report][binary]") {
  testing::ScratchDir dir;
  {
    LoadFixtureServer fast(absl::ZeroDuration(), /*lie=*/false);
    RunLoadOk(LoadArgs(fast.port, dir / "base.json", "get:1"));
  }
  {
    // GetFeature one at a time, 5 ms each: four in flight wait ~20 ms.
    LoadFixtureServer slow(absl::Milliseconds(5), /*lie=*/false);
    RunLoadOk(LoadArgs(slow.port, dir / "new.json", "get:1"));
  }
  const testing::RunResult result =
      testing::RunClient({"report", "compare", dir / "base.json", dir / "new.json",
                 "--max_regression=p99:50%", "--html=" + dir / "c.html"});
  INFO(result.stdout_text << result.stderr_text);
  CHECK(result.exit.Exited(1));
  CHECK_THAT(result.stdout_text, Catch::Contains("REGRESSION (limit +50%)"));
  CHECK_THAT(result.stdout_text, Catch::Contains("all p99"));
  const std::string html = testing::ReadWholeFile(dir / "c.html");
  CHECK_THAT(html, Catch::Contains("Latency by percentile: get"));
  CHECK_THAT(html, Catch::Contains("stroke-dasharray"));  // The new run's curve.
  // Without limits: a report only.
  CHECK(testing::RunClient({"report", "compare", dir / "base.json", dir / "new.json"}).exit.Exited(0));
  // The other way round, nothing got slower.
  CHECK(testing::RunClient({"report", "compare", dir / "new.json", dir / "base.json",
                   "--max_regression=p99:50%"})
            .exit.Exited(0));

  // An unreadable report after a good one: exit 2, naming it.
  const testing::RunResult unreadable =
      testing::RunClient({"report", "merge", dir / "base.json", dir / "../nonexistent.json"});
  CHECK(unreadable.exit.Exited(2));
  CHECK_THAT(unreadable.stderr_text, Catch::Contains("nonexistent.json: cannot be read"));

  // A report whose start is infinite (absl::ParseTime takes "infinite-past"):
  // refused with a clear error, not an abort in the merge.
  auto infinite = nlohmann::json::parse(testing::ReadWholeFile(dir / "new.json"));
  infinite["started_at"] = "infinite-past";
  WriteFile(dir / "infinite.json", infinite.dump());
  const testing::RunResult refused =
      testing::RunClient({"report", "merge", dir / "infinite.json", dir / "infinite.json"});
  INFO(refused.stderr_text);
  CHECK(refused.exit.Exited(2));
  CHECK_THAT(refused.stderr_text, Catch::Contains("started_at: must be a time from 1970"));

  // Runs of other mixes do not merge, unless forced.
  auto other = nlohmann::json::parse(testing::ReadWholeFile(dir / "new.json"));
  other["settings"]["mix"]["chat"] = 5;
  WriteFile(dir / "other.json", other.dump());
  const testing::RunResult mixes =
      testing::RunClient({"report", "merge", dir / "base.json", dir / "other.json"});
  CHECK(mixes.exit.Exited(2));
  CHECK_THAT(mixes.stderr_text, Catch::Contains("mix"));
  CHECK(testing::RunClient({"report", "merge", dir / "base.json", dir / "other.json", "--force"})
            .exit.Exited(0));
  // Compare runs them, with a notice that the settings differ.
  const testing::RunResult compared =
      testing::RunClient({"report", "compare", dir / "base.json", dir / "other.json"});
  CHECK(compared.exit.Exited(0));
  CHECK_THAT(compared.stderr_text, Catch::Contains("note: the runs' settings differ"));
  CHECK_THAT(compared.stderr_text, Catch::Contains("mix"));
}

TEST_CASE("WriteWholeFile writes what ReadWholeFile reads, or says it failed", "[report]") {
  testing::ScratchDir dir;
  REQUIRE(WriteWholeFile(dir / "w.json", "{\"a\": 1}"));
  CHECK(testing::ReadWholeFile(dir / "w.json") == "{\"a\": 1}");
  CHECK_FALSE(WriteWholeFile(dir / "no-such-dir/x.json", "x"));
}

TEST_CASE("report exits 2 for bad input", "[report][binary]") {
  testing::ScratchDir dir;
  WriteFile(dir / "not.json", "this is not JSON");
  WriteFile(dir / "v1.json", R"({"schema": "routeguide.load.v1"})");
  WriteFile(dir / "range.json", "[]");
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const std::vector<Case> cases = {
      {{"report"}, "sub-command"},
      {{"report", "frobnicate", dir / "not.json"}, "sub-command"},
      {{"report", "merge"}, "one or more reports"},
      {{"report", "compare", dir / "not.json"}, "two reports"},
      {{"report", "merge", dir / "missing.json"}, "missing.json: cannot be read"},
      {{"report", "merge", dir / "not.json"}, "not.json: not JSON"},
      {{"report", "compare", dir / "range.json", dir / "not.json"}, "the top level"},
      {{"report", "compare", dir / "v1.json", dir / "v1.json"}, "v1.json: settings: is missing"},
      {{"report", "compare", dir / "not.json", dir / "not.json", "--max_regression=p98:1%"},
       "unknown figure"},
      {{"report", "compare", dir / "not.json", dir / "not.json", "--max_regression=p99:-5%"},
       "p99:-5%"},
      {{"report", "compare", dir / "not.json", dir / "not.json", "--max_regression=p99:x"},
       "PERCENT"},
      {{"report", "compare", dir / "not.json", dir / "not.json", "--force"}, "--force"},
      {{"report", "merge", dir / "not.json", "--max_regression=p99:5%"}, "--max_regression"},
      // Another command's flags are refused, not ignored.
      {{"report", "merge", dir / "not.json", "--target=localhost:1"}, "--target"},
      {{"report", "compare", dir / "not.json", dir / "not.json", "--hgrm=x"}, "--hgrm"},
      {{"load", "--force"}, "--force is a report flag"},
      {{"tutorial", "--max_regression=p99:5%"}, "--max_regression is a report flag"},
  };
  for (const Case& c : cases) {
    const testing::RunResult result = testing::RunClient(c.args);
    INFO(absl::StrJoin(c.args, " ") << "\n" << result.stderr_text);
    CHECK(result.exit.Exited(2));
    CHECK_THAT(result.stderr_text, Catch::Contains("error"));
    CHECK_THAT(result.stderr_text, Catch::Contains(c.message));
  }
}

}  // namespace
}  // namespace routeguide
