#ifndef ROUTEGUIDE_SERVER_FEATURE_WIRE_CACHE_H_
#define ROUTEGUIDE_SERVER_FEATURE_WIRE_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "feature_store.h"
#include "grpcpp/support/slice.h"
#include "wire_messages.h"

namespace routeguide {

// Every feature of the store encoded once as a routeguide.Feature, by its
// insertion index, so streaming a feature costs a slice reference instead
// of a copy of the record and a protobuf encoding (ListFeatures sends each
// feature many times over).
//
// The encodings lie back to back in one reference-counted buffer; a
// message is a sub-slice of it, so gRPC's transport shares the buffer
// rather than copying. Features added after the last encoding are picked
// up by encoding the store again, into a new buffer (streams still
// sending from the old one keep it alive).
//
// Thread-safe.
class FeatureWireCache {
 public:
  // One encoding of the store, immutable.
  class Snapshot {
   public:
    // Every index below size() is encoded. (A feature still being added
    // while the store was encoded can leave a gap; size() stops there.)
    size_t size() const { return complete_; }
    // The feature at `index` as one serialized message, or false when this
    // snapshot lacks it.
    bool Get(uint64_t index, EncodedMessage* out) const;
    // Appends to `found` the indexes from `from` on (ascending) whose
    // feature lies inside `rect`, stopping once it has appended
    // `max_found` or reached size(). Returns where to go on from.
    // Bounded memory for an answer of any size: a cursor, not a list.
    uint64_t Scan(const GeoRect& rect, uint64_t from, size_t max_found,
                  std::vector<uint64_t>* found) const;

   private:
    friend class FeatureWireCache;
    grpc::Slice bytes_;
    // Per index: where its encoding starts and ends in bytes_ (begin -1
    // for an index the store had not yet filled in when encoded).
    std::vector<int64_t> begin_;
    std::vector<int64_t> end_;
    std::vector<GeoPoint> locations_;  // Per index, for Scan.
    size_t complete_ = 0;
  };

  explicit FeatureWireCache(const FeatureStore* store);

  // The feature at `index` as one serialized message, encoding the store
  // again if the current snapshot predates it; false when the store has no
  // such index. What GetFeature needs: a shared lock and a slice reference
  // per call, no exclusive lock and no snapshot reference.
  bool Get(uint64_t index, EncodedMessage* out) ABSL_LOCKS_EXCLUDED(mu_);

  // A snapshot that holds every index below `count`, encoding the store
  // again if the current one is older.
  std::shared_ptr<const Snapshot> Covering(uint64_t count)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  std::shared_ptr<const Snapshot> Encode() const;

  const FeatureStore* const store_;
  absl::Mutex mu_;
  std::shared_ptr<const Snapshot> current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_FEATURE_WIRE_CACHE_H_
