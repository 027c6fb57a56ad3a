#include "feature_store.h"

#include <algorithm>
#include <limits>

namespace routeguide {
namespace {

// Floor division, so cells left of and below zero are whole cells too.
int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// splitmix64's finalizer: spreads neighbouring cells over the stripes.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

FeatureStore::FeatureStore(FeatureStoreOptions options)
    : options_(std::move(options)) {}

uint64_t FeatureStore::PointKey(const GeoPoint& p) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(p.latitude)) << 32) |
         static_cast<uint32_t>(p.longitude);
}

int64_t FeatureStore::CellOf(int32_t coordinate) const {
  return FloorDiv(coordinate, options_.cell_size_e7);
}

uint64_t FeatureStore::CellKey(int64_t cell_lat, int64_t cell_lon) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(cell_lat)) << 32) |
         static_cast<uint32_t>(cell_lon);
}

size_t FeatureStore::StripeOfCell(uint64_t cell_key) {
  return Mix(cell_key) % kNumStripes;
}

uint64_t FeatureStore::CellKeyOf(const GeoPoint& p) const {
  return CellKey(CellOf(p.latitude), CellOf(p.longitude));
}

FeatureStore::Stripe& FeatureStore::StripeOf(const GeoPoint& p) {
  return stripes_[StripeOfCell(CellKeyOf(p))];
}

const FeatureStore::Stripe& FeatureStore::StripeOf(const GeoPoint& p) const {
  return stripes_[StripeOfCell(CellKeyOf(p))];
}

void FeatureStore::AddFeature(FeatureRecord feature) {
  const uint64_t cell = CellKeyOf(feature.location);
  Stripe& stripe = stripes_[StripeOfCell(cell)];
  const uint64_t sequence =
      next_feature_sequence_.fetch_add(1, std::memory_order_relaxed);
  absl::MutexLock lock(&stripe.mu);
  const auto index = static_cast<uint32_t>(stripe.features.size());
  stripe.by_point.try_emplace(PointKey(feature.location), index);
  auto [cell_it, new_cell] = stripe.by_cell.try_emplace(cell);
  cell_it->second.push_back(index);
  stripe.features.push_back({sequence, std::move(feature)});
  if (new_cell) occupied_cells_.fetch_add(1, std::memory_order_relaxed);
  feature_count_.fetch_add(1, std::memory_order_relaxed);
}

std::optional<FeatureRecord> FeatureStore::Find(const GeoPoint& point) const {
  const Stripe& stripe = StripeOf(point);
  absl::ReaderMutexLock lock(&stripe.mu);
  auto it = stripe.by_point.find(PointKey(point));
  if (it == stripe.by_point.end()) return std::nullopt;
  return stripe.features[it->second].feature;
}

std::optional<uint64_t> FeatureStore::FindIndex(const GeoPoint& point) const {
  const Stripe& stripe = StripeOf(point);
  absl::ReaderMutexLock lock(&stripe.mu);
  auto it = stripe.by_point.find(PointKey(point));
  if (it == stripe.by_point.end()) return std::nullopt;
  return stripe.features[it->second].sequence;
}

bool FeatureStore::Contains(const GeoPoint& point) const {
  const Stripe& stripe = StripeOf(point);
  absl::ReaderMutexLock lock(&stripe.mu);
  return stripe.by_point.contains(PointKey(point));
}

template <typename Visit>
void FeatureStore::VisitCellLocked(const Stripe& stripe,
                                   const std::vector<uint32_t>& indexes,
                                   const GeoRect& rect, Visit& visit) {
  for (uint32_t index : indexes) {
    const StoredFeature& stored = stripe.features[index];
    if (rect.Contains(stored.feature.location)) visit(stored);
  }
}

template <typename Visit>
void FeatureStore::ForEachIn(const GeoRect& rect, Visit&& visit, const bool* stop) const {
  const auto stopped = [stop] { return stop != nullptr && *stop; };
  const int64_t lat_lo = CellOf(rect.lo.latitude);
  const int64_t lat_hi = CellOf(rect.hi.latitude);
  const int64_t lon_lo = CellOf(rect.lo.longitude);
  const int64_t lon_hi = CellOf(rect.hi.longitude);
  const auto lat_cells = static_cast<uint64_t>(lat_hi - lat_lo + 1);
  const auto lon_cells = static_cast<uint64_t>(lon_hi - lon_lo + 1);
  // Each factor is at most 2^32, so the product can reach 2^64 (cell size 1,
  // all of int32): saturate rather than wrap to 0.
  constexpr uint64_t kMaxCells = std::numeric_limits<uint64_t>::max();
  const uint64_t covered =
      lat_cells != 0 && lon_cells > kMaxCells / lat_cells
          ? kMaxCells
          : lat_cells * lon_cells;

  if (covered > occupied_cells_.load(std::memory_order_relaxed)) {
    // A large rectangle: walking the occupied cells is cheaper than walking
    // the covered ones.
    for (const Stripe& stripe : stripes_) {
      if (stopped()) return;
      absl::ReaderMutexLock lock(&stripe.mu);
      for (const auto& [cell, indexes] : stripe.by_cell) {
        if (stopped()) return;
        const auto cell_lat = static_cast<int32_t>(cell >> 32);
        const auto cell_lon = static_cast<int32_t>(cell & 0xffffffffu);
        if (cell_lat < lat_lo || cell_lat > lat_hi || cell_lon < lon_lo ||
            cell_lon > lon_hi) {
          continue;
        }
        VisitCellLocked(stripe, indexes, rect, visit);
      }
    }
  } else {
    // Group the covered cells by stripe so each stripe is locked once.
    std::vector<std::pair<size_t, uint64_t>> cells;
    cells.reserve(covered);
    for (int64_t lat = lat_lo; lat <= lat_hi; ++lat) {
      for (int64_t lon = lon_lo; lon <= lon_hi; ++lon) {
        const uint64_t key = CellKey(lat, lon);
        cells.emplace_back(StripeOfCell(key), key);
      }
    }
    std::sort(cells.begin(), cells.end());
    for (size_t i = 0; i < cells.size();) {
      if (stopped()) return;
      const Stripe& stripe = stripes_[cells[i].first];
      absl::ReaderMutexLock lock(&stripe.mu);
      for (; i < cells.size() && &stripes_[cells[i].first] == &stripe; ++i) {
        if (stopped()) return;
        auto it = stripe.by_cell.find(cells[i].second);
        if (it != stripe.by_cell.end()) {
          VisitCellLocked(stripe, it->second, rect, visit);
        }
      }
    }
  }
}

std::vector<FeatureStore::IndexedFeature> FeatureStore::IndexedFeaturesIn(
    const GeoRect& rect) const {
  std::vector<IndexedFeature> found;
  ForEachIn(rect, [&found](const StoredFeature& stored) {
    found.push_back({stored.sequence, stored.feature});
  });
  // Answer in insertion order, whatever the cells' order was.
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.index < b.index; });
  return found;
}

std::vector<FeatureRecord> FeatureStore::FeaturesIn(const GeoRect& rect) const {
  std::vector<IndexedFeature> found = IndexedFeaturesIn(rect);
  std::vector<FeatureRecord> result;
  result.reserve(found.size());
  for (IndexedFeature& entry : found) result.push_back(std::move(entry.feature));
  return result;
}

std::vector<uint64_t> FeatureStore::FeatureIndexesIn(const GeoRect& rect) const {
  std::vector<uint64_t> found;
  ForEachIn(rect, [&found](const StoredFeature& stored) {
    found.push_back(stored.sequence);
  });
  std::sort(found.begin(), found.end());
  return found;
}

std::optional<std::vector<uint64_t>> FeatureStore::FeatureIndexesIn(
    const GeoRect& rect, size_t limit) const {
  std::vector<uint64_t> found;
  bool over = false;
  ForEachIn(
      rect,
      [&found, &over, limit](const StoredFeature& stored) {
        if (found.size() < limit) {
          found.push_back(stored.sequence);
        } else {
          over = true;
        }
      },
      &over);
  if (over) return std::nullopt;
  std::sort(found.begin(), found.end());
  return found;
}

std::vector<Note> FeatureStore::AddNote(Note note) {
  const size_t stripe_index = StripeOfCell(CellKeyOf(note.location));
  Stripe& stripe = stripes_[stripe_index];
  const uint64_t key = PointKey(note.location);
  std::vector<Note> previous;
  bool over_budget = false;
  {
    absl::MutexLock lock(&stripe.mu);
    std::deque<StoredNote>& kept = stripe.notes[key];
    previous.reserve(kept.size());
    for (const StoredNote& stored : kept) {
      previous.push_back({note.location, stored.message});
    }
    const uint64_t sequence = stripe.next_note_sequence++;
    kept.push_back({sequence, std::move(note.message)});
    stripe.note_order.emplace_back(key, sequence);
    if (kept.size() > options_.max_notes_per_location) {
      kept.pop_front();  // Its note_order entry goes stale.
      // A bound of 0 empties the location; drop it, as eviction does, since
      // compaction and eviction read front() of every location they find.
      if (kept.empty()) stripe.notes.erase(key);
    } else {
      ++stripe.notes_kept;
      over_budget = note_count_.fetch_add(1, std::memory_order_relaxed) + 1 >
                    options_.max_notes;
      // Never evict the note just added: it is the newest, not the oldest.
      if (over_budget && stripe.notes_kept > 1 && EvictOldestLocked(stripe)) {
        note_count_.fetch_sub(1, std::memory_order_relaxed);
        over_budget = false;
      }
    }
    MaybeCompactLocked(stripe);
  }
  if (over_budget) EvictFromOtherStripe(stripe_index);
  return previous;
}

std::vector<Note> FeatureStore::NotesAt(const GeoPoint& point) const {
  const Stripe& stripe = StripeOf(point);
  absl::ReaderMutexLock lock(&stripe.mu);
  std::vector<Note> notes;
  auto it = stripe.notes.find(PointKey(point));
  if (it == stripe.notes.end()) return notes;
  for (const StoredNote& stored : it->second) {
    notes.push_back({point, stored.message});
  }
  return notes;
}

bool FeatureStore::EvictOldestLocked(Stripe& stripe) {
  while (!stripe.note_order.empty()) {
    const auto [key, sequence] = stripe.note_order.front();
    stripe.note_order.pop_front();
    auto it = stripe.notes.find(key);
    // Notes only ever leave from the front of their location, so the entry
    // is live exactly when it names that front note.
    if (it == stripe.notes.end() || it->second.front().sequence != sequence) {
      continue;
    }
    it->second.pop_front();
    if (it->second.empty()) stripe.notes.erase(it);
    --stripe.notes_kept;
    return true;
  }
  return false;
}

void FeatureStore::MaybeCompactLocked(Stripe& stripe) {
  if (stripe.note_order.size() <= 2 * stripe.notes_kept + 64) return;
  std::deque<std::pair<uint64_t, uint64_t>> live;
  for (const auto& entry : stripe.note_order) {
    auto it = stripe.notes.find(entry.first);
    if (it != stripe.notes.end() && it->second.front().sequence <= entry.second) {
      live.push_back(entry);
    }
  }
  stripe.note_order.swap(live);
}

void FeatureStore::EvictFromOtherStripe(size_t skip) {
  for (size_t step = 1; step < kNumStripes; ++step) {
    Stripe& stripe = stripes_[(skip + step) % kNumStripes];
    absl::MutexLock lock(&stripe.mu);
    if (EvictOldestLocked(stripe)) {
      note_count_.fetch_sub(1, std::memory_order_relaxed);
      return;
    }
  }
  // Every other stripe is empty: the store holds only the notes of one
  // stripe, so the total is within the bound already.
}

}  // namespace routeguide
