// sync-baseline-server: the RouteGuide service on gRPC's synchronous API,
// written as a typical user would, for benchmarks to compare against our
// completion-queue server. It shares our FeatureStore and answers exactly
// as our server does, so only the RPC layer differs. No TLS, tokens, idle
// timeouts, RouteChat backpressure or health service.
//
// Threads: gRPC's default synchronous thread pool runs each call's handler
// on one of its threads, blocking in Read and Write.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "baseline_server.h"
#include "feature_store.h"
#include "geo.h"
#include "proto_convert.h"
#include "route_guide.grpc.pb.h"


namespace routeguide {
namespace {

// The four methods, each a blocking handler on a gRPC pool thread. The
// store is thread-safe; the service keeps no other state.
class SyncRouteGuideService final : public RouteGuide::Service {
 public:
  explicit SyncRouteGuideService(std::shared_ptr<FeatureStore> store)
      : store_(std::move(store)) {}

  grpc::Status GetFeature(grpc::ServerContext* /*context*/, const Point* request,
                          Feature* reply) override {
    const GeoPoint point = FromProto(*request);
    if (absl::Status valid = ValidatePoint(point); !valid.ok()) {
      return ToGrpcStatus(valid);
    }
    if (std::optional<FeatureRecord> found = store_->Find(point)) {
      ToProto(*found, reply);
    } else {
      *reply->mutable_location() = *request;  // Nothing here: empty name.
    }
    return grpc::Status::OK;
  }

  grpc::Status ListFeatures(grpc::ServerContext* /*context*/,
                            const Rectangle* request,
                            grpc::ServerWriter<Feature>* writer) override {
    const GeoPoint lo = FromProto(request->lo());
    const GeoPoint hi = FromProto(request->hi());
    absl::Status valid = ValidatePoint(lo, "rectangle lo");
    if (valid.ok()) valid = ValidatePoint(hi, "rectangle hi");
    if (!valid.ok()) return ToGrpcStatus(valid);
    Feature reply;
    for (const FeatureRecord& feature :
         store_->FeaturesIn(GeoRect::FromCorners(lo, hi))) {
      ToProto(feature, &reply);
      // A failed Write means the stream is gone; nothing more can be sent.
      if (!writer->Write(reply)) break;
    }
    return grpc::Status::OK;
  }

  grpc::Status RecordRoute(grpc::ServerContext* /*context*/,
                           grpc::ServerReader<Point>* reader,
                           RouteSummary* summary) override {
    const absl::Time start = absl::Now();
    uint64_t point_count = 0;
    uint64_t feature_count = 0;
    double distance_meters = 0;
    std::optional<GeoPoint> previous;
    Point incoming;
    while (reader->Read(&incoming)) {
      const GeoPoint point = FromProto(incoming);
      if (absl::Status valid = ValidatePoint(point); !valid.ok()) {
        return ToGrpcStatus(valid);
      }
      ++point_count;
      if (store_->Contains(point)) ++feature_count;
      if (previous) distance_meters += HaversineMeters(*previous, point);
      previous = point;
    }
    *summary = MakeRouteSummary(point_count, feature_count, distance_meters,
                                start);
    return grpc::Status::OK;
  }

  grpc::Status RouteChat(
      grpc::ServerContext* /*context*/,
      grpc::ServerReaderWriter<RouteNote, RouteNote>* stream) override {
    bool broken = false;  // A Write failed: the replies have nowhere to go.
    RouteNote incoming;
    RouteNote reply;
    while (stream->Read(&incoming)) {
      Note note{FromProto(incoming.location()),
                std::move(*incoming.mutable_message())};
      absl::Status valid = ValidatePoint(note.location, "note location");
      if (valid.ok() && note.message.size() > bench::kMaxNoteBytes) {
        valid = absl::InvalidArgumentError(absl::StrFormat(
            "note message is %d bytes, longer than the limit of %d",
            note.message.size(), bench::kMaxNoteBytes));
      }
      if (!valid.ok()) return ToGrpcStatus(valid);
      const std::vector<Note> earlier = store_->AddNote(std::move(note));
      for (const Note& previous : earlier) {
        if (broken) break;
        ToProto(previous, &reply);
        broken = !stream->Write(reply);
      }
    }
    return grpc::Status::OK;
  }

 private:
  const std::shared_ptr<FeatureStore> store_;
};

}  // namespace
}  // namespace routeguide

int main(int argc, char** argv) {
  return routeguide::bench::BaselineMain(
      argc, argv, "sync baseline",
      [](std::shared_ptr<routeguide::FeatureStore> store) {
        return std::make_unique<routeguide::SyncRouteGuideService>(std::move(store));
      });
}
