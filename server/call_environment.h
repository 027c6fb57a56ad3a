#ifndef ROUTEGUIDE_SERVER_CALL_ENVIRONMENT_H_
#define ROUTEGUIDE_SERVER_CALL_ENVIRONMENT_H_

#include <atomic>
#include <string>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "call_stats.h"
#include "connection_acceptor.h"
#include "feature_store.h"
#include "feature_wire_cache.h"
#include "grpcpp/server_context.h"
#include "health.grpc.pb.h"
#include "route_guide.grpc.pb.h"

namespace routeguide {

// Counts the server's call objects, so shutdown can wait until every one
// is freed before it shuts the completion queues down (a call may still
// post an operation until then), and so tests can see that none leaked.
// Thread-safe.
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

// The streaming calls in flight (RecordRoute, RouteChat), so that shutdown
// can end them with a status before gRPC would cut them off. Thread-safe.
class StreamRegistry {
 public:
  class Member {
   public:
    // Asks the stream to end with UNAVAILABLE. Must not block: false when
    // the call is busy (its lock is taken) and should be asked again.
    virtual bool TryRequestStop() = 0;

   protected:
    ~Member() = default;
  };

  void Add(Member* member) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    members_.insert(member);
  }
  // A member leaves before any of it is destroyed.
  void Remove(Member* member) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    members_.erase(member);
  }

  // Asks every stream to end; returns once each has been asked. Calls take
  // their own lock before this registry's (they join it from their
  // handlers), so this one only try-locks them and comes back for the busy.
  // (TryRequestStop is idempotent, so members already asked are simply
  // asked again.)
  void StopAll() ABSL_LOCKS_EXCLUDED(mu_) {
    for (;;) {
      bool busy = false;
      {
        absl::MutexLock lock(&mu_);
        for (Member* member : members_) {
          if (!member->TryRequestStop()) busy = true;
        }
      }
      if (!busy) return;
      absl::SleepFor(absl::Microseconds(100));
    }
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_set<Member*> members_ ABSL_GUARDED_BY(mu_);
};

// What every server call needs; owned by RouteGuideServer, which outlives
// all calls.
// RouteGuide on the completion-queue API. ListFeatures is raw: its
// requests arrive as bytes and its features go out pre-encoded (see
// FeatureWireCache). RecordRoute and RouteChat are raw so that a corrupt
// message mid-stream is an error, not an end of stream (wire_messages.h).
using RouteGuideAsyncService = RouteGuide::WithAsyncMethod_GetFeature<
    RouteGuide::WithRawMethod_ListFeatures<RouteGuide::WithRawMethod_RecordRoute<
        RouteGuide::WithRawMethod_RouteChat<RouteGuide::Service>>>>;

// What a call without the right token is told.
inline constexpr char kUnauthenticatedMessage[] =
    "this server needs an authorization: Bearer <token> header with the "
    "right token";

struct CallEnvironment {
  RouteGuideAsyncService* service = nullptr;
  grpc::health::v1::Health::AsyncService* health = nullptr;
  FeatureStore* store = nullptr;
  FeatureWireCache* wire = nullptr;  // The store's features, encoded.
  CallRegistry* registry = nullptr;
  StreamRegistry* streams = nullptr;
  size_t max_note_bytes = 4096;
  // RouteChat: replies queued for one call before it stops reading.
  size_t max_queued_replies = 256;
  // A RecordRoute or RouteChat whose client sends nothing for this long is
  // ended with DEADLINE_EXCEEDED.
  absl::Duration stream_idle_timeout = absl::Minutes(10);
  // Empty: no token needed.
  std::string auth_token;
  // What health checks answer: false from the start of shutdown.
  std::atomic<bool> serving{true};

  // The request metadata a call may carry, in HPACK's accounting (name +
  // value + 32 bytes an entry).
  size_t max_metadata_bytes = 16 * 1024;

  // Whether a call may go on, from its headers: RESOURCE_EXHAUSTED when its
  // metadata is over max_metadata_bytes (gRPC 1.51 enforces that itself
  // only once the client has acknowledged the server's SETTINGS, so a
  // client that never does gets here with megabytes of headers);
  // UNAUTHENTICATED when a token is required and the call does not carry
  // "authorization: Bearer <token>" (the token is never logged); else OK.
  grpc::Status Admit(const grpc::ServerContext& context) const;
};

// Each Spawn* posts one request for its method on `cq`. A call that
// receives its request spawns its replacement, so the number waiting per
// method per queue stays what the server pre-posted.
void SpawnGetFeatureCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq);
void SpawnListFeaturesCall(CallEnvironment& env,
                           grpc::ServerCompletionQueue* cq);
void SpawnRecordRouteCall(CallEnvironment& env,
                          grpc::ServerCompletionQueue* cq);
void SpawnRouteChatCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq);
void SpawnHealthCheckCall(CallEnvironment& env,
                          grpc::ServerCompletionQueue* cq);

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_CALL_ENVIRONMENT_H_
