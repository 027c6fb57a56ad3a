// grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo,
// bidirectional streaming: the whole life of one call. What each request
// is answered with is ReflectionAnswers' (reflection_answers.h).
//
// Every request gets one answer, in order, so the call reads and writes
// in turn: the next Read is posted once the answer's Write is done. A
// client that sends requests without reading the answers is held back by
// HTTP/2 flow control, and the call keeps one request and one answer, of
// a few kilobytes: requests are bounded by --max_reflection_request_size
// (the answer echoes its request).
//
//   phase              event            ok     next
//   kAwaitingRequest   kRequestArrived  true   kReading (Read posted, idle
//                                              clock started), or kClosed
//                                              (Finish with Admit's error)
//   kAwaitingRequest   kRequestArrived  false  (server stopping; deleted)
//   kReading           kReadDone        true   kWriting (the answer's
//                                              Write), or kClosed (Finish
//                                              INVALID_ARGUMENT: over
//                                              --max_reflection_request_size,
//                                              or not a
//                                              ServerReflectionRequest)
//   kReading           kReadDone        false  kClosed (Finish OK: the
//                                              client half-closed, or the
//                                              call is gone)
//   kWriting           kWriteDone       true   kReading (Read posted)
//   kWriting           kWriteDone       false  kClosed (Finish; the stream
//                                              is broken, so it fails too)
//   kEnding            kWriteDone       any    kClosed (Finish)
//   live               kIdleAlarm       true   ended DEADLINE_EXCEEDED when
//                                              nothing was read or written
//                                              for the idle timeout (the
//                                              client sees CANCELLED when a
//                                              Write was stalled); else
//                                              nothing
//   live               kStopAlarm       -      ended UNAVAILABLE
//   live               kDone (cancelled)       ended CANCELLED
//   kClosed            kReadDone        any    (the Read pending when the
//                                              call ended: ignored)
//   kClosed            kFinishSent      any    (nothing more)
//   other              kIdleAlarm, kStopAlarm, kDone  (nothing to do)
//   anything else                              impossible: aborts
//
// "Live" is kReading or kWriting. Ended: from kReading, Finish at once
// (kClosed; the pending Read comes back on its own); from kWriting,
// kEnding, and Finish once the Write is back (the two may not overlap),
// the Write cancelled unless the server is shutting down. The call is
// deleted by TaggedCall when its last tag comes back.
#include <array>
#include <string>

#include "absl/strings/str_cat.h"
#include "call_spawners.h"
#include "reflection_answers.h"
#include "streaming_server_call.h"
#include "wire_messages.h"

namespace routeguide {
namespace {

using grpc::reflection::v1alpha::ServerReflectionRequest;

enum class ReflectionEvent : uint8_t {
  kRequestArrived,
  kReadDone,
  kWriteDone,
  kIdleAlarm,
  kStopAlarm,
  kFinishSent,
  kDone,
  kCount
};

class ReflectionCall final
    : public StreamingServerCall<ReflectionCall, ReflectionEvent> {
 public:
  ReflectionCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq)
      : StreamingServerCall(env, cq, Method::kServerReflectionInfo,
                            env.options->stream_idle_timeout),
        stream_(&context_),
        answers_(ServedServiceNames()) {}

 private:
  friend class ServerCall<ReflectionCall, ReflectionEvent>;
  friend class StreamingServerCall<ReflectionCall, ReflectionEvent>;
  using Event = ReflectionEvent;
  enum class Phase { kAwaitingRequest, kReading, kWriting, kEnding, kClosed };

  void RequestLocked(void* tag) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    env_.reflection->RequestServerReflectionInfo(&context_, &stream_, cq_, cq_,
                                                 tag);
  }

  void OnStartLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Expect(phase_ == Phase::kAwaitingRequest, phase_, Event::kRequestArrived);
    if (grpc::Status allowed = env_.Admit(context_); !allowed.ok()) {
      FinishLocked(allowed);
      return;
    }
    JoinStreamsLocked();
    ReadLocked();
    TouchLocked();  // The idle clock starts with the call.
  }

  void OnEventLocked(Event event, bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    switch (event) {
      case Event::kReadDone:
        if (phase_ == Phase::kClosed) return;
        Expect(phase_ == Phase::kReading, phase_, event);
        OnReadDone(ok);
        return;
      case Event::kWriteDone:
        Expect(phase_ == Phase::kWriting || phase_ == Phase::kEnding, phase_,
               event);
        if (phase_ == Phase::kEnding) {
          FinishLocked(final_status_);
        } else if (!ok) {
          FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED,
                                    "the answer could not be sent"));
        } else {
          TouchLocked();  // Progress: the client is reading.
          ReadLocked();
        }
        return;
      case Event::kIdleAlarm:
        // Idle while writing: the answer is not being read (the Write is
        // cancelled, so the client sees CANCELLED).
        OnIdleAlarmLocked(ok, phase_ == Phase::kWriting ? "answer not read"
                                                         : "no request");
        return;
      case Event::kStopAlarm:
        OnStopAlarmLocked();
        return;
      case Event::kFinishSent:
        Expect(phase_ == Phase::kClosed, phase_, event);
        return;
      default:
        Expect(false, phase_, event);
    }
  }

  void OnDoneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (context_.IsCancelled() && StoppableLocked()) {
      EndEarlyLocked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
    }
  }

  void OnReadDone(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!ok) {
      FinishLocked(grpc::Status::OK);
      return;
    }
    if (incoming_.Length() > options().max_reflection_request_bytes) {
      FinishLocked(grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("request ", requests_read_ + 1, " of the stream is ",
                       incoming_.Length(), " bytes, more than the limit of ",
                       options().max_reflection_request_bytes)));
      return;
    }
    ServerReflectionRequest request;
    if (!ParseWire(incoming_, &request)) {
      FinishLocked(grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("message ", requests_read_ + 1,
                       " of the stream is not a "
                       "grpc.reflection.v1alpha.ServerReflectionRequest")));
      return;
    }
    ++requests_read_;
    TouchLocked();
    membership_.CountIn();
    membership_.CountOut();
    phase_ = Phase::kWriting;
    stream_.Write(ToWire(answers_.Answer(request)), Post(Event::kWriteDone));
  }

  void ReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    phase_ = Phase::kReading;
    stream_.Read(&incoming_, Post(Event::kReadDone));
  }

  bool StoppableLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return phase_ == Phase::kReading || phase_ == Phase::kWriting;
  }

  // Ends the live call. A Write in flight is cancelled: the idle timeout or
  // a cancellation says the client is not reading it.
  void EndEarlyLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const bool writing = phase_ == Phase::kWriting;
    EndForShutdownLocked(status);
    if (writing) context_.TryCancel();
  }

  // At shutdown the Write in flight is left to complete (the grace period
  // bounds it), so the client gets "shutting down" rather than CANCELLED.
  void EndForShutdownLocked(const grpc::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (phase_ == Phase::kWriting) {
      phase_ = Phase::kEnding;
      final_status_ = status;
      return;
    }
    FinishLocked(status);
  }

  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    phase_ = Phase::kClosed;
    StopIdleClockLocked();
    stream_.Finish(Outcome(status), Post(Event::kFinishSent));
  }

  // The services this server answers for, reflection's own included:
  // made once, not for every call.
  static absl::Span<const std::string> ServedServiceNames() {
    static const auto* const names = new std::array<std::string, 3>{
        RouteGuide::service_full_name(),
        grpc::health::v1::Health::service_full_name(),
        grpc::reflection::v1alpha::ServerReflection::service_full_name()};
    return *names;
  }

  grpc::ServerAsyncReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer> stream_;
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kAwaitingRequest;
  grpc::ByteBuffer incoming_ ABSL_GUARDED_BY(mu_);  // Filled by the pending Read.
  uint64_t requests_read_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);  // kEnding: sent by Finish.
  ReflectionAnswers answers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

void SpawnReflectionCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq) {
  ReflectionCall::Spawn(env, cq);
}

}  // namespace routeguide
