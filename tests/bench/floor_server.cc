// cq-floor-server: the least a RouteGuide server on gRPC's completion-queue
// API can do, for benchmarks to ask how far any such server could go on
// this gRPC (1.51), and so how close ours is to that limit.
//
// It answers as ours does (the load generator checks every answer) but has
// nothing a production server adds: no HTTP/2 guard, admission, idle
// timers, health, reflection or metrics; raw methods, so a request is read
// straight from its bytes and the features go out pre-encoded (and
// buffered, as ours are, into two socket writes a stream); one queue
// with one poller thread; each call one object with at most one operation
// in flight, so its own pointer is its only tag. What remains per message
// is gRPC's: one batch, one completion, one trip through the queue.
// RouteChat is not part of the floor: it is answered UNIMPLEMENTED.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "baseline_server.h"
#include "feature_store.h"
#include "geo.h"
#include "grpcpp/alarm.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/async_stream.h"
#include "grpcpp/support/async_unary_call.h"
#include "grpcpp/support/byte_buffer.h"
#include "proto_convert.h"
#include "route_guide.grpc.pb.h"
#include "wire_messages.h"

namespace routeguide {
namespace {

using RawService = RouteGuide::WithRawMethod_GetFeature<
    RouteGuide::WithRawMethod_ListFeatures<RouteGuide::WithRawMethod_RecordRoute<
        RouteGuide::WithRawMethod_RouteChat<RouteGuide::Service>>>>;

// Requests kept posted per method, as our server's default.
constexpr int kPostedRequestsPerMethod = 2;

// The features, encoded once.
class EncodedFeatures {
 public:
  explicit EncodedFeatures(const FeatureStore& store) {
    const GeoRect world = GeoRect::FromCorners(
        {-kMaxLatitudeE7, -kMaxLongitudeE7}, {kMaxLatitudeE7, kMaxLongitudeE7});
    for (const FeatureRecord& record : store.FeaturesIn(world)) {
      Feature feature;
      ToProto(record, &feature);
      grpc::ByteBuffer bytes = ToWire(feature);
      all_.push_back({record.location, bytes});
      by_point_.emplace(Key(record.location), std::move(bytes));
    }
  }

  // The feature at `point`, or an unnamed one there.
  grpc::ByteBuffer At(const GeoPoint& point) const {
    auto found = by_point_.find(Key(point));
    if (found != by_point_.end()) return found->second;
    Feature unnamed;
    ToProto(point, unnamed.mutable_location());
    return ToWire(unnamed);
  }

  bool Contains(const GeoPoint& point) const {
    return by_point_.contains(Key(point));
  }

  // Each feature in `rect`, in the store's order.
  std::vector<const grpc::ByteBuffer*> In(const GeoRect& rect) const {
    std::vector<const grpc::ByteBuffer*> out;
    for (const Entry& entry : all_) {
      if (rect.Contains(entry.location)) out.push_back(&entry.bytes);
    }
    return out;
  }

 private:
  struct Entry {
    GeoPoint location;
    grpc::ByteBuffer bytes;
  };

  static uint64_t Key(const GeoPoint& p) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(p.latitude)) << 32) |
           static_cast<uint32_t>(p.longitude);
  }

  std::vector<Entry> all_;
  absl::flat_hash_map<uint64_t, grpc::ByteBuffer> by_point_;
};

grpc::Status BadPoint(const std::optional<GeoPoint>& point) {
  if (!point) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "the request is not a routeguide.Point");
  }
  return ToGrpcStatus(ValidatePoint(*point));
}

struct Floor {
  RawService* service = nullptr;
  const FeatureStore* store = nullptr;
  std::unique_ptr<EncodedFeatures> features;
  std::unique_ptr<grpc::ServerCompletionQueue> queue;
  std::thread poller;
  // Set by the poller when it shuts the queue down: from then on no call
  // may post anything (gRPC aborts on an operation posted to a shut-down
  // queue), so every completion still to come just frees its call. Only
  // the poller touches it.
  bool stopping = false;
};

// One call: Proceed(ok) is its one event, since it has at most one
// operation in flight; it returns false when the call is over, and the
// poller deletes it (the one place that does).
class Call {
 public:
  virtual ~Call() = default;
  virtual bool Proceed(bool ok) = 0;
};

class GetFeatureCall final : public Call {
 public:
  explicit GetFeatureCall(Floor& floor) : floor_(floor), responder_(&context_) {
    floor_.service->RequestGetFeature(&context_, &request_, &responder_,
                                      floor_.queue.get(), floor_.queue.get(), this);
  }

  bool Proceed(bool ok) override {
    switch (state_) {
      case State::kRequested: {
        if (!ok) return false;  // Shutting down.
        new GetFeatureCall(floor_);
        const std::optional<GeoPoint> point = ParsePointWire(request_);
        state_ = State::kFinishing;
        if (!point || !IsValidPoint(*point)) {
          responder_.FinishWithError(BadPoint(point), this);
        } else {
          responder_.Finish(floor_.features->At(*point), grpc::Status::OK, this);
        }
        return true;
      }
      case State::kFinishing:
        return false;
    }
    return false;
  }

 private:
  enum class State { kRequested, kFinishing };
  Floor& floor_;
  State state_ = State::kRequested;
  grpc::ServerContext context_;
  grpc::ByteBuffer request_;
  grpc::ServerAsyncResponseWriter<grpc::ByteBuffer> responder_;
};

class ListFeaturesCall final : public Call {
 public:
  explicit ListFeaturesCall(Floor& floor) : floor_(floor), writer_(&context_) {
    floor_.service->RequestListFeatures(&context_, &request_, &writer_,
                                        floor_.queue.get(), floor_.queue.get(), this);
  }

  bool Proceed(bool ok) override {
    switch (state_) {
      case State::kRequested: {
        if (!ok) return false;
        new ListFeaturesCall(floor_);
        Rectangle rect;
        if (!ParseWire(request_, &rect)) {
          state_ = State::kFinishing;
          writer_.Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                      "the request is not a routeguide.Rectangle"),
                         this);
          return true;
        }
        const GeoPoint lo = FromProto(rect.lo());
        const GeoPoint hi = FromProto(rect.hi());
        absl::Status valid = ValidatePoint(lo, "rectangle lo");
        if (valid.ok()) valid = ValidatePoint(hi, "rectangle hi");
        if (!valid.ok()) {
          state_ = State::kFinishing;
          writer_.Finish(ToGrpcStatus(valid), this);
          return true;
        }
        features_ = floor_.features->In(GeoRect::FromCorners(lo, hi));
        WriteNextOrFinish();
        return true;
      }
      case State::kWriting:
        if (!ok) return false;  // The stream is gone.
        WriteNextOrFinish();
        return true;
      case State::kFinishing:
        return false;
    }
    return false;
  }

 private:
  enum class State { kRequested, kWriting, kFinishing };

  void WriteNextOrFinish() {
    if (next_ == features_.size()) {
      state_ = State::kFinishing;
      writer_.Finish(grpc::Status::OK, this);
    } else if (next_ + 1 == features_.size()) {
      state_ = State::kFinishing;
      writer_.WriteAndFinish(*features_[next_++], grpc::WriteOptions(),
                             grpc::Status::OK, this);
    } else {
      // As ours: every Write but the first (whose batch carries the
      // headers, so it completes only once written) is buffered, and
      // WriteAndFinish flushes them; otherwise each is a send of its own.
      grpc::WriteOptions options;
      if (next_ > 0) options.set_buffer_hint();
      state_ = State::kWriting;
      writer_.Write(*features_[next_++], options, this);
    }
  }

  Floor& floor_;
  State state_ = State::kRequested;
  grpc::ServerContext context_;
  grpc::ByteBuffer request_;
  grpc::ServerAsyncWriter<grpc::ByteBuffer> writer_;
  std::vector<const grpc::ByteBuffer*> features_;
  size_t next_ = 0;
};

class RecordRouteCall final : public Call {
 public:
  explicit RecordRouteCall(Floor& floor) : floor_(floor), reader_(&context_) {
    floor_.service->RequestRecordRoute(&context_, &reader_, floor_.queue.get(),
                                       floor_.queue.get(), this);
  }

  bool Proceed(bool ok) override {
    switch (state_) {
      case State::kRequested:
        if (!ok) return false;
        new RecordRouteCall(floor_);
        start_ = absl::Now();
        state_ = State::kReading;
        reader_.Read(&incoming_, this);
        return true;
      case State::kReading:
        if (!ok) {  // The client ended its stream (or the call is gone).
          FinishWithSummary();
          return true;
        }
        if (std::optional<GeoPoint> point = ParsePointWire(incoming_);
            point && IsValidPoint(*point)) {
          ++point_count_;
          if (floor_.features->Contains(*point)) ++feature_count_;
          route_.Add(*point);
          reader_.Read(&incoming_, this);
        } else {
          state_ = State::kFinishing;
          reader_.FinishWithError(BadPoint(point), this);
        }
        return true;
      case State::kFinishing:
        return false;
    }
    return false;
  }

 private:
  enum class State { kRequested, kReading, kFinishing };

  void FinishWithSummary() {
    state_ = State::kFinishing;
    reader_.Finish(ToWire(MakeRouteSummary(point_count_, feature_count_,
                                           route_.meters(), start_)),
                   grpc::Status::OK, this);
  }

  Floor& floor_;
  State state_ = State::kRequested;
  grpc::ServerContext context_;
  grpc::ServerAsyncReader<grpc::ByteBuffer, grpc::ByteBuffer> reader_;
  grpc::ByteBuffer incoming_;
  absl::Time start_;
  uint64_t point_count_ = 0;
  uint64_t feature_count_ = 0;
  RouteLength route_;
};

class RouteChatCall final : public Call {
 public:
  explicit RouteChatCall(Floor& floor) : floor_(floor), stream_(&context_) {
    floor_.service->RequestRouteChat(&context_, &stream_, floor_.queue.get(),
                                     floor_.queue.get(), this);
  }

  bool Proceed(bool ok) override {
    if (finishing_ || !ok) return false;
    new RouteChatCall(floor_);
    finishing_ = true;
    stream_.Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                "the floor server does not serve RouteChat"),
                   this);
    return true;
  }

 private:
  Floor& floor_;
  bool finishing_ = false;
  grpc::ServerContext context_;
  grpc::ServerAsyncReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer> stream_;
};

// Shuts the queue down from the poller's own thread, once the server has
// shut down: completions already queued before it (a cancelled call's
// Read, a request matched just before the shutdown) would otherwise post
// their next operation after the queue is shut.
class StopCall final : public Call {
 public:
  explicit StopCall(Floor& floor) : floor_(floor) {
    alarm_.Set(floor_.queue.get(), gpr_now(GPR_CLOCK_MONOTONIC), this);
  }

  bool Proceed(bool /*ok*/) override {
    floor_.stopping = true;
    floor_.queue->Shutdown();
    return false;
  }

 private:
  Floor& floor_;
  grpc::Alarm alarm_;
};

// The one place calls are deleted: when a call says it is over, and, once
// the queue is shut down, at each completion still to come (each call has
// at most one operation in flight, so that was its last).
void Poll(Floor& floor) {
  void* tag = nullptr;
  bool ok = false;
  while (floor.queue->Next(&tag, &ok)) {
    Call* call = static_cast<Call*>(tag);
    if (floor.stopping || !call->Proceed(ok)) delete call;
  }
}

}  // namespace
}  // namespace routeguide

int main(int argc, char** argv) {
  // Outlives the server (destroyed inside BaselineMain), and goes before
  // main returns, not among the static destructors at exit.
  routeguide::Floor floor;
  routeguide::bench::AsyncHooks hooks;
  hooks.configure = [&floor](grpc::ServerBuilder& builder) {
    floor.queue = builder.AddCompletionQueue();
  };
  hooks.started = [&floor](grpc::Server&) {
    floor.features = std::make_unique<routeguide::EncodedFeatures>(*floor.store);
    for (int i = 0; i < routeguide::kPostedRequestsPerMethod; ++i) {
      new routeguide::GetFeatureCall(floor);
      new routeguide::ListFeaturesCall(floor);
      new routeguide::RecordRouteCall(floor);
      new routeguide::RouteChatCall(floor);
    }
    floor.poller = std::thread(routeguide::Poll, std::ref(floor));
  };
  hooks.stopped = [&floor] {
    if (floor.poller.joinable()) {
      new routeguide::StopCall(floor);
      floor.poller.join();  // Poll drains the queue until Next says false.
    } else {  // Never started: nothing was posted.
      floor.queue->Shutdown();
      routeguide::Poll(floor);
    }
  };
  return routeguide::bench::BaselineMain(
      argc, argv, "cq floor",
      [&floor](std::shared_ptr<routeguide::FeatureStore> store) {
        floor.store = store.get();
        auto service = std::make_unique<routeguide::RawService>();
        floor.service = service.get();
        return service;
      },
      hooks);
}
