#include "tutorial.h"

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "client_queues.h"

namespace routeguide {
namespace {

// The tutorial's lines, to the character (trailing spaces included).
std::string FeatureLine(const Feature& feature) {
  return absl::StrFormat("Feature called '%s' at latitude: %d, longitude: %d",
                         feature.name(), feature.location().latitude(),
                         feature.location().longitude());
}

Point MakePoint(int32_t latitude, int32_t longitude) {
  Point point;
  point.set_latitude(latitude);
  point.set_longitude(longitude);
  return point;
}

RouteNote MakeNote(const char* message, int32_t latitude, int32_t longitude) {
  RouteNote note;
  note.set_message(message);
  *note.mutable_location() = MakePoint(latitude, longitude);
  return note;
}

absl::Status FromGrpc(const grpc::Status& status, absl::string_view method) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(method, " failed: ", status.error_message()));
}

// Runs the tutorial's calls one after another; each waits for the last.
class Walkthrough {
 public:
  Walkthrough(const std::shared_ptr<grpc::Channel>& channel,
              const TutorialOptions& options, std::ostream& out)
      : stub_(RouteGuide::NewStub(channel)),
        queues_(1),
        options_(options),
        out_(out) {}

  absl::Status GetFeature(const Point& point) {
    absl::Notification done;
    grpc::Status status;
    StartGetFeature(*stub_, *queues_.queue(0), options_.call, point,
                    [&](const grpc::Status& s, const Feature& feature) {
                      status = s;
                      if (s.ok() && feature.name().empty()) {
                        out_ << absl::StrFormat(
                            "Found no feature at latitude: %d, longitude: %d\n",
                            feature.location().latitude(),
                            feature.location().longitude());
                      } else if (s.ok()) {
                        out_ << FeatureLine(feature) << "\n";
                      }
                      done.Notify();
                    });
    done.WaitForNotification();
    return FromGrpc(status, "GetFeature");
  }

  // Streams the features in `rectangle`; prints each when `print`.
  absl::Status ListFeatures(const Rectangle& rectangle, bool print,
                            std::vector<Feature>* features) {
    absl::Notification done;
    grpc::Status status;
    StartListFeatures(
        *stub_, *queues_.queue(0), options_.call, rectangle,
        [&](const Feature& feature) {
          if (print) out_ << FeatureLine(feature) << "\n";
          if (features != nullptr) features->push_back(feature);
        },
        [&](const grpc::Status& s) {
          status = s;
          done.Notify();
        });
    done.WaitForNotification();
    return FromGrpc(status, "ListFeatures");
  }

  absl::Status RecordRoute(std::vector<Point> points) {
    absl::Notification done;
    grpc::Status status;
    StartRecordRoute(
        *stub_, *queues_.queue(0), options_.call, std::move(points),
        [&](const Point& point) {
          out_ << absl::StrFormat("Visiting point latitude: %d, longitude: %d\n",
                                  point.latitude(), point.longitude());
        },
        [&](const grpc::Status& s, const RouteSummary& summary) {
          status = s;
          if (s.ok()) {
            out_ << absl::StrFormat(
                "Finished trip with %d points \n"
                "Passed %d features \n"
                "Travelled %d meters \n"
                "It took %d seconds \n",
                summary.point_count(), summary.feature_count(),
                summary.distance(), summary.elapsed_time());
          }
          done.Notify();
        });
    done.WaitForNotification();
    return FromGrpc(status, "RecordRoute");
  }

  absl::Status RouteChat(std::vector<RouteNote> notes) {
    absl::Notification done;
    grpc::Status status;
    StartRouteChat(
        *stub_, *queues_.queue(0), options_.call, std::move(notes),
        [&](const RouteNote& note) {
          out_ << absl::StrFormat("Sending %s at latitude: %d, longitude: %d\n",
                                  note.message(), note.location().latitude(),
                                  note.location().longitude());
        },
        [&](const RouteNote& note) {
          out_ << absl::StrFormat(
              "Received message %s at latitude: %d, longitude: %d\n",
              note.message(), note.location().latitude(),
              note.location().longitude());
        },
        [&](const grpc::Status& s) {
          status = s;
          done.Notify();
        });
    done.WaitForNotification();
    return FromGrpc(status, "RouteChat");
  }

 private:
  std::unique_ptr<RouteGuide::Stub> stub_;
  ClientQueues queues_;  // After stub_: its pollers stop first.
  const TutorialOptions& options_;
  std::ostream& out_;
};

}  // namespace

absl::Status RunTutorial(const std::shared_ptr<grpc::Channel>& channel,
                         const TutorialOptions& options, std::ostream& out) {
  Walkthrough walk(channel, options, out);

  out << "-------------- GetFeature --------------\n";
  if (auto s = walk.GetFeature(MakePoint(409146138, -746188906)); !s.ok()) {
    return s;
  }
  if (auto s = walk.GetFeature(MakePoint(0, 0)); !s.ok()) return s;

  out << "-------------- ListFeatures --------------\n";
  out << "Looking for features between 40, -75 and 42, -73\n";
  Rectangle rectangle;
  *rectangle.mutable_lo() = MakePoint(400000000, -750000000);
  *rectangle.mutable_hi() = MakePoint(420000000, -730000000);
  if (auto s = walk.ListFeatures(rectangle, /*print=*/true, nullptr);
      !s.ok()) {
    return s;
  }

  out << "-------------- RecordRoute --------------\n";
  // The tutorial's client reads the database file; ours asks the server
  // for every feature it has, so it works against any RouteGuide server.
  Rectangle world;
  *world.mutable_lo() = MakePoint(-900000000, -1800000000);
  *world.mutable_hi() = MakePoint(900000000, 1800000000);
  std::vector<Feature> stored;
  if (auto s = walk.ListFeatures(world, /*print=*/false, &stored); !s.ok()) {
    return s;
  }
  std::vector<Point> route;
  if (!stored.empty()) {
    std::mt19937_64 random(options.seed);
    std::uniform_int_distribution<size_t> pick(0, stored.size() - 1);
    for (int i = 0; i < 10; ++i) route.push_back(stored[pick(random)].location());
  }
  if (auto s = walk.RecordRoute(std::move(route)); !s.ok()) return s;

  out << "-------------- RouteChat --------------\n";
  return walk.RouteChat({
      MakeNote("First message", 0, 0),
      MakeNote("Second message", 0, 1),
      MakeNote("Third message", 1, 0),
      MakeNote("Fourth message", 0, 0),
      MakeNote("Fifth message", 1, 0),
  });
}

}  // namespace routeguide
