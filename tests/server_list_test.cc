// ListFeatures and its wire cache, on the server in-process on 127.0.0.1:0.
#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "catch2/catch.hpp"
#include "client_calls.h"
#include "client_queues.h"
#include "db_loader.h"
#include "feature_wire_cache.h"
#include "geo.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/security/credentials.h"
#include "health.grpc.pb.h"
#include "route_guide.grpc.pb.h"
#include "route_guide_server.h"
#include "test_server.h"
#include "test_util.h"

namespace routeguide {
namespace {

std::vector<Feature> ListFeatures(RouteGuide::Stub& stub,
                                  const Rectangle& rectangle,
                                  grpc::Status* status) {
  grpc::ClientContext context;
  SetDeadline(context);
  auto reader = stub.ListFeatures(&context, rectangle);
  std::vector<Feature> features;
  Feature feature;
  while (reader->Read(&feature)) features.push_back(feature);
  *status = reader->Finish();
  return features;
}

TEST_CASE("FeatureWireCache encodes each feature once, by insertion index",
          "[server][list]") {
  FeatureStore store;
  store.AddFeature({"first", {1, 2}});
  store.AddFeature({"", {3, 4}});
  FeatureWireCache cache(&store);
  auto decode = [](const FeatureWireCache::Snapshot& snapshot, uint64_t index) {
    EncodedMessage encoded;
    Feature feature;
    REQUIRE(snapshot.Get(index, &encoded));
    REQUIRE(feature.ParseFromArray(encoded.bytes.begin(),
                                   static_cast<int>(encoded.bytes.size())));
    return feature;
  };
  auto snapshot = cache.Covering(2);
  REQUIRE(snapshot->size() == 2);
  CHECK(decode(*snapshot, 0).name() == "first");
  CHECK(decode(*snapshot, 0).location().longitude() == 2);
  CHECK(decode(*snapshot, 1).name().empty());
  CHECK(decode(*snapshot, 1).location().latitude() == 3);
  EncodedMessage unused;
  CHECK(!snapshot->Get(2, &unused));

  SECTION("Get, one feature at a time, encodes again only when needed") {
    EncodedMessage encoded;
    REQUIRE(cache.Get(1, &encoded));
    CHECK(cache.Covering(2) == snapshot);  // Reading made no new snapshot.
    CHECK_FALSE(cache.Get(2, &encoded));  // The store has no third feature.
    store.AddFeature({"third", {5, 6}});
    REQUIRE(cache.Get(2, &encoded));
    Feature third;
    REQUIRE(third.ParseFromArray(encoded.bytes.begin(),
                                 static_cast<int>(encoded.bytes.size())));
    CHECK(third.name() == "third");
    CHECK(cache.Covering(3) != snapshot);
  }
  SECTION("a feature added later is encoded on first demand") {
    store.AddFeature({std::string(300, 'n'), {5, 6}});
    CHECK(cache.Covering(2) == snapshot);  // Enough already: no new work.
    auto newer = cache.Covering(3);
    REQUIRE(newer != snapshot);
    CHECK(decode(*newer, 2).name() == std::string(300, 'n'));
    CHECK(decode(*newer, 0).name() == "first");
    CHECK(!snapshot->Get(2, &unused));  // The old one is unchanged.
  }
}

TEST_CASE("ListFeatures serves features added while the server runs",
          "[server][list]") {
  TestServer test;
  const Rectangle rectangle = MakeRectangle(MakePoint(10, 10), MakePoint(20, 20));
  grpc::Status status;
  CHECK(ListFeatures(*test.stub, rectangle, &status).empty());
  CHECK(status.ok());
  for (int round = 0; round < 3; ++round) {
    test.store->AddFeature({"added " + std::to_string(round), {10 + round, 15}});
    // Added too, just outside the rectangle: never listed.
    test.store->AddFeature({"outside " + std::to_string(round), {21 + round, 15}});
    auto features = ListFeatures(*test.stub, rectangle, &status);
    REQUIRE(status.ok());
    REQUIRE(features.size() == static_cast<size_t>(round + 1));
    for (int i = 0; i <= round; ++i) {
      CHECK(features[i].name() == "added " + std::to_string(i));
      CHECK(features[i].location().latitude() == 10 + i);
    }
  }
}

TEST_CASE("ListFeatures walks a large answer with a cursor, in database "
          "order, as it lists a small one",
          "[server][list]") {
  TestServer test;
  // 100 built-in features, then 5000 more on a grid, some at points that
  // were already taken, so the answers pass the listing threshold (1024)
  // and mix both kinds of index.
  for (int i = 0; i < 5000; ++i) {
    const int32_t latitude = 100000 * (i % 71) - 3000000;
    const int32_t longitude = 100000 * (i / 71) - 3000000;
    test.store->AddFeature({"grid " + std::to_string(i), {latitude, longitude}});
  }
  const GeoRect rect = GENERATE(
      GeoRect::FromCorners({-900000000, -1800000000}, {900000000, 1800000000}),
      GeoRect::FromCorners({-3000000, -3000000}, {2000000, 3000000}),
      GeoRect::FromCorners({-1000000, -1000000}, {-500000, -500000}));
  std::vector<std::string> expected;
  for (const FeatureRecord& feature : test.store->FeaturesIn(rect)) {
    expected.push_back(feature.name);
  }
  CAPTURE(expected.size());
  grpc::Status status;
  std::vector<std::string> got;
  for (const Feature& feature :
       ListFeatures(*test.stub,
                    MakeRectangle(MakePoint(rect.lo.latitude, rect.lo.longitude),
                                  MakePoint(rect.hi.latitude, rect.hi.longitude)),
                    &status)) {
    got.push_back(feature.name());
  }
  REQUIRE(status.ok());
  CHECK(got == expected);
}

TEST_CASE("FeatureWireCache's cursor finds the features inside a rectangle "
          "chunk by chunk", "[server][list]") {
  FeatureStore store;
  for (int i = 0; i < 10; ++i) store.AddFeature({"", {i, i}});
  FeatureWireCache cache(&store);
  auto snapshot = cache.Covering(10);
  const GeoRect rect = GeoRect::FromCorners({2, 2}, {7, 7});
  std::vector<uint64_t> found;
  uint64_t from = snapshot->Scan(rect, 0, 4, &found);
  CHECK(found == std::vector<uint64_t>{2, 3, 4, 5});
  from = snapshot->Scan(rect, from, 4, &found);
  CHECK(found == std::vector<uint64_t>{2, 3, 4, 5, 6, 7});
  CHECK(from == 10);
  CHECK(snapshot->Scan(rect, from, 4, &found) == 10);
  CHECK(found.size() == 6);
}

TEST_CASE("ListFeatures answers bytes that are no Rectangle with "
          "INVALID_ARGUMENT", "[server][list]") {
  TestServer test;
  grpc::GenericStub generic(test.channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  SetDeadline(context);
  const char kGarbage[] = "\xff\xff\xff\xff";  // A truncated varint field.
  grpc::Slice slice(kGarbage, sizeof(kGarbage) - 1);
  grpc::ByteBuffer request(&slice, 1);
  auto call = generic.PrepareUnaryCall(
      &context, "/routeguide.RouteGuide/ListFeatures", request, &cq);
  call->StartCall();
  grpc::ByteBuffer reply;
  grpc::Status status;
  call->Finish(&reply, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  REQUIRE(cq.Next(&tag, &ok));
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(status.error_message(), Catch::Contains("Rectangle"));
  ShutdownAndDrain(cq);
}

TEST_CASE("ListFeatures streams the features inside the rectangle in order",
          "[server][list]") {
  TestServer test;
  const std::vector<FeatureRecord> all = *DefaultFeatures();
  grpc::Status status;

  SECTION("the tutorial's rectangle holds all 100, in database order") {
    const Point lo = MakePoint(400000000, -750000000);
    const Point hi = MakePoint(420000000, -730000000);
    const bool swapped = GENERATE(false, true);
    auto features = ListFeatures(
        *test.stub, swapped ? MakeRectangle(hi, lo) : MakeRectangle(lo, hi),
        &status);
    REQUIRE(status.ok());
    REQUIRE(features.size() == all.size());
    for (size_t i = 0; i < all.size(); ++i) {
      CHECK(features[i].name() == all[i].name);
      CHECK(features[i].location().latitude() == all[i].location.latitude);
      CHECK(features[i].location().longitude() == all[i].location.longitude);
    }
  }
  SECTION("bounds are inclusive: a degenerate rectangle on one feature") {
    const Point p = MakePoint(all[7].location.latitude, all[7].location.longitude);
    auto features = ListFeatures(*test.stub, MakeRectangle(p, p), &status);
    REQUIRE(status.ok());
    REQUIRE(features.size() == 1);
    CHECK(features[0].name() == all[7].name);
  }
  SECTION("a sub-rectangle returns exactly the features inside it") {
    const GeoRect rect =
        GeoRect::FromCorners({410000000, -745000000}, {415000000, -740000000});
    std::vector<std::string> expected;
    for (const FeatureRecord& f : all) {
      if (rect.Contains(f.location)) expected.push_back(f.name);
    }
    REQUIRE(!expected.empty());
    auto features = ListFeatures(
        *test.stub,
        MakeRectangle(MakePoint(415000000, -740000000),
                      MakePoint(410000000, -745000000)),
        &status);
    REQUIRE(status.ok());
    std::vector<std::string> got;
    for (const Feature& f : features) got.push_back(f.name());
    CHECK(got == expected);
  }
  SECTION("an empty region ends the stream at once with OK") {
    auto features = ListFeatures(
        *test.stub, MakeRectangle(MakePoint(0, 0), MakePoint(10, 10)), &status);
    CHECK(status.ok());
    CHECK(features.empty());
  }
  SECTION("the whole world") {
    auto features = ListFeatures(
        *test.stub,
        MakeRectangle(MakePoint(-900000000, -1800000000),
                      MakePoint(900000000, 1800000000)),
        &status);
    CHECK(status.ok());
    CHECK(features.size() == all.size());
  }
}

}  // namespace
}  // namespace routeguide
