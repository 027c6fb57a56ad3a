#ifndef ROUTEGUIDE_COMMON_FEATURE_STORE_H_
#define ROUTEGUIDE_COMMON_FEATURE_STORE_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "geo.h"

namespace routeguide {

// A named place. An empty name is allowed: the tutorial's data has unnamed
// features, and they still count as stored points.
struct FeatureRecord {
  std::string name;
  GeoPoint location;
};

// A RouteChat message left at a point.
struct Note {
  GeoPoint location;
  std::string message;
};

struct FeatureStoreOptions {
  // Side of a spatial index cell, in E7 units (0.1 degree by default, so
  // the tutorial's 2x2 degree rectangle spans 400 cells).
  int32_t cell_size_e7 = 1000000;
  // RouteChat bounds: at most this many notes kept at one location, oldest
  // dropped first...
  size_t max_notes_per_location = 100;
  // ...and at most this many notes in all.
  size_t max_notes = 100000;
};

// The features and RouteChat notes shared by every call on every thread.
//
// Everything is split over kNumStripes stripes by spatial cell: a point's
// cell decides its stripe, and each stripe has its own absl::Mutex, so calls
// touching different stripes never wait for one another. Within a stripe:
// an exact-point hash map (O(1) lookup), a cell -> features index (so a
// rectangle query visits the cells it covers, not every feature), and the
// notes keyed by point.
//
// Note eviction: a location keeps its newest max_notes_per_location notes.
// When the store holds max_notes notes in all, adding one evicts the oldest
// note of its own stripe, or, when that stripe holds no other note, the
// oldest of the next stripe that has one. Eviction is thus oldest-first
// within a stripe rather than across the whole store: exact global order
// would need a global lock on every note. The total may pass max_notes by
// at most the number of threads adding notes at that instant.
//
// Thread-safe; every method may be called from any thread.
class FeatureStore {
 public:
  static constexpr size_t kNumStripes = 64;

  explicit FeatureStore(FeatureStoreOptions options = {});
  FeatureStore(const FeatureStore&) = delete;
  FeatureStore& operator=(const FeatureStore&) = delete;

  const FeatureStoreOptions& options() const { return options_; }

  // Stores a feature. Several features may share a point: a lookup finds
  // the first one stored, a rectangle returns them all (as the tutorial's
  // list-based server does).
  void AddFeature(FeatureRecord feature);

  // The first feature stored exactly at `point`, if any.
  std::optional<FeatureRecord> Find(const GeoPoint& point) const;
  // The insertion index (see IndexedFeature) of that feature, if any.
  std::optional<uint64_t> FindIndex(const GeoPoint& point) const;
  bool Contains(const GeoPoint& point) const;

  // Every feature inside `rect` (bounds inclusive), in the order they were
  // added. Visits min(cells covered, cells occupied) cells, so the cost
  // follows the answer's size rather than the store's.
  std::vector<FeatureRecord> FeaturesIn(const GeoRect& rect) const;

  // A feature with its insertion index: 0 for the first feature added,
  // then 1, 2, ... (a feature's index never changes).
  struct IndexedFeature {
    uint64_t index;
    FeatureRecord feature;
  };
  // FeaturesIn with each feature's index.
  std::vector<IndexedFeature> IndexedFeaturesIn(const GeoRect& rect) const;
  // Only the indexes of FeaturesIn, ascending: no feature is copied, so a
  // caller that keeps its own per-index data (the server keeps every
  // feature encoded once) pays for the lookup alone.
  std::vector<uint64_t> FeatureIndexesIn(const GeoRect& rect) const;
  // The same, unless more than `limit` features are inside: then nullopt,
  // having held at most `limit` indexes (a caller that must bound its
  // memory walks a large answer another way).
  std::optional<std::vector<uint64_t>> FeatureIndexesIn(const GeoRect& rect,
                                                        size_t limit) const;

  size_t feature_count() const {
    return feature_count_.load(std::memory_order_relaxed);
  }

  // Stores `note` and returns the notes kept at its location before it,
  // oldest first. Both happen under one lock, so two clients posting at the
  // same point each see exactly the notes stored before their own.
  std::vector<Note> AddNote(Note note);

  // The notes kept at `point`, oldest first.
  std::vector<Note> NotesAt(const GeoPoint& point) const;

  size_t note_count() const {
    return note_count_.load(std::memory_order_relaxed);
  }

 private:
  struct StoredFeature {
    uint64_t sequence;  // The insertion index, for stable answers.
    FeatureRecord feature;
  };
  struct StoredNote {
    uint64_t sequence;  // Insertion order within the stripe.
    std::string message;
  };
  // One stripe; aligned so neighbouring stripes' locks share no cache line.
  struct alignas(64) Stripe {
    mutable absl::Mutex mu;
    std::vector<StoredFeature> features ABSL_GUARDED_BY(mu);
    // Point key -> index in `features` of the first feature there.
    absl::flat_hash_map<uint64_t, uint32_t> by_point ABSL_GUARDED_BY(mu);
    // Cell key -> indexes in `features`.
    absl::flat_hash_map<uint64_t, std::vector<uint32_t>> by_cell
        ABSL_GUARDED_BY(mu);
    // Point key -> notes there, oldest first.
    absl::flat_hash_map<uint64_t, std::deque<StoredNote>> notes
        ABSL_GUARDED_BY(mu);
    // (point key, sequence) of every note in insertion order, to find the
    // stripe's oldest. Entries of notes already dropped by the per-location
    // bound linger until compacted.
    std::deque<std::pair<uint64_t, uint64_t>> note_order ABSL_GUARDED_BY(mu);
    uint64_t next_note_sequence ABSL_GUARDED_BY(mu) = 0;
    size_t notes_kept ABSL_GUARDED_BY(mu) = 0;
  };

  static uint64_t PointKey(const GeoPoint& p);
  int64_t CellOf(int32_t coordinate) const;
  static uint64_t CellKey(int64_t cell_lat, int64_t cell_lon);
  static size_t StripeOfCell(uint64_t cell_key);
  uint64_t CellKeyOf(const GeoPoint& p) const;
  Stripe& StripeOf(const GeoPoint& p);
  const Stripe& StripeOf(const GeoPoint& p) const;

  // Calls visit(const StoredFeature&) for every feature inside `rect`, in
  // no particular order, with its stripe's lock held (shared). Stops early,
  // between cells, once `*stop` (when given) is true.
  template <typename Visit>
  void ForEachIn(const GeoRect& rect, Visit&& visit, const bool* stop = nullptr) const;
  // ForEachIn's step for one cell: the features at `indexes` inside `rect`.
  template <typename Visit>
  static void VisitCellLocked(const Stripe& stripe,
                              const std::vector<uint32_t>& indexes,
                              const GeoRect& rect, Visit& visit)
      ABSL_SHARED_LOCKS_REQUIRED(stripe.mu);
  // Drops the stripe's oldest note; false when it has none.
  static bool EvictOldestLocked(Stripe& stripe)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(stripe.mu);
  // Drops note_order entries of notes no longer kept, when they pile up.
  static void MaybeCompactLocked(Stripe& stripe)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(stripe.mu);
  // Evicts one note from some stripe other than `skip`.
  void EvictFromOtherStripe(size_t skip);

  const FeatureStoreOptions options_;
  std::array<Stripe, kNumStripes> stripes_;
  std::atomic<uint64_t> next_feature_sequence_{0};
  std::atomic<size_t> feature_count_{0};
  std::atomic<size_t> occupied_cells_{0};
  std::atomic<size_t> note_count_{0};
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_COMMON_FEATURE_STORE_H_
