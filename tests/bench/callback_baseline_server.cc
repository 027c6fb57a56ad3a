// callback-baseline-server: the RouteGuide service on gRPC's callback API,
// written plainly, as a typical user would, for benchmarks to compare
// against our completion-queue server. It shares our FeatureStore and
// answers exactly as our server does, so only the RPC layer differs. No
// TLS, tokens, idle timeouts, RouteChat backpressure or health service.
//
// Threads: gRPC's callback threads run every reaction; the reactors below
// block nowhere. Each streaming call is one reactor object that deletes
// itself in OnDone.
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "baseline_server.h"
#include "feature_store.h"
#include "geo.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "proto_convert.h"
#include "route_guide.grpc.pb.h"


namespace routeguide {
namespace {

// ListFeatures: writes the features in the rectangle one at a time, the
// next from OnWriteDone, then finishes. Reactions never overlap (one
// operation is in flight at a time), so it needs no lock.
class FeatureLister final : public grpc::ServerWriteReactor<Feature> {
 public:
  FeatureLister(const FeatureStore& store, const Rectangle& request) {
    const GeoPoint lo = FromProto(request.lo());
    const GeoPoint hi = FromProto(request.hi());
    absl::Status valid = ValidatePoint(lo, "rectangle lo");
    if (valid.ok()) valid = ValidatePoint(hi, "rectangle hi");
    if (!valid.ok()) {
      Finish(ToGrpcStatus(valid));
      return;
    }
    features_ = store.FeaturesIn(GeoRect::FromCorners(lo, hi));
    WriteNextOrFinish();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {  // The stream is gone: nothing more can be sent.
      Finish(grpc::Status::CANCELLED);
      return;
    }
    WriteNextOrFinish();
  }

  void OnDone() override { delete this; }

 private:
  void WriteNextOrFinish() {
    if (next_ == features_.size()) {
      Finish(grpc::Status::OK);
      return;
    }
    ToProto(features_[next_++], &reply_);
    StartWrite(&reply_);
  }

  std::vector<FeatureRecord> features_;
  size_t next_ = 0;
  Feature reply_;  // Must outlive its write.
};

// RecordRoute: reads points one at a time, the next from OnReadDone, and
// finishes with the summary when the client ends its stream. Reactions
// never overlap, so it needs no lock.
class RouteRecorder final : public grpc::ServerReadReactor<Point> {
 public:
  RouteRecorder(const FeatureStore& store, RouteSummary* summary)
      : store_(store), summary_(summary), start_(absl::Now()) {
    StartRead(&incoming_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // The client ended its stream (or the call is cancelled).
      *summary_ = MakeRouteSummary(point_count_, feature_count_,
                                   distance_meters_, start_);
      Finish(grpc::Status::OK);
      return;
    }
    const GeoPoint point = FromProto(incoming_);
    if (absl::Status valid = ValidatePoint(point); !valid.ok()) {
      Finish(ToGrpcStatus(valid));
      return;
    }
    ++point_count_;
    if (store_.Contains(point)) ++feature_count_;
    if (previous_) distance_meters_ += HaversineMeters(*previous_, point);
    previous_ = point;
    StartRead(&incoming_);
  }

  void OnDone() override { delete this; }

 private:
  const FeatureStore& store_;
  RouteSummary* const summary_;  // gRPC's, sent by Finish.
  const absl::Time start_;
  Point incoming_;  // Filled by the pending read.
  uint64_t point_count_ = 0;
  uint64_t feature_count_ = 0;
  double distance_meters_ = 0;
  std::optional<GeoPoint> previous_;
};

// RouteChat: one read always pending until the client half-closes; for each
// note, the earlier notes at its location are queued as replies, and
// written one at a time (the next from OnWriteDone). Finishes once reading
// is over and the queue is empty (or the stream broke).
//
// OnReadDone and OnWriteDone may run at once on two gRPC threads: the queue
// and the flags are under mu_, which is never held while calling into gRPC
// (Pump decides under the lock, then acts).
class Chatter final : public grpc::ServerBidiReactor<RouteNote, RouteNote> {
 public:
  explicit Chatter(FeatureStore& store) : store_(store) {
    StartRead(&incoming_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // The client half-closed (or the call is cancelled).
      EndReading(grpc::Status::OK);
      return;
    }
    Note note{FromProto(incoming_.location()),
              std::move(*incoming_.mutable_message())};
    absl::Status valid = ValidatePoint(note.location, "note location");
    if (valid.ok() && note.message.size() > bench::kMaxNoteBytes) {
      valid = absl::InvalidArgumentError(absl::StrFormat(
          "note message is %d bytes, longer than the limit of %d",
          note.message.size(), bench::kMaxNoteBytes));
    }
    if (!valid.ok()) {  // Sends what is queued, then the error.
      EndReading(ToGrpcStatus(valid));
      return;
    }
    std::vector<Note> earlier = store_.AddNote(std::move(note));
    {
      absl::MutexLock lock(&mu_);
      // A broken stream sends nothing more: its replies are dropped.
      if (!broken_) {
        for (const Note& reply : earlier) ToProto(reply, &outbox_.emplace_back());
      }
    }
    Pump();
    StartRead(&incoming_);
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) {
        broken_ = true;
        outbox_.clear();
      }
    }
    Pump();
  }

  void OnDone() override { delete this; }

 private:
  void EndReading(const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      reading_done_ = true;
      final_status_ = status;
    }
    Pump();
  }

  // Starts the next write, or finishes, when the call is ready for it.
  void Pump() ABSL_LOCKS_EXCLUDED(mu_) {
    bool write = false;
    grpc::Status finish_status;
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || finished_) return;
      if (!outbox_.empty()) {
        in_flight_ = std::move(outbox_.front());
        outbox_.pop_front();
        writing_ = true;
        write = true;
      } else if (reading_done_) {
        finished_ = true;
        finish_status = final_status_;
      } else {
        return;
      }
    }
    if (write) {
      StartWrite(&in_flight_);
    } else {
      Finish(finish_status);
    }
  }

  FeatureStore& store_;
  RouteNote incoming_;  // Filled by the pending read; only reads touch it.
  // The message being written: set by whoever sets writing_, left alone
  // until OnWriteDone clears writing_.
  RouteNote in_flight_;
  absl::Mutex mu_;
  std::deque<RouteNote> outbox_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;  // A write failed.
  bool reading_done_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
};

// The four methods; each returns the reactor that runs its call. The store
// is thread-safe, outlives the server, and is the only shared state.
class CallbackRouteGuideService final : public RouteGuide::CallbackService {
 public:
  explicit CallbackRouteGuideService(std::shared_ptr<FeatureStore> store)
      : store_(std::move(store)) {}

  grpc::ServerUnaryReactor* GetFeature(grpc::CallbackServerContext* context,
                                       const Point* request,
                                       Feature* reply) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    const GeoPoint point = FromProto(*request);
    if (absl::Status valid = ValidatePoint(point); !valid.ok()) {
      reactor->Finish(ToGrpcStatus(valid));
      return reactor;
    }
    if (std::optional<FeatureRecord> found = store_->Find(point)) {
      ToProto(*found, reply);
    } else {
      *reply->mutable_location() = *request;  // Nothing here: empty name.
    }
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerWriteReactor<Feature>* ListFeatures(
      grpc::CallbackServerContext* /*context*/,
      const Rectangle* request) override {
    return new FeatureLister(*store_, *request);
  }

  grpc::ServerReadReactor<Point>* RecordRoute(
      grpc::CallbackServerContext* /*context*/, RouteSummary* summary) override {
    return new RouteRecorder(*store_, summary);
  }

  grpc::ServerBidiReactor<RouteNote, RouteNote>* RouteChat(
      grpc::CallbackServerContext* /*context*/) override {
    return new Chatter(*store_);
  }

 private:
  const std::shared_ptr<FeatureStore> store_;
};

}  // namespace
}  // namespace routeguide

int main(int argc, char** argv) {
  return routeguide::bench::BaselineMain(
      argc, argv, "callback baseline",
      [](std::shared_ptr<routeguide::FeatureStore> store) {
        return std::make_unique<routeguide::CallbackRouteGuideService>(std::move(store));
      });
}
