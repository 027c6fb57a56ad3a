// The routeguide-client binary's tutorial command, run as a child process
// against a real server started in this process on 127.0.0.1:0, compared
// with the tutorial's output (tests/data/tutorial_expected.txt).

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "db_loader.h"
#include "feature_store.h"
#include "geo.h"
#include "route_guide_server.h"
#include "test_server.h"
#include "subprocess.h"

namespace routeguide {
namespace {

using testing::RunResult;

// Bounds a whole client run; a healthy one takes well under a second.
constexpr absl::Duration kClientTimeout = absl::Seconds(30);

using Lines = std::vector<std::string>;
// Output lines by the section header they follow ("GetFeature", ...).
using Sections = std::map<std::string, Lines>;

std::string EnvOrEmpty(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

std::string ClientPath() {
  const std::string path = EnvOrEmpty("ROUTEGUIDE_CLIENT");
  INFO("ROUTEGUIDE_CLIENT must name the client binary (meson test sets it)");
  REQUIRE(!path.empty());
  return path;
}

std::string ReadTestData(const std::string& name) {
  const std::string dir = EnvOrEmpty("ROUTEGUIDE_TEST_DATA");
  INFO("ROUTEGUIDE_TEST_DATA must name tests/data (meson test sets it)");
  REQUIRE(!dir.empty());
  std::ifstream in(dir + "/" + name, std::ios::binary);
  INFO("reading " << dir << "/" << name);
  REQUIRE(in.good());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The tutorial's server with the built-in database, on a free port.
std::unique_ptr<RouteGuideServer> StartServer() { return StartTestServer(); }

std::string TargetOf(const RouteGuideServer& server) {
  return LocalTarget(server.port());
}

// Runs routeguide-client with `args` to its end.
RunResult RunClient(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {ClientPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto result = testing::Run(argv, kClientTimeout);
  INFO("running " << absl::StrJoin(argv, " "));
  INFO(result.status().ToString());
  REQUIRE(result.ok());
  return *std::move(result);
}

// Runs the tutorial against `target` and requires it to succeed.
RunResult RunTutorial(const std::string& target,
                      const std::vector<std::string>& extra_flags = {}) {
  std::vector<std::string> args = {"tutorial", "--target=" + target};
  args.insert(args.end(), extra_flags.begin(), extra_flags.end());
  RunResult result = RunClient(args);
  INFO("client stderr:\n" << result.stderr_text);
  INFO("client stdout:\n" << result.stdout_text);
  REQUIRE(result.exit.Exited(0));
  return result;
}

// "-------------- Name --------------" gives "Name".
std::optional<std::string> SectionHeader(absl::string_view line) {
  constexpr absl::string_view kRule = "--------------";
  if (!absl::ConsumePrefix(&line, absl::StrCat(kRule, " ")) ||
      !absl::ConsumeSuffix(&line, absl::StrCat(" ", kRule)) || line.empty()) {
    return std::nullopt;
  }
  return std::string(line);
}

Sections SplitSections(const std::string& text) {
  Sections sections;
  std::string current;  // Lines before any header land under "".
  for (absl::string_view piece : absl::StrSplit(text, '\n')) {
    if (std::optional<std::string> header = SectionHeader(piece)) {
      current = *header;
      sections[current];  // An empty section still shows up.
    } else {
      sections[current].emplace_back(piece);
    }
  }
  // The text ends with a newline, which leaves one empty piece.
  if (!sections[current].empty() && sections[current].back().empty()) {
    sections[current].pop_back();
  }
  if (sections[""].empty()) sections.erase("");
  return sections;
}

std::string CoordinatesText(const GeoPoint& point) {
  return absl::StrCat("latitude: ", point.latitude,
                      ", longitude: ", point.longitude);
}

// Parses exactly "latitude: A, longitude: B" (as the tutorial prints it).
std::optional<GeoPoint> ParseCoordinates(absl::string_view text) {
  const absl::string_view original = text;
  if (!absl::ConsumePrefix(&text, "latitude: ")) return std::nullopt;
  const size_t comma = text.find(", longitude: ");
  if (comma == absl::string_view::npos) return std::nullopt;
  GeoPoint point;
  if (!absl::SimpleAtoi(text.substr(0, comma), &point.latitude) ||
      !absl::SimpleAtoi(text.substr(comma + 13), &point.longitude)) {
    return std::nullopt;
  }
  // No stray spaces or signs: the text must be what the tutorial prints.
  if (CoordinatesText(point) != original) return std::nullopt;
  return point;
}

std::vector<std::string> KeysOf(const Sections& sections) {
  std::vector<std::string> keys;
  for (const auto& [key, lines] : sections) keys.push_back(key);
  return keys;
}

Sections ExpectedSections() {
  return SplitSections(ReadTestData("tutorial_expected.txt"));
}

// The sections of a tutorial run, which must be exactly the tutorial's four.
Sections ActualSections(const RunResult& run) {
  Sections sections = SplitSections(run.stdout_text);
  INFO("client stdout:\n" << run.stdout_text);
  REQUIRE(KeysOf(sections) ==
          std::vector<std::string>{"GetFeature", "ListFeatures", "RecordRoute",
                                   "RouteChat"});
  return sections;
}

Lines LinesStartingWith(const Lines& lines, absl::string_view prefix) {
  Lines kept;
  for (const std::string& line : lines) {
    if (absl::StartsWith(line, prefix)) kept.push_back(line);
  }
  return kept;
}

Lines VisitingLines(const RunResult& run) {
  return LinesStartingWith(ActualSections(run)["RecordRoute"],
                           "Visiting point ");
}

struct ChatNote {
  std::string message;
  GeoPoint location;
};

std::string NoteText(const ChatNote& note) {
  return absl::StrCat(note.message, " at ", CoordinatesText(note.location));
}

// The notes the tutorial sends, read back from its "Sending ..." lines.
std::vector<ChatNote> TutorialNotes() {
  const Lines chat = ExpectedSections()["RouteChat"];
  std::vector<ChatNote> notes;
  for (absl::string_view line : chat) {
    if (!absl::ConsumePrefix(&line, "Sending ")) continue;
    const size_t at = line.rfind(" at latitude: ");
    REQUIRE(at != absl::string_view::npos);
    std::optional<GeoPoint> location = ParseCoordinates(line.substr(at + 4));
    REQUIRE(location.has_value());
    notes.push_back({std::string(line.substr(0, at)), *location});
  }
  REQUIRE(notes.size() == 5);
  return notes;
}

// What each of `runs` tutorial runs against one fresh server receives:
// with every note sent, the notes stored at its location before it
// (earlier runs' included), oldest first.
std::vector<Lines> ModelReceivedLines(int runs) {
  const std::vector<ChatNote> notes = TutorialNotes();
  std::map<std::pair<int32_t, int32_t>, std::vector<ChatNote>> stored;
  std::vector<Lines> received(runs);
  for (int run = 0; run < runs; ++run) {
    for (const ChatNote& note : notes) {
      auto& here = stored[{note.location.latitude, note.location.longitude}];
      for (const ChatNote& earlier : here) {
        received[run].push_back("Received message " + NoteText(earlier));
      }
      here.push_back(note);
    }
  }
  return received;
}

// Checks a RouteChat section: only Sending and Received lines, each kind in
// its own expected order; how the two kinds interleave is up to timing.
void CheckRouteChat(const Lines& actual, const Lines& expected_sent,
                    const Lines& expected_received) {
  for (const std::string& line : actual) {
    INFO("line: " << line);
    CHECK((absl::StartsWith(line, "Sending ") ||
           absl::StartsWith(line, "Received message ")));
  }
  CHECK(LinesStartingWith(actual, "Sending ") == expected_sent);
  CHECK(LinesStartingWith(actual, "Received message ") == expected_received);
}

TEST_CASE(
    "The tutorial client's GetFeature and ListFeatures output matches the "
    "tutorial line for line",
    "[client]") {
  auto server = StartServer();
  const RunResult run = RunTutorial(TargetOf(*server));
  Sections actual = ActualSections(run);
  Sections expected = ExpectedSections();

  CHECK(actual["GetFeature"] == expected["GetFeature"]);
  CHECK(actual["ListFeatures"] == expected["ListFeatures"]);
  CHECK(run.stderr_text.empty());
}

TEST_CASE(
    "The tutorial client's RecordRoute visits ten stored features and "
    "reports the distance between them",
    "[client]") {
  auto server = StartServer();
  const RunResult run = RunTutorial(TargetOf(*server));
  const Lines lines = ActualSections(run)["RecordRoute"];
  INFO("RecordRoute section:\n" << absl::StrJoin(lines, "\n"));
  REQUIRE(lines.size() == 14);

  auto features = DefaultFeatures();
  REQUIRE(features.ok());
  std::set<std::pair<int32_t, int32_t>> stored;
  for (const FeatureRecord& feature : *features) {
    stored.insert({feature.location.latitude, feature.location.longitude});
  }

  std::vector<GeoPoint> points;
  for (size_t i = 0; i < 10; ++i) {
    INFO("line " << i << ": '" << lines[i] << "'");
    absl::string_view line = lines[i];
    REQUIRE(absl::ConsumePrefix(&line, "Visiting point "));
    std::optional<GeoPoint> parsed = ParseCoordinates(line);
    REQUIRE(parsed.has_value());
    const GeoPoint point = *parsed;
    CHECK(stored.count({point.latitude, point.longitude}) == 1);
    points.push_back(point);
  }
  double meters = 0;
  for (size_t i = 1; i < points.size(); ++i) {
    meters += HaversineMeters(points[i - 1], points[i]);
  }

  CHECK(lines[10] == "Finished trip with 10 points ");
  CHECK(lines[11] == "Passed 10 features ");
  CHECK(lines[12] ==
        absl::StrCat("Travelled ", static_cast<int64_t>(meters), " meters "));
  absl::string_view seconds = lines[13];
  INFO("line 13: '" << lines[13] << "'");
  CHECK((absl::ConsumePrefix(&seconds, "It took ") &&
         absl::ConsumeSuffix(&seconds, " seconds ") && !seconds.empty() &&
         std::all_of(seconds.begin(), seconds.end(), absl::ascii_isdigit)));
}

TEST_CASE(
    "The tutorial client's RouteChat sends the tutorial's notes and receives "
    "the earlier notes at each location",
    "[client]") {
  auto server = StartServer();
  const RunResult run = RunTutorial(TargetOf(*server));
  const Lines expected = ExpectedSections()["RouteChat"];
  const Lines expected_received = LinesStartingWith(expected, "Received ");

  // The model of shared notes agrees with the tutorial's output.
  REQUIRE(ModelReceivedLines(1)[0] == expected_received);
  CheckRouteChat(ActualSections(run)["RouteChat"],
                 LinesStartingWith(expected, "Sending "), expected_received);
}

TEST_CASE(
    "A second tutorial run against the same server also receives the first "
    "run's notes, in order",
    "[client]") {
  auto server = StartServer();
  const std::string target = TargetOf(*server);
  const RunResult first = RunTutorial(target);
  const RunResult second = RunTutorial(target);

  const Lines sent =
      LinesStartingWith(ExpectedSections()["RouteChat"], "Sending ");
  const std::vector<Lines> model = ModelReceivedLines(2);
  REQUIRE(model[1].size() > model[0].size());
  {
    INFO("first run");
    CheckRouteChat(ActualSections(first)["RouteChat"], sent, model[0]);
  }
  {
    INFO("second run");
    CheckRouteChat(ActualSections(second)["RouteChat"], sent, model[1]);
  }
}

TEST_CASE("The tutorial client's --seed makes RecordRoute's route repeatable",
          "[client]") {
  auto server = StartServer();
  const std::string target = TargetOf(*server);
  const Lines first = VisitingLines(RunTutorial(target, {"--seed=42"}));
  const Lines again = VisitingLines(RunTutorial(target, {"--seed=42"}));
  const Lines other = VisitingLines(RunTutorial(target, {"--seed=43"}));

  CHECK(first.size() == 10);
  CHECK(again == first);
  // Ten picks of 100 features: two seeds agreeing on all would be a broken
  // generator, not chance.
  CHECK(other != first);
}

TEST_CASE(
    "The tutorial client exits 2 promptly when no server listens at the "
    "target",
    "[client]") {
  std::string target;
  {
    // A port that was just bound and is closed again.
    auto server = StartServer();
    target = TargetOf(*server);
    server->Shutdown();
  }
  const RunResult run =
      RunClient({"tutorial", "--target=" + target, "--connect_timeout=1s"});
  INFO("client stderr:\n" << run.stderr_text);
  CHECK(run.exit.Exited(2));
  CHECK(absl::StartsWith(run.stderr_text, "routeguide-client: error: "));
  CHECK(absl::StrContains(run.stderr_text, target));
  CHECK(run.stdout_text.empty());
}

TEST_CASE("The tutorial client rejects a bad command line with exit code 2",
          "[client]") {
  struct BadCommandLine {
    std::vector<std::string> args;
    std::string mentions;  // What the error message must name.
  };
  // No server is needed: each is refused before any connection.
  const std::string target = "--target=127.0.0.1:1";
  const BadCommandLine bad = GENERATE_COPY(values<BadCommandLine>({
      {{"tutorial", target, "--bogus"}, "bogus"},
      {{target}, "tutorial"},
      {{"frobnicate", target}, "tutorial"},
      {{"tutorial", "extra", target}, "tutorial"},
      {{"tutorial", target, "--deadline=-1s"}, "deadline"},
      {{"tutorial", target, "--connect_timeout=abc"}, "connect_timeout"},
  }));
  CAPTURE(absl::StrJoin(bad.args, " "));

  const RunResult run = RunClient(bad.args);
  INFO("client stderr:\n" << run.stderr_text);
  CHECK(run.exit.Exited(2));
  CHECK(absl::StartsWith(run.stderr_text, "routeguide-client: error: "));
  CHECK(absl::StrContains(run.stderr_text, bad.mentions));
  CHECK(run.stdout_text.empty());
}

}  // namespace
}  // namespace routeguide
