#include "feature_wire_cache.h"

#include <limits>
#include <string>
#include <utility>

#include "geo.h"

namespace routeguide {

bool FeatureWireCache::Snapshot::Get(uint64_t index,
                                     EncodedMessage* out) const {
  if (index >= begin_.size() || begin_[index] < 0) return false;
  out->bytes = bytes_.sub(static_cast<size_t>(begin_[index]),
                          static_cast<size_t>(end_[index]));
  return true;
}

uint64_t FeatureWireCache::Snapshot::Scan(const GeoRect& rect, uint64_t from,
                                          size_t max_found,
                                          std::vector<uint64_t>* found) const {
  size_t added = 0;
  uint64_t index = from;
  for (; index < complete_ && added < max_found; ++index) {
    if (rect.Contains(locations_[index])) {
      found->push_back(index);
      ++added;
    }
  }
  return index;
}

FeatureWireCache::FeatureWireCache(const FeatureStore* store)
    : store_(store), current_(Encode()) {}

bool FeatureWireCache::Get(uint64_t index, EncodedMessage* out) {
  {
    absl::ReaderMutexLock lock(&mu_);
    if (index < current_->size()) return current_->Get(index, out);
  }
  return Covering(index + 1)->Get(index, out);
}

std::shared_ptr<const FeatureWireCache::Snapshot> FeatureWireCache::Covering(
    uint64_t count) {
  {
    // Calls share the snapshot; only a store that grew since takes the
    // lock exclusively.
    absl::ReaderMutexLock lock(&mu_);
    if (current_->size() >= count) return current_;
  }
  absl::MutexLock lock(&mu_);
  if (current_->size() < count) current_ = Encode();
  return current_;
}

std::shared_ptr<const FeatureWireCache::Snapshot> FeatureWireCache::Encode()
    const {
  const GeoRect everything = GeoRect::FromCorners(
      {std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::min()},
      {std::numeric_limits<int32_t>::max(), std::numeric_limits<int32_t>::max()});
  const std::vector<FeatureStore::IndexedFeature> features =
      store_->IndexedFeaturesIn(everything);
  auto snapshot = std::make_shared<Snapshot>();
  const uint64_t count = features.empty() ? 0 : features.back().index + 1;
  snapshot->begin_.assign(count, -1);
  snapshot->end_.assign(count, -1);
  snapshot->locations_.assign(count, GeoPoint{});
  std::string bytes;
  for (const FeatureStore::IndexedFeature& entry : features) {
    snapshot->begin_[entry.index] = static_cast<int64_t>(bytes.size());
    snapshot->locations_[entry.index] = entry.feature.location;
    AppendFeature(entry.feature, &bytes);
    snapshot->end_[entry.index] = static_cast<int64_t>(bytes.size());
  }
  snapshot->bytes_ = grpc::Slice(std::move(bytes));
  while (snapshot->complete_ < count && snapshot->begin_[snapshot->complete_] >= 0) {
    ++snapshot->complete_;
  }
  return snapshot;
}

}  // namespace routeguide
