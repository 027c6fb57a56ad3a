#ifndef ROUTEGUIDE_CLIENT_EXPECTED_ANSWERS_H_
#define ROUTEGUIDE_CLIENT_EXPECTED_ANSWERS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "feature_store.h"
#include "geo.h"
#include "route_guide.pb.h"

namespace routeguide {

// Order-independent fingerprint of a feature: a streamed answer is checked
// by summing the fingerprints of what arrives, without keeping it.
uint64_t FeatureHash(int32_t latitude, int32_t longitude,
                     absl::string_view name);

// The features the server told us about at the start of a load run,
// indexed for working out the right answer to each call.
//
// Filled once by Add then Seal, before any call is generated; after that
// it is only read, by every thread, without locks.
class KnownFeatures {
 public:
  void Add(const Feature& feature);
  // After the last Add: sorts the latitude index.
  void Seal();

  // How many features lie in `rect`, and the sum of their FeatureHash.
  void Expect(const GeoRect& rect, uint64_t* count, uint64_t* hash) const;
  // The first feature stored at the point, or null.
  const FeatureRecord* Find(const Point& point) const;

  size_t size() const { return features_.size(); }
  const FeatureRecord& at(size_t i) const { return features_[i]; }

 private:
  struct Located {
    GeoPoint location;
    uint64_t hash;
  };
  std::vector<FeatureRecord> features_;
  absl::flat_hash_map<uint64_t, size_t> by_point_;  // Into features_.
  std::vector<Located> by_latitude_;
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_CLIENT_EXPECTED_ANSWERS_H_
