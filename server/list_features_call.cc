// ListFeatures, server streaming: the whole life of one call.
//
//   state              event            ok     next
//   kAwaitingRequest   kRequestArrived  true   kWriting (first Write) or
//                                              kClosing (WriteAndFinish of
//                                              a lone feature; Finish:
//                                              missing token, bad rectangle
//                                              or no feature)
//   kAwaitingRequest   kRequestArrived  false  kClosed (server stopping)
//   kWriting           kWriteDone       true   kWriting (next Write) or
//                                              kClosing (WriteAndFinish of
//                                              the last feature; Finish
//                                              INTERNAL should an encoding
//                                              be missing)
//   kWriting           kWriteDone       false  kClosed (stream broken:
//                                              cancelled or expired)
//   kClosing           kFinishSent      any    kClosed
//   any                kDone            -      (noted; nothing to post)
//
// One write at a time, as gRPC requires; the writes are coalesced (see
// WriteNextOrFinish). The call is deleted by
// TaggedCall when its last tag comes back.
//
// Memory does not grow with the answer: a rectangle with up to
// kListedAtOnce features is listed from the store's spatial index; a
// larger one is walked with a cursor over the encoded features, a chunk of
// kChunk indexes at a time. A client that stops reading stalls the call's
// writes (flow control), so what a stalled call holds is that chunk plus
// gRPC's write buffer, whatever the rectangle.
#include <memory>
#include <vector>

#include "feature_wire_cache.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "proto_convert.h"
#include "server_call.h"

namespace routeguide {
namespace {

// Answers up to this size are listed at once (8 bytes a feature)...
constexpr size_t kListedAtOnce = 1024;
// ...larger ones are found kChunk at a time.
constexpr size_t kChunk = 256;

enum class ListFeaturesEvent : uint8_t {
  kRequestArrived,
  kWriteDone,
  kFinishSent,
  kDone,
  kCount
};

class ListFeaturesCall final
    : public ServerCall<ListFeaturesCall, ListFeaturesEvent> {
 public:
  ListFeaturesCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq)
      : ServerCall(env, cq, Method::kListFeatures),
        writer_(&context_) {}

  void Start() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    WatchForDoneLocked();
    state_ = State::kAwaitingRequest;
    env_.service->RequestListFeatures(&context_, &request_, &writer_, cq_, cq_,
                                      Post(Event::kRequestArrived));
  }

 private:
  friend class TaggedCall<ListFeaturesCall, ListFeaturesEvent>;
  using Event = ListFeaturesEvent;
  enum class State { kAwaitingRequest, kWriting, kClosing, kClosed };

  void ProceedLocked(Event event, bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    switch (event) {
      case Event::kRequestArrived:
        OnRequestArrived(ok);
        break;
      case Event::kWriteDone:
        OnWriteDone(ok);
        break;
      case Event::kFinishSent:
        state_ = State::kClosed;
        break;
      case Event::kDone:
        NoteDoneLocked();
        break;
      case Event::kCount:
        break;
    }
  }

  void OnRequestArrived(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!AcceptLocked(ok, &SpawnListFeaturesCall)) {  // The server is stopping.
      state_ = State::kClosed;
      return;
    }
    membership_.CountIn();
    if (grpc::Status allowed = env_.Admit(context_); !allowed.ok()) {
      state_ = State::kClosing;
      writer_.Finish(Outcome(allowed), Post(Event::kFinishSent));
      return;
    }

    // The method is raw (features go out pre-encoded), so the request
    // arrives as bytes.
    Rectangle rectangle;
    if (!grpc::SerializationTraits<Rectangle>::Deserialize(&request_, &rectangle)
             .ok()) {
      state_ = State::kClosing;
      writer_.Finish(Outcome(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                          "request is not a Rectangle")),
                     Post(Event::kFinishSent));
      return;
    }
    const GeoPoint lo = FromProto(rectangle.lo());
    const GeoPoint hi = FromProto(rectangle.hi());
    absl::Status valid = ValidatePoint(lo, "rectangle lo");
    if (valid.ok()) valid = ValidatePoint(hi, "rectangle hi");
    if (!valid.ok()) {
      state_ = State::kClosing;
      writer_.Finish(Outcome(ToGrpcStatus(valid)), Post(Event::kFinishSent));
      return;
    }
    rect_ = GeoRect::FromCorners(lo, hi);
    if (auto listed = env_.store->FeatureIndexesIn(rect_, kListedAtOnce)) {
      features_ = *std::move(listed);
      if (!features_.empty()) encoded_ = env_.wire->Covering(features_.back() + 1);
    } else {
      // Every feature stored now is in the snapshot the cursor walks.
      encoded_ = env_.wire->Covering(env_.store->feature_count());
      scanning_ = true;
    }
    WriteNextOrFinish();
  }

  void OnWriteDone(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!ok) {  // The stream is gone: nothing more can be sent.
      state_ = State::kClosed;
      return;
    }
    WriteNextOrFinish();
  }

  // Coalesces the stream into two socket writes, where one Write per
  // feature would cost a sendmsg each. gRPC 1.51's rules (pinned by
  // tests/write_coalescing_test.cc):
  //  - a Write with buffer_hint completes at once, unsent, while the
  //    stream holds less than the transport's write buffer (64 KiB by
  //    default); past that it is flushed and completes when written;
  //  - but a batch that carries the response headers completes only once
  //    they are on the wire, and a buffered one starts no write, so a
  //    buffered *first* Write would never complete (and no later Write may
  //    be posted before it does). The first Write therefore flushes;
  //  - the last feature goes out with the status in one WriteAndFinish,
  //    which flushes everything buffered.
  void WriteNextOrFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!HaveNextLocked()) {  // Nothing to send at all.
      state_ = State::kClosing;
      writer_.Finish(Outcome(grpc::Status::OK), Post(Event::kFinishSent));
      return;
    }
    const bool first = sent_ == 0;
    // Covering() encoded the store after every index asked for was in it
    // (and features are never removed), so this holds; if it ever did not,
    // the client gets an error rather than a wrong feature.
    if (!encoded_->Get(features_[next_++], &reply_)) {
      state_ = State::kClosing;
      writer_.Finish(Outcome(grpc::Status(grpc::StatusCode::INTERNAL,
                                          "a feature's encoding is missing")),
                     Post(Event::kFinishSent));
      return;
    }
    membership_.CountOut();
    ++sent_;
    if (!HaveNextLocked()) {
      state_ = State::kClosing;
      writer_.WriteAndFinish(reply_, grpc::WriteOptions(),
                             Outcome(grpc::Status::OK), Post(Event::kFinishSent));
      return;
    }
    grpc::WriteOptions options;
    if (!first) options.set_buffer_hint();
    state_ = State::kWriting;
    writer_.Write(reply_, options, Post(Event::kWriteDone));
  }

  // Whether features_[next_] is a feature still to send, finding the next
  // chunk when the cursor walks a large answer.
  bool HaveNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (next_ == features_.size()) {
      if (!scanning_ || scan_from_ >= encoded_->size()) return false;
      features_.clear();
      next_ = 0;
      scan_from_ = encoded_->Scan(rect_, scan_from_, kChunk, &features_);
    }
    return true;
  }

  grpc::ByteBuffer request_;  // A Rectangle, encoded.
  grpc::ServerAsyncWriter<grpc::ByteBuffer> writer_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kAwaitingRequest;
  GeoRect rect_ ABSL_GUARDED_BY(mu_);
  // Insertion indexes of the features to send next, in order: the whole
  // answer, or the cursor's current chunk.
  std::vector<uint64_t> features_ ABSL_GUARDED_BY(mu_);
  bool scanning_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t scan_from_ ABSL_GUARDED_BY(mu_) = 0;  // The cursor.
  uint64_t sent_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<const FeatureWireCache::Snapshot> encoded_ ABSL_GUARDED_BY(mu_);
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::ByteBuffer reply_ ABSL_GUARDED_BY(mu_);  // Must outlive its Write.
};

}  // namespace

void SpawnListFeaturesCall(CallEnvironment& env,
                           grpc::ServerCompletionQueue* cq) {
  (new ListFeaturesCall(env, cq))->Start();
}

}  // namespace routeguide
