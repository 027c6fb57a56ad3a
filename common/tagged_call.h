#ifndef ROUTEGUIDE_COMMON_TAGGED_CALL_H_
#define ROUTEGUIDE_COMMON_TAGGED_CALL_H_

#include <array>
#include <cstddef>
#include <cstdio>
#include <cstdlib>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/completion_queue.h"
#include "recycled_memory.h"

namespace routeguide {

// Every tag this project posts to a completion queue is a CompletionTag, so
// a poller needs to know nothing about the call behind it.
class CompletionTag {
 public:
  virtual void OnComplete(bool ok) = 0;

 protected:
  ~CompletionTag() = default;
};

// Runs the handler of each completion until the queue is shut down and
// drained (Next returns false).
inline void PollUntilShutdown(grpc::CompletionQueue* cq) {
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) static_cast<CompletionTag*>(tag)->OnComplete(ok);
}

// Ends the process: a completion arrived that the call's state says cannot
// happen. That is a bug, and going on would post operations gRPC forbids
// or free a call still in use; a loud stop says where (as gRPC's own qps
// server does).
[[noreturn]] inline void ImpossibleEvent(const char* call, int state,
                                         int event) {
  std::fprintf(stderr,
               "%s call: event %d cannot happen in state %d; aborting\n",
               call, event, state);
  std::abort();
}

// Base of every call state machine, server and client side (CRTP).
//
// `Call` defines `enum class Event : uint8_t { ..., kCount }` and
//   void ProceedLocked(Event event, bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
// Each event has a tag of its own, so a read and a write (and the done
// notification) can be in flight at once and each completion says which
// operation ended. Completions of one call may arrive on different threads;
// `mu_` serialises them, and is never held while waiting for an operation.
//
// The call counts the tags it has posted and not yet seen back. The
// completion that brings that count to zero deletes the call: that is the
// only place a call is deleted, and it cannot happen while any operation
// could still complete. Its memory is kept for the next call of its kind
// (RecycledMemory).
template <typename Call, typename Event>
class TaggedCall {
 public:
  TaggedCall(const TaggedCall&) = delete;
  TaggedCall& operator=(const TaggedCall&) = delete;

  static void* operator new(std::size_t size) {
    // Blocks come from plain ::operator new, aligned for no more than this.
    static_assert(alignof(Call) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
    return RecycledMemory<Call>::Allocate(size);
  }
  static void operator delete(void* block, std::size_t size) noexcept {
    RecycledMemory<Call>::Free(block, size);
  }

 protected:
  TaggedCall() {
    for (size_t i = 0; i < tags_.size(); ++i) {
      tags_[i].Bind(this, static_cast<Event>(i));
    }
  }
  virtual ~TaggedCall() = default;

  // The tag for an operation about to be posted, counted as pending. Set
  // the next state first: another thread may take the completion before
  // the posting call even returns.
  void* Post(Event event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ++pending_;
    // Pollers cast the void* back to CompletionTag*: hand out exactly that.
    return static_cast<CompletionTag*>(&tags_[static_cast<size_t>(event)]);
  }

  // Uncounts a posted tag that gRPC will never hand back. The one case: the
  // AsyncNotifyWhenDone tag of a server call whose request failed (the
  // server is shutting down), as gRPC arms that notification only for a
  // call that started. It is counted when posted, before the request,
  // because once the call starts it may come back before the request's
  // own completion is handled.
  void Withdraw(Event /*event*/) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    --pending_;
  }

  // Called once, under the lock, when the last tag has come back, before
  // the call is deleted: the place to leave whatever could still reach the
  // call from outside (see StreamingServerCall). A Call may hide this one.
  void OnLastTagLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {}

  // Tags posted and not yet back. Zero only while the completion that
  // brought it there is deleting the call.
  int PendingLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return pending_;
  }

  absl::Mutex mu_;

 private:
  class Tag final : public CompletionTag {
   public:
    void Bind(TaggedCall* call, Event event) {
      call_ = call;
      event_ = event;
    }
    void OnComplete(bool ok) override { call_->Dispatch(event_, ok); }

   private:
    TaggedCall* call_ = nullptr;
    Event event_{};
  };

  void Dispatch(Event event, bool ok) ABSL_LOCKS_EXCLUDED(mu_) {
    bool last = false;
    {
      absl::MutexLock lock(&mu_);
      --pending_;
      static_cast<Call*>(this)->ProceedLocked(event, ok);
      last = pending_ == 0;
      if (last) static_cast<Call*>(this)->OnLastTagLocked();
    }
    if (last) delete this;
  }

  std::array<Tag, static_cast<size_t>(Event::kCount)> tags_;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_COMMON_TAGGED_CALL_H_
