// RouteChat, bidirectional streaming: the whole life of one call.
//
// A Read and a Write may be in flight together, each with its own tag, so
// the call has two sides. The reading side, `phase_`, is the call's life:
//
//   phase              event            ok     next
//   kAwaitingRequest   kRequestArrived  true   kReading (Read posted, idle
//                                              clock started), or kDraining
//                                              with the error when Admit
//                                              refuses the call
//   kAwaitingRequest   kRequestArrived  false  (server stopping; deleted)
//   kReading           kReadDone        true   kReading: the note stored,
//                                              the earlier notes there
//                                              queued as replies, Read
//                                              again; kPaused instead when
//                                              over --max_queued_replies
//                                              wait behind a Write; or
//                                              kDraining with
//                                              INVALID_ARGUMENT for a bad
//                                              note. With a shared store
//                                              (Redis): kStoring, the note
//                                              sent, its alarm set to the
//                                              store's timeout
//   kStoring           kStoreReplied    any    as kReadDone above, with the
//                                              store's answer; kDraining
//                                              with UNAVAILABLE when it
//                                              failed or did not come in
//                                              time
//   kEnding, kClosed   kStoreReplied    any    (the answer is dropped; a
//                                              call that ends while
//                                              kStoring abandons its
//                                              ticket, so the alarm comes
//                                              back at once)
//   kReading           kReadDone        false  kDraining (client half-
//                                              closed, or cancelled)
//   kPaused            kWriteDone       any    kReading (Read posted) once
//                                              half the queue is written
//   kDraining, kEnding (no Write in flight)    kClosed: Finish posted
//   live               kIdleAlarm       true   kEnding DEADLINE_EXCEEDED,
//                                              the Write in flight
//                                              cancelled, when nothing was
//                                              read or written for the
//                                              timeout (the idle sweep
//                                              armed it); else nothing
//   live               kStopAlarm       -      kEnding UNAVAILABLE, after
//                                              the Write in flight
//   live               kDone (cancelled)       kEnding CANCELLED, the
//                                              Write in flight cancelled
//   kEnding, kClosed   kReadDone        any    (the Read pending when the
//                                              call ended early: ignored)
//   kClosed            kFinishSent      any    (nothing more)
//   other              kIdleAlarm, kStopAlarm, kDone  (nothing to do)
//   anything else                              impossible: aborts
//
// "Live" is kReading, kPaused, kStoring or kDraining. kDraining: reading is over;
// the replies queued still go out, then Finish. kEnding (ended early): the
// queue is dropped; Finish waits for the Write in flight (it may not
// overlap it), which is cancelled unless the server is shutting down (an
// idle client may never read it; at shutdown the grace period bounds it).
//
// The writing side, `write_state_`: replies wait in `outbox_`, at most one
// Write is in flight.
//
//   write state   event             ok     next
//   kReady        (reply queued)    -      kInFlight: Write posted
//   kInFlight     kWriteDone        true   kInFlight (next Write) or kReady
//   kInFlight     kWriteDone        false  kBroken: the queue is dropped,
//                                          nothing more is sent
//
// The call is deleted by TaggedCall when its last tag comes back. With a
// shared store, that includes the store alarm's tag: the NotesTicket
// (redis_notes_store.h) lets the store's thread wake the call through that
// alarm, and forgets the alarm once the call has collected the answer, so
// an answer that comes after the call ended finds nothing it could reach.
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "call_spawners.h"
#include "proto_convert.h"
#include "streaming_server_call.h"
#include "wire_messages.h"

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
  kStoreReplied,
  kCount
};

class RouteChatCall final
    : public StreamingServerCall<RouteChatCall, RouteChatEvent> {
 public:
  RouteChatCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq)
      : StreamingServerCall(env, cq, Method::kRouteChat,
                            env.options->stream_idle_timeout),
        stream_(&context_) {}

 private:
  friend class ServerCall<RouteChatCall, RouteChatEvent>;
  friend class StreamingServerCall<RouteChatCall, RouteChatEvent>;
  using Event = RouteChatEvent;
  enum class Phase {
    kAwaitingRequest,
    kReading,
    kPaused,
    kStoring,
    kDraining,
    kEnding,
    kClosed
  };
  enum class WriteState { kReady, kInFlight, kBroken };

  void RequestLocked(void* tag) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    env_.service->RequestRouteChatEncoded(&context_, &stream_, cq_, cq_, tag);
  }

  void OnStartLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Expect(phase_ == Phase::kAwaitingRequest, phase_, Event::kRequestArrived);
    if (grpc::Status allowed = env_.Admit(context_); !allowed.ok()) {
      DrainLocked(allowed);
      return;
    }
    JoinStreamsLocked();
    ReadLocked();
    TouchLocked();  // The idle clock starts with the call.
  }

  void OnEventLocked(Event event, bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    switch (event) {
      case Event::kReadDone:
        if (phase_ == Phase::kEnding || phase_ == Phase::kClosed) return;
        Expect(phase_ == Phase::kReading, phase_, event);
        OnReadDone(ok);
        return;
      case Event::kWriteDone:
        Expect(write_state_ == WriteState::kInFlight, write_state_, event);
        OnWriteDone(ok);
        return;
      case Event::kIdleAlarm:
        OnIdleAlarmLocked(ok, "no progress");
        return;
      case Event::kStopAlarm:
        OnStopAlarmLocked();
        return;
      case Event::kStoreReplied:
        OnStoreReplied();
        return;
      case Event::kFinishSent:
        Expect(phase_ == Phase::kClosed, phase_, event);
        return;
      default:
        Expect(false, phase_, event);
    }
  }

  // After kDone is noted. Cancelled: replies not yet written have nowhere
  // to go, and the call ends; its pending operations fail on their own.
  void OnDoneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!context_.IsCancelled()) return;
    outbox_.clear();
    if (StoppableLocked()) {
      EndEarlyLocked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
    }
  }

  void OnReadDone(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!ok) {
      DrainLocked(grpc::Status::OK);
      return;
    }
    RouteNote message;
    if (!ParseWire(incoming_, &message)) {
      DrainLocked(grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("message ", notes_read_ + 1,
                       " of the stream is not a routeguide.RouteNote (not "
                       "protobuf, or a message that is not UTF-8)")));
      return;
    }
    ++notes_read_;
    const GeoPoint location = FromProto(message.location());
    absl::Status valid = ValidatePoint(location, "note location");
    if (valid.ok() && message.message().size() > options().max_note_bytes) {
      valid = absl::InvalidArgumentError(absl::StrFormat(
          "note message is %d bytes, longer than the limit of %d",
          message.message().size(), options().max_note_bytes));
    }
    if (!valid.ok()) {
      DrainLocked(ToGrpcStatus(valid));
      return;
    }
    TouchLocked();
    membership_.CountIn();
    if (env_.shared_notes != nullptr) {
      StoreSharedLocked(location, message);
      return;
    }
    std::vector<Note> earlier =
        env_.store->AddNote(Note{location, std::move(*message.mutable_message())});
    // A broken stream sends nothing more: its replies are dropped.
    if (write_state_ != WriteState::kBroken) {
      for (const Note& reply : earlier) {
        outbox_.push_back(EncodedMessage{EncodeRouteNote(reply)});
      }
    }
    ReplyThenReadLocked();
  }

  // The earlier notes are queued in outbox_: send them, and read the next
  // note unless too many replies wait.
  void ReplyThenReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    MaybeWriteLocked();
    // Backpressure: a client that sends faster than it reads would grow
    // the queue without end. Past the bound, stop reading (its writes then
    // wait on HTTP/2 flow control) until the Write in flight has drained
    // the queue to half.
    if (write_state_ == WriteState::kInFlight &&
        outbox_.size() > options().max_queued_replies) {
      phase_ = Phase::kPaused;
      return;
    }
    ReadLocked();
  }

  // Hands the note to the shared store. The alarm is set before the store
  // can answer (it wakes the call by cancelling the alarm), and brings the
  // tag back at the deadline if the answer does not come.
  void StoreSharedLocked(const GeoPoint& location, const RouteNote& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    phase_ = Phase::kStoring;
    ticket_ = std::make_shared<NotesTicket>(&store_alarm_);
    store_alarm_.Set(
        cq_,
        absl::ToChronoTime(absl::Now() + env_.shared_notes->options().timeout),
        Post(Event::kStoreReplied));
    env_.shared_notes->AddNote(location, message.SerializeAsString(), ticket_);
  }

  void OnStoreReplied() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::optional<NotesTicket::Answer> answer = ticket_->Collect();
    ticket_.reset();
    if (phase_ == Phase::kEnding || phase_ == Phase::kClosed) return;
    Expect(phase_ == Phase::kStoring, phase_, Event::kStoreReplied);
    if (!answer.has_value()) {
      DrainLocked(grpc::Status(
          grpc::StatusCode::UNAVAILABLE,
          absl::StrCat("notes store: timeout, no answer within ",
                       absl::FormatDuration(env_.shared_notes->options().timeout))));
      return;
    }
    if (!answer->ok()) {
      DrainLocked(ToGrpcStatus(answer->status()));
      return;
    }
    if (write_state_ != WriteState::kBroken) {
      for (const std::string& note : **answer) {
        outbox_.push_back(EncodedMessage{grpc::Slice(note)});
      }
    }
    ReplyThenReadLocked();
  }

  void OnWriteDone(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!ok) {
      write_state_ = WriteState::kBroken;
      outbox_.clear();
    } else {
      TouchLocked();  // Progress: the client is reading.
      write_state_ = WriteState::kReady;
      MaybeWriteLocked();
    }
    // A broken stream's Read fails at once.
    if (phase_ == Phase::kPaused &&
        outbox_.size() <= options().max_queued_replies / 2) {
      ReadLocked();
    }
    MaybeFinishLocked();
  }

  void ReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    phase_ = Phase::kReading;
    stream_.Read(&incoming_, Post(Event::kReadDone));
  }

  // Starts the next Write unless one is in flight. Write serializes the
  // message before it returns, so the note can leave the queue at once.
  // A reply with more queued behind it is buffered (it completes at once,
  // unsent) and the last one flushes them all, so a burst of replies costs
  // one socket write rather than one each. The first Write carries the
  // headers and always flushes: buffered, it would never complete (see
  // list_features_call.cc and tests/write_coalescing_test.cc).
  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (write_state_ != WriteState::kReady || outbox_.empty()) return;
    write_state_ = WriteState::kInFlight;
    membership_.CountOut();
    grpc::WriteOptions write_options;
    if (writes_posted_ > 0 && outbox_.size() > 1) write_options.set_buffer_hint();
    ++writes_posted_;
    stream_.Write(outbox_.front(), write_options, Post(Event::kWriteDone));
    outbox_.pop_front();
  }

  // Reading is over (the client half-closed, sent a bad note, or was
  // refused): the replies queued go out, then Finish with `status`.
  void DrainLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    phase_ = Phase::kDraining;
    final_status_ = status;
    MaybeFinishLocked();
  }

  bool StoppableLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return phase_ == Phase::kReading || phase_ == Phase::kPaused ||
           phase_ == Phase::kStoring || phase_ == Phase::kDraining;
  }

  // Ends the live call with `status`, maybe while its Read is pending:
  // queued replies are dropped, and Finish follows the Write in flight, if
  // any, which is cancelled: after an idle timeout it has made no progress
  // for the whole of it and may never complete.
  void EndEarlyLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    EndLocked(status);
    if (write_state_ == WriteState::kInFlight) context_.TryCancel();
  }

  // At shutdown the Write in flight is left to complete, so the client gets
  // "shutting down" rather than CANCELLED; a client that reads nothing is
  // cut off by gRPC when the grace period ends.
  void EndForShutdownLocked(const grpc::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    EndLocked(status);
  }

  void EndLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // A note at the shared store: stop waiting for it (its answer is
    // dropped), so a hung store holds neither the call nor shutdown.
    if (phase_ == Phase::kStoring) ticket_->Abandon();
    phase_ = Phase::kEnding;
    final_status_ = status;
    outbox_.clear();
    MaybeFinishLocked();
  }

  void MaybeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if ((phase_ != Phase::kDraining && phase_ != Phase::kEnding) ||
        write_state_ == WriteState::kInFlight) {
      return;
    }
    phase_ = Phase::kClosed;
    StopIdleClockLocked();
    stream_.Finish(Outcome(final_status_), Post(Event::kFinishSent));
  }

  // Raw: see wire_messages.h.
  grpc::ServerAsyncReaderWriter<EncodedMessage, grpc::ByteBuffer> stream_;
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kAwaitingRequest;
  WriteState write_state_ ABSL_GUARDED_BY(mu_) = WriteState::kReady;
  std::deque<EncodedMessage> outbox_ ABSL_GUARDED_BY(mu_);  // Encoded replies.
  // The first Write carries the headers (see MaybeWriteLocked).
  uint64_t writes_posted_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);  // Sent by Finish.
  grpc::ByteBuffer incoming_ ABSL_GUARDED_BY(mu_);  // Filled by the pending Read.
  uint64_t notes_read_ ABSL_GUARDED_BY(mu_) = 0;
  // Shared store only: wakes the call when the store answers (or at the
  // deadline), and the answer's hand-over while kStoring.
  grpc::Alarm store_alarm_;
  std::shared_ptr<NotesTicket> ticket_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

void SpawnRouteChatCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq) {
  RouteChatCall::Spawn(env, cq);
}

}  // namespace routeguide
