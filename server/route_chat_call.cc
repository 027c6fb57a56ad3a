// RouteChat, bidirectional streaming: the whole life of one call.
//
// Reading and writing are independent: a Read and a Write may be in flight
// together, each with its own tag. Replies wait in `outbox_`; at most one
// Write is in flight.
//
//   reading side        event            ok     next
//   kAwaitingRequest    kRequestArrived  true   kReading (Read posted)
//   kAwaitingRequest    kRequestArrived  false  kDone (server stopping)
//   kAwaitingRequest    kRequestArrived  true   kDone with UNAUTHENTICATED
//                                               when a token is required
//                                               and missing or wrong
//   kReading            kReadDone        true   kReading: store the note,
//                                               queue the earlier notes
//                                               there, Read again; or
//                                               kDone with INVALID_ARGUMENT
//                                               for a point out of range or
//                                               a note over the length bound
//   kReading            kReadDone        false  kDone (client half-closed,
//                                               or the call is cancelled)
//
//   writing side        event            ok     next
//   idle                (reply queued)   -      Write posted
//   writing             kWriteDone       true   next Write, or idle
//   writing             kWriteDone       false  broken: the queue is
//                                               dropped, nothing more sent
//
// Finish is posted once, when reading is done and no Write is in flight
// with nothing left to send (or the stream broke). kFinishSent and kDone
// only record what happened. The call is deleted by TaggedCall when its
// last tag comes back.
#include <deque>
#include <utility>

#include "absl/strings/str_format.h"
#include "call_environment.h"
#include "proto_convert.h"
#include "tagged_call.h"

namespace routeguide {
namespace {

enum class RouteChatEvent : uint8_t {
  kRequestArrived,
  kReadDone,
  kWriteDone,
  kFinishSent,
  kDone,
  kCount
};

class RouteChatCall final : public TaggedCall<RouteChatCall, RouteChatEvent> {
 public:
  RouteChatCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq)
      : env_(env), membership_(*env.registry), cq_(cq), stream_(&context_) {}

  void Start() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    context_.AsyncNotifyWhenDone(Post(Event::kDone));
    read_state_ = ReadState::kAwaitingRequest;
    env_.service->RequestRouteChat(&context_, &stream_, cq_, cq_,
                                   Post(Event::kRequestArrived));
  }

 private:
  friend class TaggedCall<RouteChatCall, RouteChatEvent>;
  using Event = RouteChatEvent;
  enum class ReadState { kAwaitingRequest, kReading, kDone };
  enum class WriteState { kIdle, kWriting, kBroken };

  void ProceedLocked(Event event, bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    switch (event) {
      case Event::kRequestArrived:
        OnRequestArrived(ok);
        break;
      case Event::kReadDone:
        OnReadDone(ok);
        break;
      case Event::kWriteDone:
        OnWriteDone(ok);
        break;
      case Event::kFinishSent:
        break;
      case Event::kDone:
        if (context_.IsCancelled()) {
          membership_.MarkCancelled();
          // Pending operations will fail on their own; replies not yet
          // written have nowhere to go.
          outbox_.clear();
        }
        break;
      case Event::kCount:
        break;
    }
  }

  void OnRequestArrived(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!ok) {  // The server is shutting down; the call never started.
      Withdraw(Event::kDone);
      read_state_ = ReadState::kDone;
      return;
    }
    membership_.Activate();
    SpawnRouteChatCall(env_, cq_);
    if (grpc::Status allowed = env_.Authorize(context_); !allowed.ok()) {
      read_state_ = ReadState::kDone;
      final_status_ = allowed;
      MaybeFinish();
      return;
    }
    read_state_ = ReadState::kReading;
    stream_.Read(&incoming_, Post(Event::kReadDone));
  }

  void OnReadDone(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!ok) {
      read_state_ = ReadState::kDone;
      MaybeFinish();
      return;
    }
    Note note{FromProto(incoming_.location()),
              std::move(*incoming_.mutable_message())};
    absl::Status valid = ValidatePoint(note.location, "note location");
    if (valid.ok() && note.message.size() > env_.max_note_bytes) {
      valid = absl::InvalidArgumentError(absl::StrFormat(
          "note message is %d bytes, longer than the limit of %d",
          note.message.size(), env_.max_note_bytes));
    }
    if (!valid.ok()) {
      read_state_ = ReadState::kDone;
      final_status_ = ToGrpcStatus(valid);
      MaybeFinish();
      return;
    }
    for (Note& earlier : env_.store->AddNote(std::move(note))) {
      ToProto(earlier, &outbox_.emplace_back());
    }
    MaybeWrite();
    stream_.Read(&incoming_, Post(Event::kReadDone));
  }

  void OnWriteDone(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!ok) {
      write_state_ = WriteState::kBroken;
      outbox_.clear();
    } else {
      write_state_ = WriteState::kIdle;
      MaybeWrite();
    }
    MaybeFinish();
  }

  // Starts the next Write unless one is in flight. Write serializes the
  // message before it returns, so the note can leave the queue at once.
  void MaybeWrite() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (write_state_ != WriteState::kIdle || outbox_.empty()) return;
    write_state_ = WriteState::kWriting;
    stream_.Write(outbox_.front(), Post(Event::kWriteDone));
    outbox_.pop_front();
  }

  void MaybeFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finish_posted_ || read_state_ != ReadState::kDone ||
        write_state_ == WriteState::kWriting) {
      return;
    }
    finish_posted_ = true;
    stream_.Finish(final_status_, Post(Event::kFinishSent));
  }

  CallEnvironment& env_;
  // First after env_, so it is destroyed last: the registry counts the
  // call until all of it is gone.
  CallRegistry::Membership membership_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext context_;
  grpc::ServerAsyncReaderWriter<RouteNote, RouteNote> stream_;
  ReadState read_state_ ABSL_GUARDED_BY(mu_) = ReadState::kAwaitingRequest;
  WriteState write_state_ ABSL_GUARDED_BY(mu_) = WriteState::kIdle;
  bool finish_posted_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
  RouteNote incoming_ ABSL_GUARDED_BY(mu_);  // Filled by the pending Read.
  std::deque<RouteNote> outbox_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

void SpawnRouteChatCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq) {
  (new RouteChatCall(env, cq))->Start();
}

}  // namespace routeguide
