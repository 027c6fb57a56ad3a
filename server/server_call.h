#ifndef ROUTEGUIDE_SERVER_SERVER_CALL_H_
#define ROUTEGUIDE_SERVER_SERVER_CALL_H_

#include "call_environment.h"
#include "grpcpp/server_context.h"
#include "tagged_call.h"

namespace routeguide {

// What every server call shares: the environment, its membership in the
// call registry, its queue and context, and the handling of the two events
// every call has, Event::kRequestArrived and Event::kDone (the
// AsyncNotifyWhenDone notification).
template <typename Call, typename Event>
class ServerCall : public TaggedCall<Call, Event> {
 protected:
  ServerCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq,
             Method method)
      : env_(env), membership_(*env.registry), cq_(cq), method_(method) {}

  // First thing in Start: arms the done notification. (The caller then
  // posts its RequestXxx with Post(Event::kRequestArrived).)
  void WatchForDoneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(this->mu_) {
    context_.AsyncNotifyWhenDone(this->Post(Event::kDone));
  }

  // On kRequestArrived. False when the server is stopping and the call
  // never started: gRPC will never send its done notification, so that
  // tag is withdrawn. True when the call is live: it is counted as in
  // flight and `spawn` posts its replacement.
  bool AcceptLocked(bool ok,
                    void (*spawn)(CallEnvironment&, grpc::ServerCompletionQueue*))
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this->mu_) {
    if (!ok) {
      this->Withdraw(Event::kDone);
      return false;
    }
    membership_.Activate(method_, context_);
    spawn(env_, cq_);
    return true;
  }

  // Every status a call finishes with goes through here, for the
  // statistics and the access log.
  const grpc::Status& Outcome(const grpc::Status& status) {
    membership_.SetCode(status.error_code());
    return status;
  }

  // On kDone.
  void NoteDoneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(this->mu_) {
    if (context_.IsCancelled()) membership_.MarkCancelled();
  }

  CallEnvironment& env_;
  // Destroyed after the rest of the call (bases go after the derived
  // class's members): the registry counts the call until all of it is gone.
  CallRegistry::Membership membership_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext context_;
  const Method method_;
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_SERVER_CALL_H_
