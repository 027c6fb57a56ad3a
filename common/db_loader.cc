#include "db_loader.h"

#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "files.h"
#include "nlohmann/json.hpp"

namespace routeguide {
namespace {

using Json = nlohmann::json;

absl::Status Invalid(absl::string_view source, absl::string_view path,
                     absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", path, ": ", what));
}

absl::StatusOr<int32_t> ReadCoordinate(const Json& parent, const char* field,
                                       absl::string_view source,
                                       const std::string& path) {
  const std::string field_path = absl::StrCat(path, ".", field);
  auto it = parent.find(field);
  if (it == parent.end()) {
    return Invalid(source, field_path, "missing");
  }
  if (!it->is_number_integer()) {
    return Invalid(source, field_path,
                   absl::StrCat("expected an integer, got ", it->type_name()));
  }
  constexpr int64_t kMin = std::numeric_limits<int32_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  if (it->is_number_unsigned() ? it->get<uint64_t>() > static_cast<uint64_t>(kMax)
                               : (it->get<int64_t>() < kMin ||
                                  it->get<int64_t>() > kMax)) {
    return Invalid(source, field_path,
                   absl::StrCat(it->dump(), " does not fit in int32"));
  }
  return static_cast<int32_t>(it->get<int64_t>());
}

absl::StatusOr<FeatureRecord> ReadFeature(const Json& entry,
                                          absl::string_view source,
                                          size_t index) {
  const std::string path = absl::StrCat("[", index, "]");
  if (!entry.is_object()) {
    return Invalid(source, path,
                   absl::StrCat("expected an object, got ", entry.type_name()));
  }
  FeatureRecord feature;
  auto name = entry.find("name");
  if (name != entry.end()) {
    if (!name->is_string()) {
      return Invalid(source, path + ".name",
                     absl::StrCat("expected a string, got ", name->type_name()));
    }
    feature.name = name->get<std::string>();
    if (feature.name.size() > kMaxFeatureNameBytes) {
      return Invalid(source, path + ".name",
                     absl::StrFormat("%d bytes, longer than the limit of %d",
                                     feature.name.size(), kMaxFeatureNameBytes));
    }
  }
  auto location = entry.find("location");
  if (location == entry.end()) {
    return Invalid(source, path + ".location", "missing");
  }
  if (!location->is_object()) {
    return Invalid(source, path + ".location",
                   absl::StrCat("expected an object, got ",
                                location->type_name()));
  }
  const std::string location_path = path + ".location";
  auto latitude = ReadCoordinate(*location, "latitude", source, location_path);
  if (!latitude.ok()) return latitude.status();
  auto longitude = ReadCoordinate(*location, "longitude", source, location_path);
  if (!longitude.ok()) return longitude.status();
  feature.location = {*latitude, *longitude};
  if (absl::Status valid = ValidatePoint(feature.location, ""); !valid.ok()) {
    return Invalid(source, location_path, valid.message());
  }
  return feature;
}

// Finds the first key that appears twice in one JSON object, which
// nlohmann::json would otherwise resolve silently (the last one wins): a
// SAX pass of its own before the document is built (the parser's callback
// interface would do it in the same pass, but nlohmann 3.11 then scans the
// parent array at every object's end: quadratic, 28 s for 200k features).
// Names the key by path, "[3].location: duplicate key ...".
class DuplicateKeyFinder : public nlohmann::json_sax<Json> {
 public:
  // Empty when every key was unique (or the text is not JSON: the parse
  // proper reports that).
  const std::string& error() const { return error_; }

  bool null() override { return Value(); }
  bool boolean(bool) override { return Value(); }
  bool number_integer(number_integer_t) override { return Value(); }
  bool number_unsigned(number_unsigned_t) override { return Value(); }
  bool number_float(number_float_t, const string_t&) override { return Value(); }
  bool string(string_t&) override { return Value(); }
  bool binary(binary_t&) override { return Value(); }
  bool start_object(std::size_t) override { return Open(true); }
  bool start_array(std::size_t) override { return Open(false); }
  bool end_object() override { return Close(); }
  bool end_array() override { return Close(); }
  bool key(string_t& name) override {
    Frame& frame = frames_.back();
    frame.key = name;
    if (!frame.keys.insert(name).second) {
      error_ = absl::StrCat(frame.path.empty() ? "top level" : frame.path,
                            ": duplicate key \"", name, "\"");
      return false;  // The first one is enough.
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  struct Frame {
    bool object = false;
    std::string path;
    std::set<std::string> keys;
    size_t next_index = 0;
    std::string key;  // The member being read.
  };
  // The path of the value starting now, within the innermost container.
  std::string NextPath() {
    if (frames_.empty()) return "";
    Frame& parent = frames_.back();
    if (parent.object) return absl::StrCat(parent.path, ".", parent.key);
    return absl::StrCat(parent.path, "[", parent.next_index++, "]");
  }
  bool Value() {
    if (!frames_.empty() && !frames_.back().object) ++frames_.back().next_index;
    return true;
  }
  bool Open(bool object) {
    Frame frame;
    frame.object = object;
    frame.path = NextPath();
    frames_.push_back(std::move(frame));
    return true;
  }
  bool Close() {
    frames_.pop_back();
    return true;
  }

  std::vector<Frame> frames_;
  std::string error_;
};

}  // namespace

absl::StatusOr<std::vector<FeatureRecord>> ParseFeatureDb(
    absl::string_view json_text, absl::string_view source) {
  DuplicateKeyFinder duplicates;
  Json::sax_parse(json_text.begin(), json_text.end(), &duplicates,
                  nlohmann::detail::input_format_t::json, /*strict=*/true);
  if (!duplicates.error().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", duplicates.error()));
  }
  Json root;
  try {
    root = Json::parse(json_text.begin(), json_text.end());
  } catch (const Json::exception& error) {
    // Syntax errors (parse_error) and numbers too large for any C++ type
    // (out_of_range, "number overflow parsing '1e999'") alike. what() is
    // "[json.exception.KIND.N] <message>".
    absl::string_view message = error.what();
    if (size_t bracket = message.find("] "); bracket != message.npos) {
      message.remove_prefix(bracket + 2);
    }
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": not valid JSON: ", message));
  }
  if (!root.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": expected a JSON array of features, got ",
                     root.type_name()));
  }
  std::vector<FeatureRecord> features;
  features.reserve(root.size());
  // One feature per point: GetFeature could answer only one of several.
  absl::flat_hash_map<std::pair<int32_t, int32_t>, size_t> index_at;
  index_at.reserve(root.size());
  for (size_t i = 0; i < root.size(); ++i) {
    auto feature = ReadFeature(root[i], source, i);
    if (!feature.ok()) return feature.status();
    const auto [it, inserted] = index_at.try_emplace(
        std::make_pair(feature->location.latitude, feature->location.longitude), i);
    if (!inserted) {
      const FeatureRecord& first = features[it->second];
      return Invalid(
          source, absl::StrCat("[", i, "]"),
          absl::StrCat("at the same point as [", it->second, "] (latitude ",
                       feature->location.latitude, ", longitude ",
                       feature->location.longitude, "; names \"", first.name,
                       "\" and \"", feature->name,
                       "\"): each point holds one feature"));
    }
    features.push_back(*std::move(feature));
  }
  return features;
}

std::vector<FeatureRecord> FeaturesFromTable(const BuiltInFeature* rows,
                                             size_t count) {
  std::vector<FeatureRecord> features;
  features.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    features.push_back({std::string(rows[i].name),
                        GeoPoint{rows[i].latitude, rows[i].longitude}});
  }
  return features;
}

absl::StatusOr<std::vector<FeatureRecord>> DefaultFeatures() {
  return FeaturesFromTable(kBuiltInFeatures, kBuiltInFeatureCount);
}

absl::StatusOr<std::vector<FeatureRecord>> LoadFeatureDbFile(
    const std::string& path) {
  auto contents = ReadWholeFile(path);
  if (!contents.ok()) return contents.status();
  return ParseFeatureDb(*contents, path);
}

void AddFeatures(std::vector<FeatureRecord> features, FeatureStore& store) {
  for (FeatureRecord& feature : features) store.AddFeature(std::move(feature));
}

}  // namespace routeguide
