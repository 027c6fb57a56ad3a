// Unit tests of common/feature_store's RouteChat notes: order, the
// per-location and total bounds, eviction, and the store under concurrent
// use.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <future>
#include <limits>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "catch2/catch.hpp"
#include "geo_string_maker.h"
#include "feature_store.h"
#include "geo.h"
#include "store_test_util.h"

namespace routeguide {
namespace {

TEST_CASE("AddNote returns the earlier notes at its location, oldest first",
          "[store]") {
  FeatureStore store;
  const GeoPoint p{407838351, -746143763};
  const GeoPoint q{407838352, -746143763};  // Same cell, another location.

  CHECK(store.AddNote({p, "p1"}).empty());
  CHECK(store.AddNote({q, "q1"}).empty());
  CHECK(Messages(store.AddNote({p, "p2"})) == std::vector<std::string>{"p1"});
  const std::vector<Note> before_p3 = store.AddNote({p, "p3"});
  CHECK(Messages(before_p3) == std::vector<std::string>{"p1", "p2"});
  for (const Note& note : before_p3) CHECK(note.location == p);
  CHECK(Messages(store.AddNote({q, "q2"})) == std::vector<std::string>{"q1"});

  CHECK(Messages(store.NotesAt(p)) ==
        std::vector<std::string>{"p1", "p2", "p3"});
  CHECK(Messages(store.NotesAt(q)) == std::vector<std::string>{"q1", "q2"});
  for (const Note& note : store.NotesAt(q)) CHECK(note.location == q);
  CHECK(store.NotesAt({0, 0}).empty());
  CHECK(store.note_count() == 5);
  // Notes are not features.
  CHECK(store.feature_count() == 0);
  CHECK_FALSE(store.Contains(p));
}

TEST_CASE("max_notes_per_location keeps only the newest notes at a location",
          "[store]") {
  const size_t limit = GENERATE(1u, 3u, 7u);
  CAPTURE(limit);
  FeatureStore store(FeatureStoreOptions{1000000, limit, 100000});
  const GeoPoint p{-337000000, 1512000000};
  const GeoPoint other{-337000000, 1512000001};
  store.AddNote({other, "other"});

  std::vector<std::string> all;
  for (int i = 0; i < 20; ++i) {
    const std::vector<std::string> previous =
        Messages(store.AddNote({p, "n" + std::to_string(i)}));
    // The newest `limit` of the notes added before this one.
    const std::vector<std::string> expected(
        all.end() - static_cast<std::ptrdiff_t>(std::min(all.size(), limit)),
        all.end());
    CAPTURE(i);
    CHECK(previous == expected);
    all.push_back("n" + std::to_string(i));
  }
  const std::vector<std::string> newest(
      all.end() - static_cast<std::ptrdiff_t>(limit), all.end());
  CHECK(Messages(store.NotesAt(p)) == newest);
  CHECK(Messages(store.NotesAt(other)) == std::vector<std::string>{"other"});
  CHECK(store.note_count() == limit + 1);
}

TEST_CASE("max_notes_per_location of zero keeps no notes", "[store]") {
  FeatureStore store(FeatureStoreOptions{1000000, 0, 100000});
  const GeoPoint p{1, 1};
  bool all_empty = true;
  for (int i = 0; i < 500; ++i) {
    all_empty = all_empty && store.AddNote({p, std::to_string(i)}).empty();
    all_empty = all_empty && store.AddNote({{2, 2}, "x"}).empty();
  }
  CHECK(all_empty);
  CHECK(store.NotesAt(p).empty());
  CHECK(store.note_count() == 0);
}

TEST_CASE("max_notes caps the total and always keeps the note just added",
          "[store]") {
  const size_t max_notes = GENERATE(1u, 2u, 10u);
  CAPTURE(max_notes);
  FeatureStore store(FeatureStoreOptions{1000000, 100, max_notes});

  // 97 locations spread over the world, so over many stripes; each visited
  // several times in a scrambled order.
  std::vector<GeoPoint> locations;
  for (int i = 0; i < 97; ++i) {
    locations.push_back(
        {-890000000 + i * 18350000,
         static_cast<int32_t>(1790000000 - int64_t{i} * 36900000)});
  }
  bool bounded = true;
  bool newest_kept = true;
  size_t max_seen = 0;
  for (int i = 0; i < 1000; ++i) {
    const GeoPoint& at = locations[(static_cast<size_t>(i) * 31) % 97];
    const std::string message = "m" + std::to_string(i);
    store.AddNote({at, message});
    max_seen = std::max(max_seen, store.note_count());
    bounded = bounded && store.note_count() <= max_notes;
    const std::vector<Note> there = store.NotesAt(at);
    newest_kept = newest_kept && !there.empty() &&
                  there.back().message == message;
  }
  CAPTURE(max_seen);
  CHECK(bounded);
  CHECK(newest_kept);
  CHECK(store.note_count() == max_notes);

  // The count matches the notes actually kept.
  size_t kept = 0;
  for (const GeoPoint& at : locations) kept += store.NotesAt(at).size();
  CHECK(kept == store.note_count());
}

// A model of one stripe's notes: the store evicts oldest-first within a
// stripe, and points in one cell share a stripe.
class NoteModel {
 public:
  NoteModel(size_t per_location, size_t max_notes)
      : per_location_(per_location), max_notes_(max_notes) {}

  std::vector<std::string> Add(int location, std::string message) {
    std::vector<std::string> previous = At(location);
    notes_.emplace_back(location, std::move(message));
    if (previous.size() + 1 > per_location_) {
      Erase(std::find_if(notes_.begin(), notes_.end(),
                         [&](const auto& n) { return n.first == location; }));
    } else if (notes_.size() > max_notes_ && notes_.size() > 1) {
      Erase(notes_.begin());
    }
    return previous;
  }

  std::vector<std::string> At(int location) const {
    std::vector<std::string> messages;
    for (const auto& [at, message] : notes_) {
      if (at == location) messages.push_back(message);
    }
    return messages;
  }

  size_t size() const { return notes_.size(); }

 private:
  void Erase(std::deque<std::pair<int, std::string>>::iterator it) {
    notes_.erase(it);
  }

  size_t per_location_;
  size_t max_notes_;
  std::deque<std::pair<int, std::string>> notes_;  // Oldest first.
};

TEST_CASE("Notes in one stripe are evicted oldest first", "[store]") {
  // hot_percent of the notes go to location 0. A busy location leaves many
  // dropped notes behind in the eviction order, which must be skipped or
  // compacted away without losing the other locations' oldest notes.
  const auto [per_location, max_notes, hot_percent] =
      GENERATE(table<size_t, size_t, uint32_t>({{1, 1, 0},
                                                {1, 3, 0},
                                                {2, 3, 0},
                                                {5, 10, 0},
                                                {3, 50, 0},
                                                {100, 7, 0},
                                                {2, 100000, 0},
                                                {2, 5, 98},
                                                {1, 4, 95},
                                                {3, 10, 99}}));
  CAPTURE(per_location, max_notes, hot_percent);
  FeatureStore store(FeatureStoreOptions{1000000, per_location, max_notes});
  NoteModel model(per_location, max_notes);

  // Six points inside the cell [0, 1000000) x [0, 1000000).
  constexpr int kLocations = 6;
  auto point = [](int location) {
    return GeoPoint{123456 + location, 654321 - 7 * location};
  };
  std::mt19937 rng(7u);
  bool previous_match = true;
  bool count_match = true;
  for (int i = 0; i < 3000; ++i) {
    const int location = rng() % 100 < hot_percent
                             ? 0
                             : static_cast<int>(rng() % kLocations);
    const std::string message = "m" + std::to_string(i);
    const std::vector<std::string> expected = model.Add(location, message);
    const std::vector<std::string> actual =
        Messages(store.AddNote({point(location), message}));
    if (actual != expected && previous_match) {
      previous_match = false;
      CAPTURE(i, location, expected, actual);
      FAIL_CHECK("AddNote returned other notes than the model");
    }
    count_match = count_match && store.note_count() == model.size();
  }
  CHECK(previous_match);
  CHECK(count_match);
  for (int location = 0; location < kLocations; ++location) {
    CAPTURE(location);
    CHECK(Messages(store.NotesAt(point(location))) == model.At(location));
  }
}

TEST_CASE("FeatureStore stays consistent under concurrent use", "[store]") {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 300;
  constexpr size_t kPerLocation = 5;
  constexpr size_t kMaxNotes = 64;
  FeatureStore store(FeatureStoreOptions{1000000, kPerLocation, kMaxNotes});

  auto feature_point = [](int thread, int i) {
    return GeoPoint{-400000000 + thread * 100000000 + i * 200000,
                    -750000000 + i * 3000000};
  };
  auto feature_name = [](int thread, int i) {
    return "t" + std::to_string(thread) + "-" + std::to_string(i);
  };
  // Shared locations every thread posts to, plus one of each thread's own.
  const std::vector<GeoPoint> shared = {
      {0, 0}, {1, 0}, {407838351, -746143763}, {-337000000, 1512000000}};
  auto own_location = [](int thread) { return GeoPoint{thread, 77}; };

  std::atomic<int> find_failures{0};
  std::atomic<int> query_failures{0};
  std::atomic<int> order_failures{0};
  std::atomic<int> note_failures{0};
  std::atomic<size_t> max_note_count{0};
  std::promise<void> start;
  std::shared_future<void> started = start.get_future().share();

  auto work = [&](int thread) {
    started.wait();
    const std::string prefix = "t" + std::to_string(thread) + ":";
    for (int i = 0; i < kPerThread; ++i) {
      const GeoPoint p = feature_point(thread, i);
      store.AddFeature({feature_name(thread, i), p});

      const std::optional<FeatureRecord> found = store.Find(p);
      if (!found || found->name != feature_name(thread, i)) ++find_failures;

      // A small rectangle around the point just added.
      const std::vector<FeatureRecord> near = store.FeaturesIn(
          GeoRect::FromCorners({p.latitude - 1000, p.longitude - 1000},
                               {p.latitude + 1000, p.longitude + 1000}));
      if (std::none_of(near.begin(), near.end(), [&](const FeatureRecord& f) {
            return f.name == feature_name(thread, i);
          })) {
        ++query_failures;
      }

      // Now and then the whole world: all of this thread's features so far,
      // in the order this thread added them.
      if (i % 30 == 0) {
        const std::vector<FeatureRecord> world = store.FeaturesIn(
            GeoRect::FromCorners({-kMaxLatitudeE7, -kMaxLongitudeE7},
                                 {kMaxLatitudeE7, kMaxLongitudeE7}));
        int next = 0;
        for (const FeatureRecord& f : world) {
          if (next <= i && f.name == feature_name(thread, next)) ++next;
        }
        if (next != i + 1) ++order_failures;
      }

      // Notes: this thread's notes at a location must come back in the
      // order it posted them.
      const GeoPoint at = i % 3 == 0 ? own_location(thread)
                                     : shared[static_cast<size_t>(i) % 4];
      const std::vector<Note> previous =
          store.AddNote({at, prefix + std::to_string(i)});
      if (previous.size() > kPerLocation) ++note_failures;
      int last_mine = -1;
      for (const Note& note : previous) {
        if (note.location != at) ++note_failures;
        if (note.message.compare(0, prefix.size(), prefix) == 0) {
          const int n = std::stoi(note.message.substr(prefix.size()));
          if (n <= last_mine || n >= i) ++note_failures;
          last_mine = n;
        }
      }
      size_t seen = store.note_count();
      size_t max = max_note_count.load();
      while (seen > max && !max_note_count.compare_exchange_weak(max, seen)) {
      }
    }
  };

  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(work, t);
  start.set_value();
  for (std::thread& thread : threads) thread.join();

  CHECK(find_failures.load() == 0);
  CHECK(query_failures.load() == 0);
  CHECK(order_failures.load() == 0);
  CHECK(note_failures.load() == 0);
  CHECK(max_note_count.load() <= kMaxNotes + kThreads);

  CHECK(store.feature_count() == static_cast<size_t>(kThreads * kPerThread));
  bool all_found = true;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      const std::optional<FeatureRecord> found = store.Find(feature_point(t, i));
      all_found = all_found && found && found->name == feature_name(t, i);
    }
  }
  CHECK(all_found);
  const std::vector<FeatureRecord> world = store.FeaturesIn(
      GeoRect::FromCorners({kInt32Min, kInt32Min}, {kInt32Max, kInt32Max}));
  CHECK(world.size() == static_cast<size_t>(kThreads * kPerThread));

  size_t kept = 0;
  std::vector<GeoPoint> note_locations = shared;
  for (int t = 0; t < kThreads; ++t) note_locations.push_back(own_location(t));
  for (const GeoPoint& at : note_locations) {
    const size_t here = store.NotesAt(at).size();
    CAPTURE(at, here);
    CHECK(here <= kPerLocation);
    kept += here;
  }
  CHECK(kept == store.note_count());
  CHECK(store.note_count() <= kMaxNotes + kThreads);
  CHECK(store.note_count() > 0);
}

}  // namespace
}  // namespace routeguide
