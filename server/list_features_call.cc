// ListFeatures, server streaming: the whole life of one call.
//
//   state              event            ok     next
//   kAwaitingRequest   kRequestArrived  true   kWriting (first Write), or
//                                              kWritingLast (WriteAndFinish
//                                              of a lone feature), or
//                                              kFinishing (Finish: refused
//                                              by Admit, bad rectangle or
//                                              no feature)
//   kAwaitingRequest   kRequestArrived  false  (server stopping; deleted)
//   kWriting           kWriteDone       true   kWriting (next Write), or
//                                              kWritingLast (WriteAndFinish
//                                              of the last feature), or
//                                              kFinishing (Finish INTERNAL
//                                              should an encoding be
//                                              missing)
//   kWriting           kWriteDone       false  kClosed (stream broken:
//                                              cancelled or expired)
//   kWriting           kStopAlarm       -      kStopping (shutdown)
//   kStopping          kWriteDone       true   kFinishing (Finish
//                                              UNAVAILABLE)
//   kStopping          kWriteDone       false  kClosed
//   kWritingLast,      kFinishSent      any    kClosed
//   kFinishing
//   other              kStopAlarm       -      (nothing to do)
//   any                kDone            -      (noted; nothing to post)
//   anything else                              impossible: aborts
//
// One write at a time, as gRPC requires; the writes are coalesced (see
// WriteNextOrFinish). The call is in the stream registry from when it is
// admitted, so shutdown ends it with UNAVAILABLE once the Write in flight
// is done. A client that reads nothing holds that Write back for good (a
// Finish would wait behind it too): gRPC ends such a call when the grace
// period ends, also with UNAVAILABLE. The call is deleted by TaggedCall
// when its last tag comes back.
//
// Memory does not grow with the answer: a rectangle with up to
// kListedAtOnce features is listed from the store's spatial index; a
// larger one is walked with a cursor over the encoded features, a chunk of
// kChunk indexes at a time. A client that stops reading stalls the call's
// writes (flow control), so what a stalled call holds is that chunk plus
// gRPC's write buffer, whatever the rectangle.
#include <memory>
#include <vector>

#include "call_spawners.h"
#include "feature_wire_cache.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "proto_convert.h"
#include "streaming_server_call.h"

namespace routeguide {
namespace {

// Answers up to this size are listed at once (8 bytes a feature)...
constexpr size_t kListedAtOnce = 1024;
// ...larger ones are found kChunk at a time.
constexpr size_t kChunk = 256;

enum class ListFeaturesEvent : uint8_t {
  kRequestArrived,
  kWriteDone,
  kStopAlarm,
  kFinishSent,
  kDone,
  kCount
};

class ListFeaturesCall final
    : public StreamingServerCall<ListFeaturesCall, ListFeaturesEvent> {
 public:
  ListFeaturesCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq)
      : StreamingServerCall(env, cq, Method::kListFeatures,
                            absl::InfiniteDuration()),  // No idle timeout.
        writer_(&context_) {}

 private:
  friend class ServerCall<ListFeaturesCall, ListFeaturesEvent>;
  friend class StreamingServerCall<ListFeaturesCall, ListFeaturesEvent>;
  using Event = ListFeaturesEvent;
  enum class State {
    kAwaitingRequest,
    kWriting,
    kWritingLast,
    kStopping,
    kFinishing,
    kClosed
  };

  void RequestLocked(void* tag) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    env_.service->RequestListFeaturesEncoded(&context_, &request_, &writer_,
                                             cq_, cq_, tag);
  }

  void OnEventLocked(Event event, bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    switch (event) {
      case Event::kWriteDone:
        Expect(state_ == State::kWriting || state_ == State::kStopping,
               state_, event);
        if (!ok) {  // The stream is gone: nothing more can be sent.
          state_ = State::kClosed;
        } else if (state_ == State::kStopping) {
          FinishLocked(stop_status_);
        } else {
          WriteNextOrFinish();
        }
        return;
      case Event::kStopAlarm:
        OnStopAlarmLocked();
        return;
      case Event::kFinishSent:
        Expect(state_ == State::kWritingLast || state_ == State::kFinishing,
               state_, event);
        state_ = State::kClosed;
        return;
      default:
        Expect(false, state_, event);
    }
  }

  bool StoppableLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return state_ == State::kWriting;
  }

  // On the stop alarm: Finish follows the Write in flight.
  void EndEarlyLocked(const grpc::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    state_ = State::kStopping;
    stop_status_ = status;
  }

  // Posts Finish with `status` (no feature goes with it).
  void FinishLocked(const grpc::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    state_ = State::kFinishing;
    writer_.Finish(Outcome(status), Post(Event::kFinishSent));
  }

  void OnStartLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Expect(state_ == State::kAwaitingRequest, state_, Event::kRequestArrived);
    membership_.CountIn();
    if (grpc::Status allowed = env_.Admit(context_); !allowed.ok()) {
      FinishLocked(allowed);
      return;
    }
    JoinStreamsLocked();

    // The method is raw (features go out pre-encoded), so the request
    // arrives as bytes.
    Rectangle rectangle;
    if (!grpc::SerializationTraits<Rectangle>::Deserialize(&request_, &rectangle)
             .ok()) {
      FinishLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                "request is not a Rectangle"));
      return;
    }
    const GeoPoint lo = FromProto(rectangle.lo());
    const GeoPoint hi = FromProto(rectangle.hi());
    absl::Status valid = ValidatePoint(lo, "rectangle lo");
    if (valid.ok()) valid = ValidatePoint(hi, "rectangle hi");
    if (!valid.ok()) {
      FinishLocked(ToGrpcStatus(valid));
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
      FinishLocked(grpc::Status::OK);
      return;
    }
    const bool first = sent_ == 0;
    // Covering() encoded the store after every index asked for was in it
    // (and features are never removed), so this holds; if it ever did not,
    // the client gets an error rather than a wrong feature.
    if (!encoded_->Get(features_[next_++], &reply_)) {
      FinishLocked(grpc::Status(grpc::StatusCode::INTERNAL,
                                "a feature's encoding is missing"));
      return;
    }
    membership_.CountOut();
    ++sent_;
    if (!HaveNextLocked()) {
      state_ = State::kWritingLast;
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
  grpc::ServerAsyncWriter<EncodedMessage> writer_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kAwaitingRequest;
  grpc::Status stop_status_ ABSL_GUARDED_BY(mu_);  // Set by EndEarlyLocked.
  GeoRect rect_ ABSL_GUARDED_BY(mu_);
  // Insertion indexes of the features to send next, in order: the whole
  // answer, or the cursor's current chunk.
  std::vector<uint64_t> features_ ABSL_GUARDED_BY(mu_);
  bool scanning_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t scan_from_ ABSL_GUARDED_BY(mu_) = 0;  // The cursor.
  uint64_t sent_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<const FeatureWireCache::Snapshot> encoded_ ABSL_GUARDED_BY(mu_);
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
  EncodedMessage reply_ ABSL_GUARDED_BY(mu_);  // The feature being written.
};

}  // namespace

void SpawnListFeaturesCall(CallEnvironment& env,
                           grpc::ServerCompletionQueue* cq) {
  ListFeaturesCall::Spawn(env, cq);
}

}  // namespace routeguide
