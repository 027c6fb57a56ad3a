#ifndef ROUTEGUIDE_COMMON_DB_LOADER_H_
#define ROUTEGUIDE_COMMON_DB_LOADER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "feature_store.h"

namespace routeguide {

// The tutorial's 100 features (data/route_guide_db.json), built in: the
// file's text, and the same features as a table made from it at build time
// (common/embed_features.py), so that start-up parses no JSON.
extern const std::string_view kDefaultFeatureDbJson;
struct BuiltInFeature {
  int32_t latitude;
  int32_t longitude;
  std::string_view name;
};
extern const BuiltInFeature kBuiltInFeatures[];
extern const size_t kBuiltInFeatureCount;

// Longest feature name a database may hold.
inline constexpr size_t kMaxFeatureNameBytes = 4096;

// Parses a database in the tutorial's format:
//   [{"location": {"latitude": 407838351, "longitude": -746143763},
//     "name": "Patriots Path, Mendham, NJ 07945, USA"}, ...]
// "name" may be absent (an unnamed feature). On error, INVALID_ARGUMENT whose
// message starts with `source` and says where the input is wrong (line and
// column for bad JSON, a path such as [3].location.latitude otherwise).
absl::StatusOr<std::vector<FeatureRecord>> ParseFeatureDb(
    absl::string_view json_text, absl::string_view source);

// The features of a table that common/embed_features.py generated.
std::vector<FeatureRecord> FeaturesFromTable(const BuiltInFeature* rows,
                                             size_t count);

// The built-in database, from its table: what ParseFeatureDb makes of
// kDefaultFeatureDbJson (db_loader_test checks that it is).
absl::StatusOr<std::vector<FeatureRecord>> DefaultFeatures();

// Reads and parses the file at `path`; NOT_FOUND (or another error naming
// the file) when it cannot be read.
absl::StatusOr<std::vector<FeatureRecord>> LoadFeatureDbFile(
    const std::string& path);

// Adds every feature to the store.
void AddFeatures(std::vector<FeatureRecord> features, FeatureStore& store);

}  // namespace routeguide

#endif  // ROUTEGUIDE_COMMON_DB_LOADER_H_
