// Unit tests of common/feature_store: exact lookups, rectangle queries
// (checked against a brute-force filter), RouteChat notes and their bounds,
// and concurrent use.

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


namespace routeguide {
namespace {

constexpr int32_t kInt32Min = std::numeric_limits<int32_t>::min();
constexpr int32_t kInt32Max = std::numeric_limits<int32_t>::max();

std::vector<std::string> Names(const std::vector<FeatureRecord>& features) {
  std::vector<std::string> names;
  names.reserve(features.size());
  for (const FeatureRecord& feature : features) names.push_back(feature.name);
  return names;
}

std::vector<std::string> Messages(const std::vector<Note>& notes) {
  std::vector<std::string> messages;
  messages.reserve(notes.size());
  for (const Note& note : notes) messages.push_back(note.message);
  return messages;
}

// The features of `all` inside `rect`, in order: what FeaturesIn must answer.
std::vector<std::string> BruteForceNames(const std::vector<FeatureRecord>& all,
                                         const GeoRect& rect) {
  std::vector<std::string> names;
  for (const FeatureRecord& feature : all) {
    if (rect.Contains(feature.location)) names.push_back(feature.name);
  }
  return names;
}

// Floor division written independently of the store's, to size a query.
int64_t CellIndex(int32_t coordinate, int32_t cell_size) {
  const int64_t c = coordinate;
  return c >= 0 ? c / cell_size : -((-c + cell_size - 1) / cell_size);
}

// How many cells `rect` spans, saturated (the product can pass 2^64).
double CoveredCells(const GeoRect& rect, int32_t cell_size) {
  const double lat_cells = static_cast<double>(
      CellIndex(rect.hi.latitude, cell_size) -
      CellIndex(rect.lo.latitude, cell_size) + 1);
  const double lon_cells = static_cast<double>(
      CellIndex(rect.hi.longitude, cell_size) -
      CellIndex(rect.lo.longitude, cell_size) + 1);
  return lat_cells * lon_cells;
}

TEST_CASE("FeatureStore finds a feature only at its exact point", "[store]") {
  FeatureStore store;
  const GeoPoint p{407838351, -746143763};

  SECTION("an empty store finds nothing") {
    CHECK_FALSE(store.Find(p).has_value());
    CHECK_FALSE(store.Contains(p));
    CHECK(store.feature_count() == 0);
  }

  store.AddFeature({"Patriots Path", p});

  SECTION("the exact point") {
    const std::optional<FeatureRecord> found = store.Find(p);
    REQUIRE(found.has_value());
    CHECK(found->name == "Patriots Path");
    CHECK(found->location == p);
    CHECK(store.Contains(p));
    CHECK(store.feature_count() == 1);
  }

  SECTION("a point one unit away is a miss") {
    const auto [dlat, dlon] = GENERATE(table<int32_t, int32_t>({
        {1, 0}, {-1, 0}, {0, 1}, {0, -1}, {1, 1}, {-1, -1}, {1, -1}, {-1, 1}}));
    const GeoPoint q{p.latitude + dlat, p.longitude + dlon};
    CAPTURE(q);
    CHECK_FALSE(store.Find(q).has_value());
    CHECK_FALSE(store.Contains(q));
  }

  SECTION("the swapped coordinates are a miss") {
    CHECK_FALSE(store.Contains({p.longitude, p.latitude}));
  }
}

TEST_CASE("FeatureStore keeps an unnamed feature as a stored point",
          "[store]") {
  FeatureStore store;
  store.AddFeature({"", {1, 2}});
  const std::optional<FeatureRecord> found = store.Find({1, 2});
  REQUIRE(found.has_value());
  CHECK(found->name.empty());
  CHECK(store.Contains({1, 2}));
  CHECK(store.FeaturesIn(GeoRect::FromCorners({0, 0}, {5, 5})).size() == 1);
}

TEST_CASE("Features sharing a point: Find gives the first, FeaturesIn all",
          "[store]") {
  const int32_t cell_size = GENERATE(1, 10, 1000000);
  CAPTURE(cell_size);
  FeatureStore store(FeatureStoreOptions{cell_size, 100, 100000});
  const GeoPoint p{-5, 7};
  store.AddFeature({"first", p});
  store.AddFeature({"elsewhere", {-5, 8}});
  store.AddFeature({"second", p});
  store.AddFeature({"third", p});

  CHECK(store.feature_count() == 4);
  const std::optional<FeatureRecord> found = store.Find(p);
  REQUIRE(found.has_value());
  CHECK(found->name == "first");
  CHECK(Names(store.FeaturesIn(GeoRect{p, p})) ==
        std::vector<std::string>{"first", "second", "third"});
  CHECK(Names(store.FeaturesIn(GeoRect::FromCorners({-5, 8}, p))) ==
        std::vector<std::string>{"first", "elsewhere", "second", "third"});
}

TEST_CASE("FeaturesIn has inclusive bounds and answers in insertion order",
          "[store]") {
  // Small cells put the rectangle's edges on and across cell boundaries,
  // around zero on both axes.
  const int32_t cell_size = GENERATE(1, 10, 7, 1000000);
  CAPTURE(cell_size);
  FeatureStore store(FeatureStoreOptions{cell_size, 100, 100000});

  // The rectangle [-20, 30] x [-40, 10]. Added in an order unrelated to
  // position, so the answer's order can only come from insertion.
  const std::vector<FeatureRecord> features = {
      {"hi corner", {30, 10}},        {"outside north", {31, 0}},
      {"center", {0, 0}},             {"lo corner", {-20, -40}},
      {"outside west", {0, -41}},     {"north edge", {30, -15}},
      {"outside south", {-21, 0}},    {"west edge", {5, -40}},
      {"outside east", {0, 11}},      {"south edge", {-20, 3}},
      {"east edge", {-7, 10}},        {"outside diagonal", {31, 11}},
      {"mixed corner", {-20, 10}},    {"other mixed corner", {30, -40}},
      {"far away", {400000000, -740000000}},
      {"just inside", {-19, -39}},    {"outside far diagonal", {-21, -41}},
  };
  for (const FeatureRecord& feature : features) store.AddFeature(feature);
  const std::vector<std::string> expected = {
      "hi corner",   "center",     "lo corner",    "north edge",
      "west edge",   "south edge", "east edge",    "mixed corner",
      "other mixed corner",        "just inside",
  };

  const auto [a, b] = GENERATE(table<GeoPoint, GeoPoint>({
      {{-20, -40}, {30, 10}},
      {{30, 10}, {-20, -40}},
      {{-20, 10}, {30, -40}},
      {{30, -40}, {-20, 10}},
  }));
  CAPTURE(a, b);
  const GeoRect rect = GeoRect::FromCorners(a, b);
  CHECK(Names(store.FeaturesIn(rect)) == expected);
  CHECK(Names(store.FeaturesIn(rect)) == BruteForceNames(features, rect));
}

TEST_CASE("FeaturesIn handles degenerate, world-sized and int32-wide "
          "rectangles",
          "[store]") {
  const int32_t cell_size = GENERATE(1, 10, 1000000, kInt32Max);
  CAPTURE(cell_size);
  FeatureStore store(FeatureStoreOptions{cell_size, 100, 100000});
  const std::vector<FeatureRecord> features = {
      {"origin", {0, 0}},
      {"on the line", {0, 5}},
      {"on the column", {-5, 0}},
      {"north pole", {900000000, 0}},
      {"south pole", {-900000000, 0}},
      {"date line east", {0, 1800000000}},
      {"date line west", {0, -1800000000}},
      {"int32 max corner", {kInt32Max, kInt32Max}},
      {"int32 min corner", {kInt32Min, kInt32Min}},
      {"int32 mixed corner", {kInt32Min, kInt32Max}},
      {"near the origin", {1, 1}},
  };
  for (const FeatureRecord& feature : features) store.AddFeature(feature);

  SECTION("a point") {
    const GeoRect rect = GeoRect::FromCorners({0, 0}, {0, 0});
    CHECK(Names(store.FeaturesIn(rect)) == std::vector<std::string>{"origin"});
  }
  SECTION("a line of latitude") {
    const GeoRect rect = GeoRect::FromCorners({0, 10}, {0, -10});
    CHECK(Names(store.FeaturesIn(rect)) ==
          std::vector<std::string>{"origin", "on the line"});
  }
  SECTION("a line of longitude") {
    const GeoRect rect = GeoRect::FromCorners({10, 0}, {-10, 0});
    CHECK(Names(store.FeaturesIn(rect)) ==
          std::vector<std::string>{"origin", "on the column"});
  }
  SECTION("an empty point") {
    CHECK(store.FeaturesIn(GeoRect::FromCorners({2, 2}, {2, 2})).empty());
  }
  SECTION("the whole world") {
    const GeoRect rect =
        GeoRect::FromCorners({-900000000, -1800000000}, {900000000, 1800000000});
    CHECK(Names(store.FeaturesIn(rect)) ==
          std::vector<std::string>{"origin", "on the line", "on the column",
                                   "north pole", "south pole", "date line east",
                                   "date line west", "near the origin"});
  }
  SECTION("all of int32") {
    const GeoRect rect =
        GeoRect::FromCorners({kInt32Max, kInt32Min}, {kInt32Min, kInt32Max});
    CHECK(Names(store.FeaturesIn(rect)) == Names(features));
  }
  SECTION("an int32 corner alone") {
    const GeoRect rect = GeoRect::FromCorners({kInt32Max, kInt32Max},
                                              {kInt32Max - 1, kInt32Max - 1});
    CHECK(Names(store.FeaturesIn(rect)) ==
          std::vector<std::string>{"int32 max corner"});
  }
  SECTION("an int32-wide strip") {
    const GeoRect rect =
        GeoRect::FromCorners({kInt32Min, kInt32Max}, {kInt32Max, kInt32Max});
    CHECK(Names(store.FeaturesIn(rect)) ==
          std::vector<std::string>{"int32 max corner", "int32 mixed corner"});
  }
}

TEST_CASE("FeaturesIn agrees with a brute-force filter on random data",
          "[store]") {
  const int32_t cell_size = GENERATE(10, 1000, 1000000);
  CAPTURE(cell_size);
  FeatureStore store(FeatureStoreOptions{cell_size, 100, 100000});

  std::mt19937 rng(20240611u + static_cast<uint32_t>(cell_size));
  auto uniform = [&rng](int64_t lo, int64_t hi) {
    return static_cast<int32_t>(
        lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1)));
  };
  // Most features cluster in 100 x 100 cells around the origin, so small
  // rectangles find something; some share a point; some are anywhere.
  const int64_t cluster = 50 * static_cast<int64_t>(cell_size);
  constexpr int kFeatures = 3000;
  std::vector<FeatureRecord> features;
  features.reserve(kFeatures);
  for (int i = 0; i < kFeatures; ++i) {
    GeoPoint p;
    const uint32_t kind = rng() % 10;
    if (kind < 7 || features.empty()) {
      p = {uniform(-cluster, cluster), uniform(-cluster, cluster)};
    } else if (kind < 8) {
      p = features[rng() % features.size()].location;
    } else {
      p = {uniform(-kMaxLatitudeE7, kMaxLatitudeE7),
           uniform(-kMaxLongitudeE7, kMaxLongitudeE7)};
    }
    features.push_back({"f" + std::to_string(i), p});
    store.AddFeature(features.back());
  }
  REQUIRE(store.feature_count() == features.size());

  std::set<std::pair<int64_t, int64_t>> occupied;
  for (const FeatureRecord& feature : features) {
    occupied.emplace(CellIndex(feature.location.latitude, cell_size),
                     CellIndex(feature.location.longitude, cell_size));
  }
  const auto occupied_cells = static_cast<double>(occupied.size());

  int few_cells = 0;   // Rectangles covering no more cells than are occupied.
  int many_cells = 0;  // Rectangles covering more.
  int non_empty = 0;
  for (int i = 0; i < 400; ++i) {
    GeoPoint a;
    GeoPoint b;
    switch (i % 4) {
      case 0:  // A few cells in the cluster.
      case 1: {
        a = {uniform(-cluster, cluster), uniform(-cluster, cluster)};
        const int64_t span = uniform(0, 3 * static_cast<int64_t>(cell_size));
        b = {static_cast<int32_t>(a.latitude + uniform(-span, span)),
             static_cast<int32_t>(a.longitude + uniform(-span, span))};
        break;
      }
      case 2:  // Up to a third of the cluster.
        a = {uniform(-cluster, cluster), uniform(-cluster, cluster)};
        b = {uniform(-cluster, cluster), uniform(-cluster, cluster)};
        break;
      default:  // Anywhere in int32, usually huge.
        a = {uniform(kInt32Min, kInt32Max), uniform(kInt32Min, kInt32Max)};
        b = {uniform(kInt32Min, kInt32Max), uniform(kInt32Min, kInt32Max)};
        break;
    }
    const GeoRect rect = GeoRect::FromCorners(a, b);
    if (CoveredCells(rect, cell_size) <= occupied_cells) {
      ++few_cells;
    } else {
      ++many_cells;
    }
    const std::vector<std::string> expected = BruteForceNames(features, rect);
    if (!expected.empty()) ++non_empty;
    const std::vector<std::string> actual = Names(store.FeaturesIn(rect));
    if (actual != expected) {
      CAPTURE(i, rect.lo, rect.hi, expected.size(), actual.size());
      FAIL_CHECK("FeaturesIn differs from the brute-force filter");
    }
    // The indexed views name the same features by their insertion index
    // (feature "fN" was the Nth added).
    std::vector<std::string> by_index;
    for (uint64_t index : store.FeatureIndexesIn(rect)) {
      by_index.push_back(features[index].name);
    }
    std::vector<std::string> indexed;
    for (const FeatureStore::IndexedFeature& entry : store.IndexedFeaturesIn(rect)) {
      if (features[entry.index].name != entry.feature.name) {
        FAIL_CHECK("IndexedFeaturesIn pairs " << entry.feature.name
                   << " with index " << entry.index);
      }
      indexed.push_back(entry.feature.name);
    }
    if (by_index != expected || indexed != expected) {
      CAPTURE(i, rect.lo, rect.hi);
      FAIL_CHECK("FeatureIndexesIn or IndexedFeaturesIn differs from FeaturesIn");
    }
  }
  // Both of FeaturesIn's strategies were used, on non-trivial answers.
  CAPTURE(occupied_cells, few_cells, many_cells, non_empty);
  CHECK(few_cells >= 100);
  CHECK(many_cells >= 100);
  CHECK(non_empty >= 200);

  SECTION("the whole world and all of int32") {
    const GeoRect world = GeoRect::FromCorners(
        {-kMaxLatitudeE7, -kMaxLongitudeE7}, {kMaxLatitudeE7, kMaxLongitudeE7});
    CHECK(Names(store.FeaturesIn(world)) == Names(features));
    const GeoRect everything =
        GeoRect::FromCorners({kInt32Min, kInt32Min}, {kInt32Max, kInt32Max});
    CHECK(Names(store.FeaturesIn(everything)) == Names(features));
  }
}

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

namespace routeguide {
namespace {

TEST_CASE("FeatureIndexesIn with a limit lists up to the limit and refuses "
          "more", "[store]") {
  FeatureStore store;
  // 50 features in a row, each in a cell of its own.
  for (int i = 0; i < 50; ++i) store.AddFeature({"", {i * 2000000, 0}});
  const GeoRect first_ten = GeoRect::FromCorners({0, 0}, {9 * 2000000, 0});
  const GeoRect everything = GeoRect::FromCorners({0, 0}, {900000000, 0});

  auto ten = store.FeatureIndexesIn(first_ten, 10);
  REQUIRE(ten.has_value());
  CHECK(*ten == store.FeatureIndexesIn(first_ten));
  CHECK(ten->size() == 10);
  CHECK_FALSE(store.FeatureIndexesIn(first_ten, 9).has_value());
  CHECK_FALSE(store.FeatureIndexesIn(everything, 49).has_value());
  auto all = store.FeatureIndexesIn(everything, 50);
  REQUIRE(all.has_value());
  CHECK(all->size() == 50);
}

}  // namespace
}  // namespace routeguide
