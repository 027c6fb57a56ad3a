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
// Ending early, at any point before Finish: DEADLINE_EXCEEDED when no note
// was read and no reply written for --stream_idle_timeout (the idle alarm),
// UNAVAILABLE when shutdown asks (the stop alarm), CANCELLED when the done
// notification says so while reading is paused. The queue is dropped; a
// Write in flight is cancelled (it may never complete if the client reads
// nothing, and Finish may not overlap it); a pending Read comes back later
// and is ignored.
//
//   event            ok     next
//   kIdleAlarm       true   ended early when idle long enough, else set again
//   kStopAlarm       -      ended early
//   kDone            -      cancelled: ended early if reading was paused
//
// Finish is posted once, when reading is done (or the call was ended
// early) and no Write is in flight with nothing left to send (or the
// stream broke). kFinishSent and kDone only record what happened. The call is deleted by TaggedCall when its
// last tag comes back.
#include <deque>
#include <vector>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/strings/str_cat.h"
#include "proto_convert.h"
#include "stream_timers.h"
#include "wire_messages.h"
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
    if (!finish_posted_ && !ending_ && read_state_ != ReadState::kAwaitingRequest &&
        !timers_.stop_armed() && PendingLocked() > 0) {
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
        // Idle: no note read and no reply written for the timeout. Also
        // after reading ended (the client half-closed) while replies are
        // still due, and while reading is paused for backpressure.
        const bool idle = timers_.IdleFired();
        if (!ok || finish_posted_) break;  // Cancelled at the end.
        if (!idle) {
          timers_.ArmIdle(cq_, Post(Event::kIdleAlarm));
        } else if (!ending_) {
          EndEarly(grpc::Status(
              grpc::StatusCode::DEADLINE_EXCEEDED,
              absl::StrCat("no progress for ",
                           absl::FormatDuration(timers_.idle_timeout()))));
        }
        break;
      }
      case Event::kStopAlarm:
        timers_.StopFired();
        if (!finish_posted_ && !ending_) {
          EndEarly(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                "the server is shutting down"));
        }
        break;
      case Event::kFinishSent:
        break;
      case Event::kDone:
        NoteDoneLocked();
        // Cancelled: replies not yet written have nowhere to go. Pending
        // operations fail on their own; a call paused for backpressure has
        // none, so it is ended here.
        if (context_.IsCancelled()) {
          outbox_.clear();
          if (!finish_posted_ && !ending_) {
            EndEarly(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
          }
        }
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
    if (grpc::Status allowed = env_.Admit(context_); !allowed.ok()) {
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
    RouteNote message;
    if (!ParseWire(incoming_, &message)) {
      read_state_ = ReadState::kDone;
      final_status_ = grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("message ", notes_read_ + 1,
                       " of the stream is not a routeguide.RouteNote (not "
                       "protobuf, or a message that is not UTF-8)"));
      MaybeFinish();
      return;
    }
    ++notes_read_;
    Note note{FromProto(message.location()), std::move(*message.mutable_message())};
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
    std::vector<Note> earlier = env_.store->AddNote(std::move(note));
    // A broken stream sends nothing more: its replies are dropped.
    if (write_state_ != WriteState::kBroken) {
      RouteNote reply_message;
      for (Note& reply : earlier) {
        ToProto(reply, &reply_message);
        outbox_.push_back(ToWire(reply_message));
      }
    }
    MaybeWrite();
    // Backpressure: a client that sends faster than it reads would grow
    // the queue without end. Past the bound, stop reading (its writes then
    // wait on HTTP/2 flow control) until the Write in flight has drained
    // the queue to half.
    if (write_state_ == WriteState::kWriting &&
        outbox_.size() > env_.max_queued_replies) {
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
      timers_.Touch();  // Progress: the client is reading.
      write_state_ = WriteState::kIdle;
      MaybeWrite();
    }
    ResumeReadingIfDrained();  // A broken stream's Read fails at once.
    MaybeFinish();
  }

  // Starts the next Write unless one is in flight. Write serializes the
  // message before it returns, so the note can leave the queue at once.
  // A reply with more queued behind it is buffered (it completes at once,
  // unsent) and the last one flushes them all, so a burst of replies costs
  // one socket write rather than one each. The first Write carries the
  // headers and always flushes: buffered, it would never complete (see
  // list_features_call.cc and tests/write_coalescing_test.cc).
  void MaybeWrite() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (write_state_ != WriteState::kIdle || outbox_.empty()) return;
    write_state_ = WriteState::kWriting;
    membership_.CountOut();
    grpc::WriteOptions options;
    if (headers_sent_ && outbox_.size() > 1) options.set_buffer_hint();
    headers_sent_ = true;
    stream_.Write(outbox_.front(), options, Post(Event::kWriteDone));
    outbox_.pop_front();
  }

  // Ends the call with `status`, maybe while its Read is pending: queued
  // replies are dropped, and Finish follows the Write in flight, if any. A
  // Write that cannot complete (the client reads nothing) is cancelled, as
  // Finish may not overlap it.
  void EndEarly(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ending_ = true;
    final_status_ = status;
    outbox_.clear();
    if (write_state_ == WriteState::kWriting) context_.TryCancel();
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

  // Raw: see wire_messages.h.
  grpc::ServerAsyncReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer> stream_;
  StreamTimers timers_ ABSL_GUARDED_BY(mu_);
  bool registered_ = false;  // In env_.streams; set once, under mu_.
  bool ending_ ABSL_GUARDED_BY(mu_) = false;  // Ended early (EndEarly).
  // No Read posted while too many replies wait (backpressure).
  bool reading_paused_ ABSL_GUARDED_BY(mu_) = false;
  ReadState read_state_ ABSL_GUARDED_BY(mu_) = ReadState::kAwaitingRequest;
  WriteState write_state_ ABSL_GUARDED_BY(mu_) = WriteState::kIdle;
  bool headers_sent_ ABSL_GUARDED_BY(mu_) = false;  // By the first Write.
  bool finish_posted_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
  grpc::ByteBuffer incoming_ ABSL_GUARDED_BY(mu_);  // Filled by the pending Read.
  uint64_t notes_read_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<grpc::ByteBuffer> outbox_ ABSL_GUARDED_BY(mu_);  // Encoded replies.
};

}  // namespace

void SpawnRouteChatCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq) {
  (new RouteChatCall(env, cq))->Start();
}

}  // namespace routeguide
