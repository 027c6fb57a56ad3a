#ifndef ROUTEGUIDE_SERVER_REDIS_NOTES_STORE_H_
#define ROUTEGUIDE_SERVER_REDIS_NOTES_STORE_H_

// RouteChat's notes in Redis, shared by every replica that points at the
// same Redis (--notes_store=redis://...). See the class comment.

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "call_stats.h"
#include "feature_store.h"
#include "geo.h"
#include "grpcpp/alarm.h"

struct redisAsyncContext;

namespace routeguide {

// Where the shared notes live: TCP (host, port, database) or a Unix socket.
struct RedisAddress {
  std::string host;
  int port = 6379;
  int database = 0;
  std::string unix_path;  // Set for unix://; then host and port are unused.

  // redis://HOST:PORT/DB or unix://PATH, for logs (holds no secret).
  std::string ToString() const;
};

// --notes_store: "memory" gives nullopt (the in-process store);
// "redis://HOST:PORT[/DB]" or "unix:///path/to/redis.sock" an address;
// anything else InvalidArgument saying what is accepted.
absl::StatusOr<std::optional<RedisAddress>> ParseNotesStore(absl::string_view spec);

// The Redis list that holds the notes at `point`, oldest first: one key per
// location, so every script touches one key (and one Redis Cluster slot).
std::string NotesKey(const GeoPoint& point);

// The Lua script run for every note, atomically on its location's list:
// KEYS[1] the list, ARGV[1] the note, ARGV[2] the per-location bound,
// ARGV[3] the TTL in milliseconds. Returns the notes kept before it.
inline constexpr char kAddNoteScript[] =
    "local earlier = redis.call('LRANGE', KEYS[1], 0, -1)\n"
    "redis.call('RPUSH', KEYS[1], ARGV[1])\n"
    "redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
    "return earlier\n";

struct RedisNotesStoreOptions {
  RedisAddress address;
  std::string password;  // AUTH with it when not empty; never logged.
  // A store reply slower than this ends the RouteChat with UNAVAILABLE.
  absl::Duration timeout = absl::Milliseconds(500);
  // A location's notes expire this long after its last note.
  absl::Duration ttl = absl::Hours(24);
  size_t max_notes_per_location = FeatureStoreOptions{}.max_notes_per_location;
  // Requests sent and not yet answered; past it, RESOURCE_EXHAUSTED.
  int64_t max_pending = 10000;
};

// InvalidArgument naming the flag when a value is out of range.
absl::Status ValidateRedisNotesStoreOptions(const RedisNotesStoreOptions& options);

// One note's trip to the store, shared by the RouteChat call that waits for
// the answer and the store's thread that delivers it.
//
// The call owns an alarm, sets it to fire at its deadline with its "store
// replied" tag, and only then hands the ticket to the store. The answer
// wakes the call by cancelling that alarm, which then fires at once. Either
// way the alarm's tag comes back exactly once, and the call collects the
// answer (if any came) there. Collect also tells the ticket the alarm is
// gone: an answer that comes later is dropped, and the store never touches
// the alarm of a call that may have been freed.
class NotesTicket {
 public:
  using Answer = absl::StatusOr<std::vector<std::string>>;

  explicit NotesTicket(grpc::Alarm* alarm) : alarm_(alarm) {}

  // Any thread, once: the answer (the notes as RouteNote bytes).
  void Complete(Answer answer) ABSL_LOCKS_EXCLUDED(mu_);
  // The call, when it ends before the answer came (cancelled, shut down):
  // brings the alarm's tag back now rather than at the deadline, so the
  // call need not outlive its client waiting for a slow store. The answer,
  // if it comes, is dropped.
  void Abandon() ABSL_LOCKS_EXCLUDED(mu_);
  // The call, when the alarm's tag comes back: the answer, or nullopt when
  // none came in time.
  std::optional<Answer> Collect() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Mutex mu_;
  grpc::Alarm* alarm_ ABSL_GUARDED_BY(mu_);  // Null once collected.
  std::optional<Answer> answer_ ABSL_GUARDED_BY(mu_);
};

// What the store has done, for metrics and logs. Lock-free.
struct RedisNotesStoreStats {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> failures{0};  // Error replies, lost connections.
  std::atomic<uint64_t> refused{0};   // Not up, or past max_pending.
  std::atomic<uint64_t> outages{0};
  LatencyBuckets latency;  // From AddNote to the reply.
};

// RouteChat's notes in Redis: one list per location, read and appended by
// one Lua script per note (so two replicas adding notes at the same point
// at once each see exactly the notes before their own), trimmed to the
// per-location bound, expiring `ttl` after the last note.
//
// No completion-queue thread ever waits on Redis: AddNote only queues the
// request. One thread of the store's own owns the connection (hiredis's
// async API on poll), pipelines the requests, and completes each
// NotesTicket. It connects in the background, reconnects with backoff
// (logging once per outage), and while Redis is down or not answering
// within the timeout, AddNote fails at once with UNAVAILABLE.
class RedisNotesStore {
 public:
  // Starts the store's thread and waits up to options.timeout for the first
  // connection; if there is none by then, it logs a warning and goes on
  // trying in the background. Errors: bad options, no eventfd or thread.
  static absl::StatusOr<std::unique_ptr<RedisNotesStore>> Start(
      RedisNotesStoreOptions options);
  // Fails what is still pending with UNAVAILABLE and stops the thread.
  ~RedisNotesStore();

  RedisNotesStore(const RedisNotesStore&) = delete;
  RedisNotesStore& operator=(const RedisNotesStore&) = delete;

  // Any thread; never blocks on Redis. Stores `note` (RouteNote bytes) at
  // `point` and completes `ticket` with the notes kept there before it,
  // oldest first; or with UNAVAILABLE ("notes store: ...") when Redis is
  // down, not answering or answers with an error, RESOURCE_EXHAUSTED past
  // max_pending or when Redis is full (an OOM error under maxmemory).
  void AddNote(const GeoPoint& point, std::string note,
               std::shared_ptr<NotesTicket> ticket) ABSL_LOCKS_EXCLUDED(mu_);

  // Connected, set up, and answering within the timeout.
  bool up() const { return up_.load(std::memory_order_acquire); }
  int64_t pending() const { return pending_.load(std::memory_order_relaxed); }
  const RedisNotesStoreStats& stats() const { return stats_; }
  const RedisNotesStoreOptions& options() const { return options_; }

 private:
  // A note on its way: queued in inbox_, then sent and in in_flight_ until
  // Redis answers (or the connection is lost).
  struct Request {
    RedisNotesStore* store;
    std::string key;
    std::string note;
    std::shared_ptr<NotesTicket> ticket;
    absl::Time submitted;
  };

  // Reconnecting: the first retry after kFirstBackoff, doubling up to
  // kMaxBackoff, so a restarted Redis is found again within a second.
  static constexpr absl::Duration kFirstBackoff = absl::Milliseconds(50);
  static constexpr absl::Duration kMaxBackoff = absl::Seconds(1);

  explicit RedisNotesStore(RedisNotesStoreOptions options);

  // The store's thread: redis_notes_store.cc runs the loop and the
  // requests, redis_connection.cc the connection.
  void Run();
  void Connect();
  void OnConnected();
  void OnSetupReply();
  absl::Duration HungConnectionAfter() const;
  void OnConnectionLost(absl::string_view why);
  void SendInbox() ABSL_LOCKS_EXCLUDED(mu_);
  void Send(std::unique_ptr<Request> request);
  void OnReply(Request* request, const void* reply);
  void CheckDeadlines(absl::Time now);
  int PollTimeoutMs(absl::Time now) const;
  void SetUp(bool up, absl::string_view why);
  void LogErrorReply(absl::string_view error);

  // hiredis's callbacks and event hooks (C functions; `data` is `this`).
  static void ReplyCallback(redisAsyncContext* context, void* reply, void* data);
  static void SetupCallback(redisAsyncContext* context, void* reply, void* data);
  static void ConnectCallback(const redisAsyncContext* context, int status);
  static void DisconnectCallback(const redisAsyncContext* context, int status);
  static void AddRead(void* data);
  static void DelRead(void* data);
  static void AddWrite(void* data);
  static void DelWrite(void* data);
  static void Cleanup(void* data);

  const RedisNotesStoreOptions options_;
  const std::string address_text_;
  const std::string ttl_ms_;
  const std::string bound_;
  int wake_fd_ = -1;  // eventfd: AddNote queued the first request in inbox_.

  absl::Mutex mu_;
  std::vector<std::unique_ptr<Request>> inbox_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool first_attempt_done_ ABSL_GUARDED_BY(mu_) = false;

  std::atomic<bool> up_{false};
  std::atomic<int64_t> pending_{0};
  RedisNotesStoreStats stats_;

  // Only the store's thread touches these.
  redisAsyncContext* context_ = nullptr;
  bool want_read_ = false;
  bool want_write_ = false;
  bool connected_ = false;
  int setup_replies_due_ = 0;
  absl::Time connect_deadline_ = absl::InfiniteFuture();
  absl::Time next_connect_ = absl::InfinitePast();
  absl::Duration backoff_;
  // Since when the store has been down; InfiniteFuture while up.
  absl::Time down_since_ = absl::InfiniteFuture();
  bool outage_logged_ = false;
  // Note requests sent and not answered, oldest first (Redis answers in
  // order on one connection).
  std::deque<Request*> in_flight_;
  absl::Time last_error_logged_ = absl::InfinitePast();
  uint64_t error_replies_unlogged_ = 0;

  std::thread thread_;
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_REDIS_NOTES_STORE_H_
