// A RouteGuide server for the load generator's tests, on the sync API (it
// is a fixture, not the product): it answers slowly or wrongly on demand.
#ifndef ROUTEGUIDE_TESTS_LOAD_FIXTURE_SERVER_H_
#define ROUTEGUIDE_TESTS_LOAD_FIXTURE_SERVER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "catch2/catch.hpp"
#include "geo.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "proto_convert.h"
#include "route_guide.grpc.pb.h"

namespace routeguide {

// Four features of its own; GetFeature one call at a time, each after
// `get_delay` (so a queue forms). With `lie`, every call of every kind gets
// a wrong answer, except the ListFeatures over the whole world that a load
// run learns the features from. Each kind takes its lies in turn, one per
// call, and each lie breaks one thing only, so every part of the load
// generator's checks has calls that only it can find wrong.
class LoadFixtureService final : public RouteGuide::Service {
 public:
  LoadFixtureService(absl::Duration get_delay, bool lie)
      : get_delay_(get_delay), lie_(lie) {
    AddFeature("Alpha", 400000000, -740000000);
    AddFeature("Beta", 400500000, -740500000);  // In most squares by Alpha.
    AddFeature("Gamma", 100000000, 200000000);
    AddFeature("Delta", -300000000, 1500000000);
  }

  size_t features() const { return features_.size(); }

  grpc::Status GetFeature(grpc::ServerContext*, const Point* point,
                          Feature* feature) override {
    absl::MutexLock lock(&get_mu_);  // One at a time: a queue forms.
    absl::SleepFor(get_delay_);
    *feature->mutable_location() = *point;
    if (const Feature* stored = Find(*point)) feature->set_name(stored->name());
    if (!lie_) return grpc::Status::OK;
    switch (NextLie(get_lies_, 3)) {
      case 0:
        feature->set_name("not what is stored");
        break;
      case 1:
        feature->mutable_location()->set_latitude(point->latitude() + 1);
        break;
      default:
        feature->mutable_location()->set_longitude(point->longitude() + 1);
        break;
    }
    return grpc::Status::OK;
  }

  grpc::Status ListFeatures(grpc::ServerContext*, const Rectangle* rectangle,
                            grpc::ServerWriter<Feature>* writer) override {
    const GeoRect area = GeoRect::FromCorners(FromProto(rectangle->lo()),
                                              FromProto(rectangle->hi()));
    std::vector<Feature> answer;
    for (const Feature& feature : features_) {
      if (area.Contains(FromProto(feature.location()))) answer.push_back(feature);
    }
    if (lie_ && !IsWorld(*rectangle)) {
      // An empty answer has nothing to rename or leave out.
      switch (answer.empty() ? 2 : NextLie(list_lies_, 3)) {
        case 0:  // The right count, one name wrong.
          answer.front().set_name(answer.front().name() + "?");
          break;
        case 1:
          answer.pop_back();
          break;
        default: {
          Feature& made_up = answer.emplace_back();
          *made_up.mutable_location() = rectangle->lo();
          made_up.set_name("made up");
          break;
        }
      }
    }
    for (const Feature& feature : answer) writer->Write(feature);
    return grpc::Status::OK;
  }

  grpc::Status RecordRoute(grpc::ServerContext*, grpc::ServerReader<Point>* reader,
                           RouteSummary* summary) override {
    int points = 0;
    int features = 0;
    double distance = 0;
    std::optional<Point> previous;
    Point point;
    while (reader->Read(&point)) {
      ++points;
      if (Find(point) != nullptr) ++features;
      if (previous.has_value()) {
        distance += HaversineMeters(FromProto(*previous), FromProto(point));
      }
      previous = point;
    }
    summary->set_point_count(points);
    summary->set_feature_count(features);
    summary->set_distance(SaturateToInt32(distance));
    if (!lie_) return grpc::Status::OK;
    switch (NextLie(route_lies_, 3)) {
      case 0:
        summary->set_point_count(points + 1);
        break;
      case 1:
        summary->set_feature_count(features + 1);
        break;
      default:  // Just past the 1 m the load generator allows.
        summary->set_distance(summary->distance() + 2);
        break;
    }
    return grpc::Status::OK;
  }

  // Replies to each note with the call's earlier notes at its location, in
  // order. A load run's chats post at locations of their own, so keeping
  // the notes per call gives the answers the load generator expects.
  grpc::Status RouteChat(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<RouteNote, RouteNote>* stream) override {
    // A wrong first reply, or the right replies but one too few or too many
    // at the end, where only the count of replies can tell.
    enum class Lie { kNone, kNumber, kLatitude, kLongitude, kLastMissing,
                     kOneTooMany };
    Lie lie = lie_ ? static_cast<Lie>(1 + NextLie(chat_lies_, 5)) : Lie::kNone;
    std::vector<RouteNote> earlier_notes;
    std::vector<RouteNote> replies;  // Kept for the end with kLastMissing.
    RouteNote note;
    while (stream->Read(&note)) {
      for (const RouteNote& earlier : earlier_notes) {
        if (earlier.location().latitude() != note.location().latitude() ||
            earlier.location().longitude() != note.location().longitude()) {
          continue;
        }
        RouteNote& reply = replies.emplace_back(earlier);
        if (replies.size() == 1 && lie == Lie::kNumber) {
          reply.set_message(absl::StrCat(reply.message(), "1"));
        } else if (replies.size() == 1 && lie == Lie::kLatitude) {
          reply.mutable_location()->set_latitude(reply.location().latitude() + 1);
        } else if (replies.size() == 1 && lie == Lie::kLongitude) {
          reply.mutable_location()->set_longitude(reply.location().longitude() + 1);
        }
        if (lie != Lie::kLastMissing) stream->Write(reply);
      }
      earlier_notes.push_back(note);
    }
    // The client has sent all its notes: now the last reply is known.
    if (lie == Lie::kLastMissing && !replies.empty()) {
      replies.pop_back();
      for (const RouteNote& reply : replies) stream->Write(reply);
    }
    if (lie == Lie::kOneTooMany && !replies.empty()) stream->Write(replies.back());
    return grpc::Status::OK;
  }

 private:
  void AddFeature(const char* name, int32_t latitude, int32_t longitude) {
    Feature& feature = features_.emplace_back();
    feature.set_name(name);
    feature.mutable_location()->set_latitude(latitude);
    feature.mutable_location()->set_longitude(longitude);
  }

  const Feature* Find(const Point& point) const {
    for (const Feature& feature : features_) {
      if (feature.location().latitude() == point.latitude() &&
          feature.location().longitude() == point.longitude()) {
        return &feature;
      }
    }
    return nullptr;
  }

  // The rectangle a load run asks for to learn the features.
  static bool IsWorld(const Rectangle& rectangle) {
    return rectangle.lo().latitude() == -kMaxLatitudeE7 &&
           rectangle.lo().longitude() == -kMaxLongitudeE7 &&
           rectangle.hi().latitude() == kMaxLatitudeE7 &&
           rectangle.hi().longitude() == kMaxLongitudeE7;
  }

  static int NextLie(std::atomic<uint64_t>& counter, int lies) {
    return static_cast<int>(counter.fetch_add(1) % lies);
  }

  const absl::Duration get_delay_;
  const bool lie_;
  std::vector<Feature> features_;  // Set in the constructor, then only read.
  absl::Mutex get_mu_;
  std::atomic<uint64_t> get_lies_{0};
  std::atomic<uint64_t> list_lies_{0};
  std::atomic<uint64_t> route_lies_{0};
  std::atomic<uint64_t> chat_lies_{0};
};

// LoadFixtureService on 127.0.0.1:0.
struct LoadFixtureServer {
  LoadFixtureServer(absl::Duration get_delay, bool lie)
      : service(get_delay, lie) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
    REQUIRE(server != nullptr);
  }
  ~LoadFixtureServer() { server->Shutdown(absl::ToChronoTime(absl::Now())); }

  LoadFixtureService service;
  int port = 0;
  std::unique_ptr<grpc::Server> server;
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_LOAD_FIXTURE_SERVER_H_
