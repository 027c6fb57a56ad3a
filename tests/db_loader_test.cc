// Unit tests of common/db_loader: the built-in database, parsing good and
// bad input, and loading from a file.

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "catch2/catch.hpp"
#include "geo_string_maker.h"
#include "db_loader.h"
#include "feature_store.h"
#include "geo.h"


namespace routeguide {

// tests/data/escaped_names_db.json, as text and as a generated table
// (tests/meson.build).
extern const std::string_view kEscapedNamesDbJson;
extern const BuiltInFeature kEscapedNamesFeatures[];
extern const size_t kEscapedNamesFeatureCount;

namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

// One valid entry, to put a bad one after it at index [1].
constexpr char kGoodEntry[] =
    R"({"location": {"latitude": 407838351, "longitude": -746143763},)"
    R"( "name": "Patriots Path, Mendham, NJ 07945, USA"})";

std::string WithBadSecond(const std::string& bad_entry) {
  return std::string("[\n  ") + kGoodEntry + ",\n  " + bad_entry + "\n]\n";
}

// A directory of its own under the system's temporary directory, removed
// with everything in it when the object goes.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "db_loader_test.XXXXXX")
            .string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    if (path_.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }

  bool ok() const { return !path_.empty(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

bool WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  return static_cast<bool>(out);
}

TEST_CASE("The built-in database holds the tutorial's 100 features", "[db]") {
  const absl::StatusOr<std::vector<FeatureRecord>> features =
      DefaultFeatures();
  REQUIRE(features.ok());
  REQUIRE(features->size() == 100);

  CHECK(features->front().name == "Patriots Path, Mendham, NJ 07945, USA");
  CHECK(features->front().location == GeoPoint{407838351, -746143763});
  CHECK(features->back().name == "3 Hasta Way, Newton, NJ 07860, USA");
  CHECK(features->back().location == GeoPoint{410248224, -747127767});

  size_t unnamed = 0;
  bool all_valid = true;
  for (const FeatureRecord& feature : *features) {
    if (feature.name.empty()) ++unnamed;
    all_valid = all_valid && ValidatePoint(feature.location).ok();
  }
  CAPTURE(unnamed);
  CHECK(unnamed > 0);
  CHECK(unnamed < features->size());
  CHECK(all_valid);
}

// Checks that `table` holds what the loader makes of `json`, in order.
void CheckTableMatchesText(const std::vector<FeatureRecord>& table,
                           std::string_view json, absl::string_view source) {
  const absl::StatusOr<std::vector<FeatureRecord>> parsed =
      ParseFeatureDb(absl::string_view(json.data(), json.size()), source);
  REQUIRE(parsed.ok());
  REQUIRE(table.size() == parsed->size());
  for (size_t i = 0; i < parsed->size(); ++i) {
    CAPTURE(i);
    CHECK(table[i].location == (*parsed)[i].location);
    CHECK(table[i].name == (*parsed)[i].name);
  }
}

TEST_CASE("The built-in table is what the loader makes of the built-in file",
          "[db]") {
  // The table spares start-up the JSON parse; the file and the loader's
  // rules stay the source of truth.
  const absl::StatusOr<std::vector<FeatureRecord>> table = DefaultFeatures();
  REQUIRE(table.ok());
  CheckTableMatchesText(*table, kDefaultFeatureDbJson, "built-in database");
}

TEST_CASE("The table generator writes any name the loader reads, byte for byte",
          "[db]") {
  // Quotes, backslash, question marks (trigraphs), UTF-8, control bytes,
  // an escape followed by a digit, NUL; no name and an empty one.
  const std::vector<FeatureRecord> table =
      FeaturesFromTable(kEscapedNamesFeatures, kEscapedNamesFeatureCount);
  CheckTableMatchesText(table, kEscapedNamesDbJson, "escaped_names_db.json");
  REQUIRE(table.size() == 6);
  CHECK(table[3].name == std::string("nul\0inside", 10));
}

TEST_CASE("The built-in database loads into a store", "[db]") {
  absl::StatusOr<std::vector<FeatureRecord>> features = DefaultFeatures();
  REQUIRE(features.ok());
  FeatureStore store;
  AddFeatures(*std::move(features), store);
  CHECK(store.feature_count() == 100);

  const std::optional<FeatureRecord> berkshire =
      store.Find({409146138, -746188906});
  REQUIRE(berkshire.has_value());
  CHECK(berkshire->name ==
        "Berkshire Valley Management Area Trail, Jefferson, NJ, USA");
  CHECK_FALSE(store.Contains({0, 0}));

  // The tutorial's ListFeatures rectangle starts with the file's first entry.
  const std::vector<FeatureRecord> listed = store.FeaturesIn(
      GeoRect::FromCorners({400000000, -750000000}, {420000000, -730000000}));
  REQUIRE_FALSE(listed.empty());
  CHECK(listed.front().name == "Patriots Path, Mendham, NJ 07945, USA");
}

TEST_CASE("ParseFeatureDb reads well-formed input", "[db]") {
  SECTION("named and unnamed features, in file order") {
    const std::string json = R"([
      {"location": {"latitude": 1, "longitude": -2}, "name": "one"},
      {"location": {"latitude": -900000000, "longitude": 1800000000}},
      {"name": "", "location": {"longitude": -1800000000, "latitude": 900000000}},
      {"location": {"latitude": 0, "longitude": 0}, "name": "caf\u00e9 \"x\""}
    ])";
    const absl::StatusOr<std::vector<FeatureRecord>> features =
        ParseFeatureDb(json, "good.json");
    CAPTURE(features.status().ToString());
    REQUIRE(features.ok());
    REQUIRE(features->size() == 4);
    CHECK((*features)[0].name == "one");
    CHECK((*features)[0].location == GeoPoint{1, -2});
    CHECK((*features)[1].name.empty());
    CHECK((*features)[1].location == GeoPoint{-900000000, 1800000000});
    CHECK((*features)[2].name.empty());
    CHECK((*features)[2].location == GeoPoint{900000000, -1800000000});
    CHECK((*features)[3].name == "caf\xc3\xa9 \"x\"");
  }
  SECTION("an empty array") {
    const absl::StatusOr<std::vector<FeatureRecord>> features =
        ParseFeatureDb(" [ ] ", "empty.json");
    REQUIRE(features.ok());
    CHECK(features->empty());
  }
  SECTION("a name of exactly the longest length") {
    const std::string name(kMaxFeatureNameBytes, 'n');
    const absl::StatusOr<std::vector<FeatureRecord>> features = ParseFeatureDb(
        R"([{"location": {"latitude": 1, "longitude": 2}, "name": ")" + name +
            R"("}])",
        "long.json");
    REQUIRE(features.ok());
    REQUIRE(features->size() == 1);
    CHECK((*features)[0].name == name);
  }
}

TEST_CASE("ParseFeatureDb reports bad JSON with its line and column", "[db]") {
  const auto [json, where] = GENERATE(table<std::string, std::string>({
      {"not json", "line 1, column 2"},
      {"[\n  {\"location\": {\"latitude\": 1, \"longitude\": 2}},\n  oops\n]",
       "line 3, column 3"},
      {"", "line 1, column 1"},
      {"[{\"location\": {\"latitude\": 407838351", "line 1"},
      {"[{\"location\": {\"latitude\": 1, \"longitude\": 2}}", "line 1"},
      {"[{\"location\": {\"latitude\": 1, \"longitude\": 2}},]", "line 1"},
      {"[] []", "line 1, column 4"},
  }));
  CAPTURE(json);
  const absl::Status status = ParseFeatureDb(json, "bad.json").status();
  const std::string message(status.message());
  CAPTURE(message);
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(message, StartsWith("bad.json: "));
  CHECK_THAT(message, Contains("JSON"));
  CHECK_THAT(message, Contains(where));
}

TEST_CASE("ParseFeatureDb rejects numbers too large for any type, found by "
          "fuzzing",
          "[db]") {
  const std::string json = GENERATE(
      std::string("[{\"location\": {\"latitude\": -747e71659, \"longitude\": 0}}]"),
      std::string("[{\"location\": {\"latitude\": 1e999, \"longitude\": 0}}]"));
  CAPTURE(json);
  const absl::Status status = ParseFeatureDb(json, "big.json").status();
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), StartsWith("big.json: "));
  CHECK_THAT(std::string(status.message()), Contains("overflow"));
}

TEST_CASE("ParseFeatureDb rejects a top level that is not an array", "[db]") {
  const std::string json = GENERATE(
      std::string(R"({"location": {"latitude": 1, "longitude": 2}})"),
      std::string("42"), std::string("\"features\""), std::string("null"));
  CAPTURE(json);
  const absl::Status status = ParseFeatureDb(json, "top.json").status();
  const std::string message(status.message());
  CAPTURE(message);
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(message, StartsWith("top.json: "));
  CHECK_THAT(message, Contains("array"));
}

TEST_CASE("ParseFeatureDb names the place of a bad entry", "[db]") {
  const std::string long_name(kMaxFeatureNameBytes + 1, 'x');
  const auto [entry, place, detail] =
      GENERATE_COPY(table<std::string, std::string, std::string>({
          {"5", "[1]: ", "object"},
          {"[]", "[1]: ", "object"},
          {"\"feature\"", "[1]: ", "object"},
          {R"({"name": "no location"})", "[1].location: ", "missing"},
          {R"({"location": [1, 2]})", "[1].location: ", "object"},
          {R"({"location": 407838351})", "[1].location: ", "object"},
          {R"({"location": {"longitude": 2}})", "[1].location.latitude: ",
           "missing"},
          {R"({"location": {"latitude": 1}})", "[1].location.longitude: ",
           "missing"},
          {R"({"location": {"latitude": "407838351", "longitude": 2}})",
           "[1].location.latitude: ", "integer"},
          {R"({"location": {"latitude": 40.5, "longitude": 2}})",
           "[1].location.latitude: ", "integer"},
          {R"({"location": {"latitude": 407838351.0, "longitude": 2}})",
           "[1].location.latitude: ", "integer"},
          {R"({"location": {"latitude": null, "longitude": 2}})",
           "[1].location.latitude: ", "integer"},
          {R"({"location": {"latitude": 1, "longitude": true}})",
           "[1].location.longitude: ", "integer"},
          {R"({"location": {"latitude": 3000000000, "longitude": 2}})",
           "[1].location.latitude: ", "3000000000"},
          {R"({"location": {"latitude": -3000000000, "longitude": 2}})",
           "[1].location.latitude: ", "-3000000000"},
          {R"({"location": {"latitude": 1, "longitude": 2147483648}})",
           "[1].location.longitude: ", "2147483648"},
          {R"({"location": {"latitude": 1, "longitude": 18446744073709551615}})",
           "[1].location.longitude: ", "18446744073709551615"},
          {R"({"location": {"latitude": 900000001, "longitude": 2}})",
           "[1].location: ", "latitude 900000001"},
          {R"({"location": {"latitude": -900000001, "longitude": 2}})",
           "[1].location: ", "latitude -900000001"},
          {R"({"location": {"latitude": 1, "longitude": 1800000001}})",
           "[1].location: ", "longitude 1800000001"},
          {R"({"location": {"latitude": 1, "longitude": -2147483648}})",
           "[1].location: ", "longitude -2147483648"},
          {R"({"location": {"latitude": 1, "longitude": 2}, "name": 7})",
           "[1].name: ", "string"},
          {R"({"location": {"latitude": 1, "longitude": 2}, "name": null})",
           "[1].name: ", "string"},
          {R"({"location": {"latitude": 1, "longitude": 2}, "name": ")" +
               long_name + "\"}",
           "[1].name: ", "4097"},
      }));
  CAPTURE(entry);
  const absl::Status status =
      ParseFeatureDb(WithBadSecond(entry), "db.json").status();
  const std::string message(status.message());
  CAPTURE(message);
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(message, StartsWith("db.json: " + place));
  CHECK_THAT(message, Contains(detail));
}

TEST_CASE("ParseFeatureDb reports the first bad entry by its index", "[db]") {
  std::string json = "[";
  for (int i = 0; i < 12; ++i) {  // Good entries, each at a point of its own.
    json += R"({"location": {"latitude": )" + std::to_string(i) +
            R"(, "longitude": 0}, "name": "good"},)";
  }
  json += R"({"location": {"latitude": 1, "longitude": "east"}},)";
  json += R"({"location": 5}])";
  const absl::Status status = ParseFeatureDb(json, "many.json").status();
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()),
             StartsWith("many.json: [12].location.longitude: "));
}

TEST_CASE("ParseFeatureDb refuses two features at one point, naming both",
          "[db]") {
  const std::string twice = WithBadSecond(
      R"({"location": {"latitude": 407838351, "longitude": -746143763}, "name": "Other"})");
  auto parsed = ParseFeatureDb(twice, "db.json");
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(parsed.status().message()),
             StartsWith("db.json: [1]: at the same point as [0]") &&
                 Contains("407838351") && Contains("Patriots Path") && Contains("Other"));
}

TEST_CASE("ParseFeatureDb refuses a key given twice in one object, by path",
          "[db]") {
  std::string text;
  std::string where;
  SECTION("in a location") {
    text = WithBadSecond(
        R"({"location": {"latitude": 1, "latitude": 2, "longitude": 3}, "name": "x"})");
    where = "db.json: [1].location: duplicate key \"latitude\"";
  }
  SECTION("in a feature") {
    text = WithBadSecond(
        R"({"location": {"latitude": 1, "longitude": 3}, "name": "x", "name": "y"})");
    where = "db.json: [1]: duplicate key \"name\"";
  }
  SECTION("after scalar elements and nested arrays") {
    text = std::string("[") + kGoodEntry +
           R"(, {"location": {"latitude": 5, "longitude": 6}, "tags": [1, [2, 3], {"a": 1}]},)" +
           R"( {"location": {"latitude": 7, "longitude": 8, "longitude": 9}}])";
    where = "db.json: [2].location: duplicate key \"longitude\"";
  }
  auto parsed = ParseFeatureDb(text, "db.json");
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.status().message() == where);
}

TEST_CASE("LoadFeatureDbFile reads a database from a file", "[db]") {
  TempDir dir;
  REQUIRE(dir.ok());

  SECTION("a good file") {
    const std::filesystem::path path = dir.path() / "db.json";
    REQUIRE(WriteFile(path, WithBadSecond(
                                R"({"location": {"latitude": -1, "longitude": 0}})")));
    const absl::StatusOr<std::vector<FeatureRecord>> features =
        LoadFeatureDbFile(path.string());
    CAPTURE(features.status().ToString());
    REQUIRE(features.ok());
    REQUIRE(features->size() == 2);
    CHECK((*features)[0].name == "Patriots Path, Mendham, NJ 07945, USA");
    CHECK((*features)[1].name.empty());
    CHECK((*features)[1].location == GeoPoint{-1, 0});
  }
  SECTION("a bad file is named in the error") {
    const std::filesystem::path path = dir.path() / "bad.json";
    REQUIRE(WriteFile(path, R"([{"location": {"latitude": 1}}])"));
    const absl::Status status = LoadFeatureDbFile(path.string()).status();
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()),
               StartsWith(path.string() + ": [0].location.longitude: "));
  }
  SECTION("a missing file is NOT_FOUND, with its path") {
    const std::filesystem::path path = dir.path() / "no such file.json";
    const absl::Status status = LoadFeatureDbFile(path.string()).status();
    const std::string message(status.message());
    CAPTURE(message);
    CHECK(status.code() == absl::StatusCode::kNotFound);
    CHECK_THAT(message, Contains(path.string()));
  }
}

}  // namespace
}  // namespace routeguide
