// Unit tests of common/feature_store's features: exact lookups and
// rectangle queries, checked against a brute-force filter. Notes and
// concurrent use: feature_store_notes_test.cc.

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

TEST_CASE("Features sharing a point: Find and FindIndex give the first, "
          "FeaturesIn all",
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
  // FindIndex names the same feature, by its insertion index.
  CHECK(store.FindIndex(p) == std::optional<uint64_t>(0));
  CHECK(store.FindIndex({-5, 8}) == std::optional<uint64_t>(1));
  CHECK_FALSE(store.FindIndex({-5, 9}).has_value());
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
