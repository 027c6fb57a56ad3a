#ifndef ROUTEGUIDE_SERVER_UNARY_SERVER_CALL_H_
#define ROUTEGUIDE_SERVER_UNARY_SERVER_CALL_H_

// A unary server call (GetFeature, health Check): one request, one answer.
// The whole life of one call:
//
//   state              event            ok     next
//   kAwaitingRequest   kRequestArrived  true   kAnswering (Finish posted
//                                              with the call's Answer)
//   kAwaitingRequest   kRequestArrived  false  (server stopping; deleted)
//   kAnswering         kFinishSent      any    kClosed
//   any                kDone            -      (noted; nothing to post)
//   anything else                              impossible: aborts
//
// The call is deleted by TaggedCall when its last tag comes back.

#include <cstdint>

#include "grpcpp/support/async_unary_call.h"
#include "server_call.h"

namespace routeguide {

enum class UnaryEvent : uint8_t { kRequestArrived, kFinishSent, kDone, kCount };

// `Call` adds what is particular to its method:
//   void RequestLocked(void* tag);  posts RequestXxx(&context_, &request_,
//                                   &responder_, cq_, cq_, tag)
//   grpc::Status Answer(Response* reply);  the answer to request_: OK with
//                                   `reply` filled, or the error to send
template <typename Call, typename Request, typename Response>
class UnaryServerCall : public ServerCall<Call, UnaryEvent> {
 protected:
  using Event = UnaryEvent;

  UnaryServerCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq,
                  Method method)
      : ServerCall<Call, UnaryEvent>(env, cq, method),
        responder_(&this->context_) {}

  Request request_;
  grpc::ServerAsyncResponseWriter<Response> responder_;

 private:
  friend class ServerCall<Call, UnaryEvent>;
  enum class State { kAwaitingRequest, kAnswering, kClosed };

  void OnStartLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(this->mu_) {
    this->Expect(state_ == State::kAwaitingRequest, state_,
                 Event::kRequestArrived);
    state_ = State::kAnswering;
    Response reply;
    const grpc::Status status = static_cast<Call*>(this)->Answer(&reply);
    if (status.ok()) {
      this->membership_.CountOut();
      responder_.Finish(reply, this->Outcome(status),
                        this->Post(Event::kFinishSent));
    } else {
      responder_.FinishWithError(this->Outcome(status),
                                 this->Post(Event::kFinishSent));
    }
  }

  void OnEventLocked(Event event, bool /*ok*/)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this->mu_) {
    this->Expect(event == Event::kFinishSent && state_ == State::kAnswering,
                 state_, event);
    state_ = State::kClosed;
  }

  State state_ = State::kAwaitingRequest;  // Under mu_.
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_UNARY_SERVER_CALL_H_
