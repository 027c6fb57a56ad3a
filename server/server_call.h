#ifndef ROUTEGUIDE_SERVER_SERVER_CALL_H_
#define ROUTEGUIDE_SERVER_SERVER_CALL_H_

#include "call_environment.h"
#include "call_registry.h"
#include "grpcpp/server_context.h"
#include "tagged_call.h"

namespace routeguide {

// What every server call shares: the environment, its membership in the
// call registry, its queue and context, and the two events every call
// has, Event::kRequestArrived and Event::kDone (the AsyncNotifyWhenDone
// notification). Everything else goes to the call (CRTP), which defines:
//
//   void RequestLocked(void* tag);      posts its method's RequestXxx
//   void OnStartLocked();               the request arrived, call is live
//   void OnEventLocked(Event, bool ok); every other event
//   void OnDoneLocked();                optional: after kDone is noted
//
// kRequestArrived with ok == false (the server is stopping) never reaches
// the call: nothing of it is in flight, and TaggedCall deletes it.
template <typename Call, typename Event>
class ServerCall : public TaggedCall<Call, Event> {
 public:
  // Posts one request for the method on `cq`.
  static void Spawn(CallEnvironment& env, grpc::ServerCompletionQueue* cq) {
    (new Call(env, cq))->Start();
  }

 protected:
  ServerCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq,
             Method method)
      : env_(env), membership_(*env.registry), cq_(cq), method_(method) {}

  const ServerOptions& options() const { return *env_.options; }
  const char* method_name() const {
    return kMethodNames[static_cast<int>(method_)];
  }

  // Aborts unless `holds`: `event` cannot happen in `state`.
  template <typename State>
  void Expect(bool holds, State state, Event event) const {
    if (!holds) {
      ImpossibleEvent(method_name(), static_cast<int>(state),
                      static_cast<int>(event));
    }
  }

  // Every status a call finishes with goes through here, for the
  // statistics and the access log.
  const grpc::Status& Outcome(const grpc::Status& status) {
    membership_.SetCode(status.error_code());
    return status;
  }

  CallEnvironment& env_;
  // Destroyed after the rest of the call (bases go after the derived
  // class's members): the registry counts the call until all of it is gone.
  CallRegistry::Membership membership_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext context_;
  const Method method_;

 private:
  friend class TaggedCall<Call, Event>;

  void Start() ABSL_LOCKS_EXCLUDED(this->mu_) {
    absl::MutexLock lock(&this->mu_);
    // Armed before the request: once the call starts, the notification
    // may come back before the request's own completion is handled.
    context_.AsyncNotifyWhenDone(this->Post(Event::kDone));
    static_cast<Call*>(this)->RequestLocked(this->Post(Event::kRequestArrived));
  }

  void ProceedLocked(Event event, bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this->mu_) {
    switch (event) {
      case Event::kRequestArrived:
        if (!ok) {
          // The server is stopping and the call never started: gRPC will
          // never send its done notification.
          this->Withdraw(Event::kDone);
          return;
        }
        membership_.Activate(method_, context_);
        Spawn(env_, cq_);  // The replacement, so as many wait as before.
        static_cast<Call*>(this)->OnStartLocked();
        return;
      case Event::kDone:
        if (context_.IsCancelled()) membership_.MarkCancelled();
        static_cast<Call*>(this)->OnDoneLocked();
        return;
      default:
        static_cast<Call*>(this)->OnEventLocked(event, ok);
        return;
    }
  }

  void OnDoneLocked() {}
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_SERVER_CALL_H_
