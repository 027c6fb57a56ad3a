// RouteChat, bidirectional streaming: the whole life of one call.
//
// Reading and writing are independent: a Read and a Write may be in flight
// together, each with its own tag. Replies wait in `outbox_`; at most one
// Write is in flight. When more than --max_queued_replies wait, no Read is
// posted until half of them are written (the client is sending faster than
// it reads).
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
// Ending early (idle for --stream_idle_timeout: DEADLINE_EXCEEDED; asked by
// shutdown: UNAVAILABLE) happens while a Read is pending: the queue is
// dropped, and the pending Read comes back later and is ignored.
//
//   reading side        event            ok     next
//   kReading            kIdleAlarm       true   ended early when idle long
//                                               enough, else set again
//   kReading            kStopAlarm       -      ended early
//
// Finish is posted once, when reading is done (or the call was ended
// early) and no Write is in flight with nothing left to send (or the
// stream broke). kFinishSent and kDone only record what happened. The call is deleted by TaggedCall when its
// last tag comes back.
#include <deque>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/strings/str_cat.h"
#include "proto_convert.h"
#include "stream_timers.h"
#include "server_call.h"

namespace routeguide {
namespace {

enum class RouteChatEvent : uint8_t {
  kRequestArrived,
  kReadDone,
  kWriteDone,
  kIdleAlarm,
  kStopAlarm,
  kFinishSent,
  kDone,
  kCount
};

class RouteChatCall final : public ServerCall<RouteChatCall, RouteChatEvent>,
                            public StreamRegistry::Member {
 public:
  RouteChatCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq)
      : ServerCall(env, cq, Method::kRouteChat),
        stream_(&context_),
        timers_(env.stream_idle_timeout) {}

  ~RouteChatCall() override {
    if (registered_) env_.streams->Remove(this);  // Before anything goes.
  }

  void Start() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    WatchForDoneLocked();
    read_state_ = ReadState::kAwaitingRequest;
    env_.service->RequestRouteChat(&context_, &stream_, cq_, cq_,
                                   Post(Event::kRequestArrived));
  }

  ABSL_NO_THREAD_SAFETY_ANALYSIS bool TryRequestStop() override {
    if (!mu_.TryLock()) return false;
    // PendingLocked() == 0: the call is being deleted; leave it be.
    if (Open() && !timers_.stop_armed() && PendingLocked() > 0) {
      timers_.ArmStop(cq_, Post(Event::kStopAlarm));
    }
    mu_.Unlock();
    return true;
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
      case Event::kIdleAlarm: {
        const bool idle = timers_.IdleFired();
        if (!ok || !Open()) break;  // Cancelled at the end.
        if (idle) {
          EndEarly(grpc::Status(
              grpc::StatusCode::DEADLINE_EXCEEDED,
              absl::StrCat("no note received for ",
                           absl::FormatDuration(timers_.idle_timeout()))));
        } else {
          timers_.ArmIdle(cq_, Post(Event::kIdleAlarm));
        }
        break;
      }
      case Event::kStopAlarm:
        timers_.StopFired();
        if (Open()) {
          EndEarly(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                "the server is shutting down"));
        }
        break;
      case Event::kFinishSent:
        break;
      case Event::kDone:
        NoteDoneLocked();
        // Cancelled: pending operations will fail on their own, and replies
        // not yet written have nowhere to go.
        if (context_.IsCancelled()) outbox_.clear();
        break;
      case Event::kCount:
        break;
    }
  }

  void OnRequestArrived(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!AcceptLocked(ok, &SpawnRouteChatCall)) {  // The server is stopping.
      read_state_ = ReadState::kDone;
      return;
    }
    if (grpc::Status allowed = env_.Authorize(context_); !allowed.ok()) {
      read_state_ = ReadState::kDone;
      final_status_ = allowed;
      MaybeFinish();
      return;
    }
    registered_ = true;
    env_.streams->Add(this);
    timers_.Touch();
    if (timers_.idle_enabled()) timers_.ArmIdle(cq_, Post(Event::kIdleAlarm));
    read_state_ = ReadState::kReading;
    stream_.Read(&incoming_, Post(Event::kReadDone));
  }

  // Still reading notes and not being ended.
  bool Open() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return read_state_ == ReadState::kReading && !ending_;
  }

  void OnReadDone(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (ending_) {  // The Read pending when the call was ended early.
      read_state_ = ReadState::kDone;
      return;
    }
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
    timers_.Touch();
    membership_.CountIn();
    for (Note& earlier : env_.store->AddNote(std::move(note))) {
      ToProto(earlier, &outbox_.emplace_back());
    }
    MaybeWrite();
    // Backpressure: a client that sends faster than it reads would grow
    // the queue without end. Past the bound, stop reading (its writes then
    // wait on HTTP/2 flow control) until the queue drains to half.
    if (outbox_.size() > env_.max_queued_replies) {
      reading_paused_ = true;
      return;
    }
    stream_.Read(&incoming_, Post(Event::kReadDone));
  }

  void ResumeReadingIfDrained() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!reading_paused_ || outbox_.size() > env_.max_queued_replies / 2) return;
    reading_paused_ = false;
    if (ending_) return;
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
    ResumeReadingIfDrained();  // A broken stream's Read fails at once.
    MaybeFinish();
  }

  // Starts the next Write unless one is in flight. Write serializes the
  // message before it returns, so the note can leave the queue at once.
  void MaybeWrite() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (write_state_ != WriteState::kIdle || outbox_.empty()) return;
    write_state_ = WriteState::kWriting;
    membership_.CountOut();
    stream_.Write(outbox_.front(), Post(Event::kWriteDone));
    outbox_.pop_front();
  }

  // Ends the call with `status` while its Read is still pending: queued
  // replies are dropped, and Finish follows the Write in flight, if any.
  void EndEarly(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ending_ = true;
    final_status_ = status;
    outbox_.clear();
    MaybeFinish();
  }

  void MaybeFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finish_posted_ || (read_state_ != ReadState::kDone && !ending_) ||
        write_state_ == WriteState::kWriting) {
      return;
    }
    finish_posted_ = true;
    timers_.CancelIdle();
    stream_.Finish(Outcome(final_status_), Post(Event::kFinishSent));
  }

  grpc::ServerAsyncReaderWriter<RouteNote, RouteNote> stream_;
  StreamTimers timers_ ABSL_GUARDED_BY(mu_);
  bool registered_ = false;  // In env_.streams; set once, under mu_.
  bool ending_ ABSL_GUARDED_BY(mu_) = false;  // Ended early (EndEarly).
  // No Read posted while too many replies wait (backpressure).
  bool reading_paused_ ABSL_GUARDED_BY(mu_) = false;
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
