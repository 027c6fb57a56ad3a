#ifndef ROUTEGUIDE_SERVER_CALL_REGISTRY_H_
#define ROUTEGUIDE_SERVER_CALL_REGISTRY_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "call_stats.h"
#include "connection_acceptor.h"
#include "grpcpp/server_context.h"

namespace routeguide {

// Counts the server's call objects, so shutdown can wait until every one
// is freed before it shuts the completion queues down (a call may still
// post an operation until then), and so tests can see that none leaked.
// Each finished call is recorded in the statistics and, at debug level, in
// the access log. Thread-safe.
class CallRegistry {
 public:
  // Held by each call object for its whole life.
  class Membership {
   public:
    explicit Membership(CallRegistry& registry) : registry_(registry) {
      registry_.Join();
    }
    // A call that was active is recorded in the statistics and, at debug
    // level, in the access log, once all of it is done.
    ~Membership();
    Membership(const Membership&) = delete;
    Membership& operator=(const Membership&) = delete;

    // The call's request arrived: it is now a call in flight rather than
    // a pre-posted slot.
    void Activate(Method method, const grpc::ServerContext& context);
    // The client cancelled the call or its deadline passed.
    void MarkCancelled() {
      registry_.cancelled_.fetch_add(1, std::memory_order_relaxed);
      cancelled_ = true;
      code_ = grpc::StatusCode::CANCELLED;
    }
    // The status the call finished with; a cancellation seen first stays:
    // that is what the client got.
    void SetCode(grpc::StatusCode code) {
      if (!cancelled_) code_ = code;
    }
    void CountIn() { ++messages_in_; }
    void CountOut() { ++messages_out_; }

   private:
    CallRegistry& registry_;
    bool active_ = false;
    bool cancelled_ = false;
    Method method_ = Method::kGetFeature;
    grpc::StatusCode code_ = grpc::StatusCode::UNKNOWN;
    absl::Time start_;
    uint64_t messages_in_ = 0;
    uint64_t messages_out_ = 0;
    std::string peer_;  // Only kept for the access log at debug level.
  };

  // Per-method counts and latencies of finished calls.
  const CallStats& stats() const { return stats_; }

  // Call objects alive: calls in flight plus pre-posted requests.
  int64_t objects() const { return objects_.load(std::memory_order_acquire); }
  // Calls whose request arrived and whose object is not yet freed.
  int64_t active() const { return active_.load(std::memory_order_relaxed); }
  // Calls accepted since the server started.
  int64_t accepted() const { return accepted_.load(std::memory_order_relaxed); }
  // Calls that ended cancelled (by the client, a deadline or shutdown).
  int64_t cancelled() const {
    return cancelled_.load(std::memory_order_relaxed);
  }

  // Names the connections our accept loop handed to gRPC (which calls
  // them "fd:N") in the access log. Set before the first call.
  void set_peer_directory(const PeerDirectory* peers) { peers_ = peers; }

  // Waits until no call object is left; false if `timeout` passed first.
  // Polls: it runs once, at shutdown, and keeps the per-call path free of
  // any lock.
  bool AwaitNoObjects(absl::Duration timeout) const {
    const absl::Time deadline = absl::Now() + timeout;
    while (objects() != 0) {
      if (absl::Now() >= deadline) return false;
      absl::SleepFor(absl::Milliseconds(1));
    }
    return true;
  }

 private:
  void Join() { objects_.fetch_add(1, std::memory_order_relaxed); }
  void Leave(bool was_active) {
    if (was_active) active_.fetch_sub(1, std::memory_order_relaxed);
    objects_.fetch_sub(1, std::memory_order_release);
  }

  const PeerDirectory* peers_ = nullptr;
  std::atomic<int64_t> objects_{0};
  std::atomic<int64_t> active_{0};
  CallStats stats_;
  std::atomic<int64_t> accepted_{0};
  std::atomic<int64_t> cancelled_{0};
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_CALL_REGISTRY_H_
