#include "redis_notes_store.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "hiredis/async.h"
#include "hiredis/hiredis.h"
#include "spdlog/spdlog.h"

namespace routeguide {
namespace {

// Reconnecting: the first retry after this, doubling up to the cap, so a
// restarted Redis is found again within a second.
constexpr absl::Duration kFirstBackoff = absl::Milliseconds(50);
constexpr absl::Duration kMaxBackoff = absl::Seconds(1);
// How long a connection may take to be set up (TCP, AUTH, SELECT) at least;
// the store's timeout when that is longer.
constexpr absl::Duration kMinConnectTimeout = absl::Seconds(1);
// A connection whose oldest request is this many store timeouts old (and
// at least kMinHungConnection) is dropped and made again.
constexpr int kHungConnectionTimeouts = 4;
constexpr absl::Duration kMinHungConnection = absl::Seconds(2);
// At most one warning about error replies in this long.
constexpr absl::Duration kErrorLogInterval = absl::Seconds(10);
// The loop wakes at least this often, to notice deadlines.
constexpr int kMaxPollMs = 50;

absl::Status Unavailable(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat("notes store: ", what));
}

}  // namespace

const char kAddNoteScript[] =
    "local earlier = redis.call('LRANGE', KEYS[1], 0, -1)\n"
    "redis.call('RPUSH', KEYS[1], ARGV[1])\n"
    "redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
    "return earlier\n";

std::string RedisAddress::ToString() const {
  if (!unix_path.empty()) return absl::StrCat("unix://", unix_path);
  const bool ipv6 = absl::StrContains(host, ':');
  return absl::StrCat("redis://", ipv6 ? "[" : "", host, ipv6 ? "]" : "", ":",
                      port, database != 0 ? absl::StrCat("/", database) : "");
}

absl::StatusOr<std::optional<RedisAddress>> ParseNotesStore(absl::string_view spec) {
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--notes_store=", spec, ": ", why,
        " (expected memory, redis://HOST:PORT[/DB] or unix:///path/to/redis.sock)"));
  };
  if (spec == "memory") return std::nullopt;
  RedisAddress address;
  absl::string_view rest = spec;
  if (absl::ConsumePrefix(&rest, "unix://")) {
    if (!absl::StartsWith(rest, "/")) return bad("the socket path must be absolute");
    address.unix_path = std::string(rest);
    return address;
  }
  if (!absl::ConsumePrefix(&rest, "redis://")) return bad("unknown store");
  if (absl::StrContains(rest, '@')) {
    return bad("put the password in --notes_store_password_file, not in the address");
  }
  absl::string_view host_port = rest;
  if (const size_t slash = rest.find('/'); slash != absl::string_view::npos) {
    host_port = rest.substr(0, slash);
    absl::string_view db = rest.substr(slash + 1);
    if (!absl::SimpleAtoi(db, &address.database) || address.database < 0) {
      return bad("the database must be a number >= 0");
    }
  }
  absl::string_view port_text;
  if (absl::ConsumePrefix(&host_port, "[")) {  // [IPv6]:port
    const size_t close = host_port.find(']');
    if (close == absl::string_view::npos) return bad("no ']' after an IPv6 address");
    address.host = std::string(host_port.substr(0, close));
    absl::string_view after = host_port.substr(close + 1);
    if (!after.empty() && !absl::ConsumePrefix(&after, ":")) return bad("junk after ']'");
    port_text = after;
  } else {
    const size_t colon = host_port.rfind(':');
    address.host = std::string(host_port.substr(0, colon));
    if (colon != absl::string_view::npos) port_text = host_port.substr(colon + 1);
  }
  if (address.host.empty()) return bad("no host");
  if (!port_text.empty() &&
      (!absl::SimpleAtoi(port_text, &address.port) || address.port < 1 ||
       address.port > 65535)) {
    return bad("the port must be 1..65535");
  }
  return address;
}

std::string NotesKey(const GeoPoint& point) {
  return absl::StrCat("routeguide:notes:", point.latitude, ":", point.longitude);
}

absl::Status ValidateRedisNotesStoreOptions(const RedisNotesStoreOptions& options) {
  if (options.timeout < absl::Milliseconds(1) || options.timeout > absl::Minutes(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--notes_store_timeout must be between 1ms and 1m (got ",
        absl::FormatDuration(options.timeout), ")"));
  }
  if (options.ttl < absl::Seconds(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--notes_ttl must be at least 1s (got ", absl::FormatDuration(options.ttl), ")"));
  }
  if (options.max_pending < 1) {
    return absl::InvalidArgumentError("--notes_store_max_pending must be at least 1");
  }
  if (options.max_notes_per_location < 1) {
    return absl::InvalidArgumentError("--max_notes_per_location must be at least 1");
  }
  return absl::OkStatus();
}

void NotesTicket::Complete(Answer answer) {
  absl::MutexLock lock(&mu_);
  if (alarm_ == nullptr) return;  // The call gave up waiting.
  answer_ = std::move(answer);
  alarm_->Cancel();  // Its tag comes back now, with ok == false.
}

void NotesTicket::Abandon() {
  absl::MutexLock lock(&mu_);
  if (alarm_ == nullptr || answer_.has_value()) return;  // Woken already.
  alarm_->Cancel();
}

std::optional<NotesTicket::Answer> NotesTicket::Collect() {
  absl::MutexLock lock(&mu_);
  alarm_ = nullptr;
  return std::move(answer_);
}

// A note on its way: queued in inbox_, then sent and in in_flight_ until
// Redis answers (or the connection is lost).
struct RedisNotesStore::Request {
  RedisNotesStore* store;
  std::string key;
  std::string note;
  std::shared_ptr<NotesTicket> ticket;
  absl::Time submitted;
};

RedisNotesStore::RedisNotesStore(RedisNotesStoreOptions options)
    : options_(std::move(options)),
      address_text_(options_.address.ToString()),
      ttl_ms_(absl::StrCat(absl::ToInt64Milliseconds(options_.ttl))),
      bound_(absl::StrCat(options_.max_notes_per_location)),
      backoff_(kFirstBackoff) {}

absl::StatusOr<std::unique_ptr<RedisNotesStore>> RedisNotesStore::Start(
    RedisNotesStoreOptions options) {
  if (absl::Status valid = ValidateRedisNotesStoreOptions(options); !valid.ok()) {
    return valid;
  }
  std::unique_ptr<RedisNotesStore> self(new RedisNotesStore(std::move(options)));
  self->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (self->wake_fd_ < 0) {
    return absl::InternalError(
        absl::StrCat("notes store: eventfd: ", std::strerror(errno)));
  }
  self->thread_ = std::thread([store = self.get()] { store->Run(); });
  // The first attempt, so that a replica that starts with Redis up serves
  // RouteChat from its first call; one that cannot connect says so.
  bool tried = false;
  {
    absl::MutexLock lock(&self->mu_);
    self->mu_.AwaitWithTimeout(absl::Condition(&self->first_attempt_done_),
                               self->options_.timeout);
    tried = self->first_attempt_done_;
  }
  if (self->up()) {
    spdlog::info("notes store: {} (RouteChat notes shared through Redis, ttl {})",
                 self->address_text_, absl::FormatDuration(self->options_.ttl));
  } else if (!tried) {  // A failed attempt has said why already (a warning).
    spdlog::info("notes store: {} did not answer within {}; RouteChat answers "
                 "UNAVAILABLE until it does (retrying in the background)",
                 self->address_text_, absl::FormatDuration(self->options_.timeout));
  }
  return self;
}

RedisNotesStore::~RedisNotesStore() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  const uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void RedisNotesStore::AddNote(const GeoPoint& point, std::string note,
                              std::shared_ptr<NotesTicket> ticket) {
  stats_.requests.fetch_add(1, std::memory_order_relaxed);
  if (!up()) {
    stats_.refused.fetch_add(1, std::memory_order_relaxed);
    ticket->Complete(Unavailable(absl::StrCat(
        address_text_, " is down or not answering within ",
        absl::FormatDuration(options_.timeout))));
    return;
  }
  if (pending_.fetch_add(1, std::memory_order_relaxed) >= options_.max_pending) {
    pending_.fetch_sub(1, std::memory_order_relaxed);
    stats_.refused.fetch_add(1, std::memory_order_relaxed);
    ticket->Complete(absl::ResourceExhaustedError(absl::StrCat(
        "notes store: ", options_.max_pending,
        " requests already waiting for Redis (--notes_store_max_pending)")));
    return;
  }
  auto request = std::make_unique<Request>(
      Request{this, NotesKey(point), std::move(note), std::move(ticket), absl::Now()});
  bool wake = false;
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      wake = inbox_.empty();
      inbox_.push_back(std::move(request));
    }
  }
  if (request != nullptr) {  // Stopping: the thread takes no more.
    pending_.fetch_sub(1, std::memory_order_relaxed);
    request->ticket->Complete(Unavailable("the server is stopping"));
    return;
  }
  // One wake-up per batch: the thread takes the whole inbox and pipelines it.
  if (wake) {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
  }
}

void RedisNotesStore::Run() {
  // hiredis writes with write(2): a Redis gone away must give EPIPE here,
  // not a SIGPIPE that ends the process (whatever its disposition).
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
    }
    absl::Time now = absl::Now();
    if (context_ == nullptr && now >= next_connect_) Connect();

    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {-1, 0, 0}};
    nfds_t count = 1;
    if (context_ != nullptr && (want_read_ || want_write_)) {
      fds[1] = {context_->c.fd,
                static_cast<short>((want_read_ ? POLLIN : 0) | (want_write_ ? POLLOUT : 0)),
                0};
      count = 2;
    }
    const int ready = poll(fds, count, PollTimeoutMs(now));
    if (ready < 0 && errno != EINTR) {
      spdlog::error("notes store: poll: {}", std::strerror(errno));
      absl::SleepFor(absl::Milliseconds(10));
    }
    if (ready > 0 && count == 2 && fds[1].revents != 0) {
      if ((fds[1].revents & (POLLIN | POLLERR | POLLHUP)) != 0 && want_read_) {
        redisAsyncHandleRead(context_);
      }
      // Reading may have lost the connection (context_ is then null).
      if (context_ != nullptr &&
          (fds[1].revents & (POLLOUT | POLLERR | POLLHUP)) != 0 && want_write_) {
        redisAsyncHandleWrite(context_);
      }
    }
    if (ready > 0 && (fds[0].revents & POLLIN) != 0) {
      uint64_t ignored;
      (void)!read(wake_fd_, &ignored, sizeof ignored);
    }
    SendInbox();
    CheckDeadlines(absl::Now());
  }
  // Stopping: whatever is still pending fails (freeing the context runs
  // every callback with no reply), and that is no outage to log.
  outage_logged_ = true;
  if (context_ != nullptr) {
    redisAsyncContext* context = context_;
    redisAsyncFree(context);
    context_ = nullptr;
  }
  up_.store(false, std::memory_order_release);
  SendInbox();
}

absl::Duration RedisNotesStore::HungConnectionAfter() const {
  return std::max(kMinHungConnection, options_.timeout * kHungConnectionTimeouts);
}

int RedisNotesStore::PollTimeoutMs(absl::Time now) const {
  absl::Time wake = now + absl::Milliseconds(kMaxPollMs);
  if (context_ == nullptr) wake = std::min(wake, next_connect_);
  if (!connected_) wake = std::min(wake, connect_deadline_);
  if (up() && !in_flight_.empty()) {
    wake = std::min(wake, in_flight_.front()->submitted + options_.timeout);
  }
  return static_cast<int>(std::clamp<int64_t>(
      absl::ToInt64Milliseconds(absl::Ceil(wake - now, absl::Milliseconds(1))), 0,
      kMaxPollMs));
}

void RedisNotesStore::Connect() {
  const RedisAddress& address = options_.address;
  redisAsyncContext* context =
      address.unix_path.empty()
          ? redisAsyncConnect(address.host.c_str(), address.port)
          : redisAsyncConnectUnix(address.unix_path.c_str());
  if (context == nullptr || context->err != 0) {
    const std::string why = context != nullptr ? context->errstr : "out of memory";
    if (context != nullptr) redisAsyncFree(context);
    OnConnectionLost(why);
    return;
  }
  context_ = context;
  context->data = this;
  context->ev.data = this;
  context->ev.addRead = &AddRead;
  context->ev.delRead = &DelRead;
  context->ev.addWrite = &AddWrite;
  context->ev.delWrite = &DelWrite;
  context->ev.cleanup = &Cleanup;
  redisAsyncSetConnectCallback(context, &ConnectCallback);
  redisAsyncSetDisconnectCallback(context, &DisconnectCallback);
  connected_ = false;
  connect_deadline_ = absl::Now() + std::max(kMinConnectTimeout, options_.timeout);
  // The socket turns writable once connected.
  want_write_ = true;
}

void RedisNotesStore::ConnectCallback(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisNotesStore*>(context->data);
  if (status != REDIS_OK) {
    // hiredis frees the context after this returns.
    self->context_ = nullptr;
    self->OnConnectionLost(context->errstr);
    return;
  }
  self->OnConnected();
}

// Connected: AUTH and SELECT as needed, then PING; the store is up once
// every one of them has answered well.
void RedisNotesStore::OnConnected() {
  connected_ = true;
  // TCP only (it is an error on a Unix socket): finds a Redis host that is
  // gone while the connection is idle.
  if (options_.address.unix_path.empty()) redisEnableKeepAlive(&context_->c);
  setup_replies_due_ = 0;
  const auto send = [this](std::vector<std::string> args) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const std::string& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    redisAsyncCommandArgv(context_, &SetupCallback, this, static_cast<int>(argv.size()),
                          argv.data(), lengths.data());
    ++setup_replies_due_;
  };
  if (!options_.password.empty()) send({"AUTH", options_.password});
  if (options_.address.database != 0) {
    send({"SELECT", absl::StrCat(options_.address.database)});
  }
  send({"PING"});
}

void RedisNotesStore::SetupCallback(redisAsyncContext* context, void* reply_data,
                                    void* data) {
  auto* self = static_cast<RedisNotesStore*>(data);
  const auto* reply = static_cast<const redisReply*>(reply_data);
  if (reply == nullptr) {
    // The connection is going; its disconnect callback follows.
    self->setup_replies_due_ = 0;
    return;
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    // A wrong password, a database that does not exist, "max number of
    // clients reached": this connection is of no use. Freed once this
    // callback returns; the set-up replies still due then get none, and
    // the disconnect callback schedules the retry.
    self->setup_replies_due_ = 0;
    self->SetUp(false, absl::StrCat("setting up the connection: ",
                                    absl::string_view(reply->str, reply->len)));
    redisAsyncFree(context);
    return;
  }
  self->OnSetupReply();
}

void RedisNotesStore::OnSetupReply() {
  if (setup_replies_due_ > 0 && --setup_replies_due_ == 0) {
    backoff_ = kFirstBackoff;
    connect_deadline_ = absl::InfiniteFuture();
    SetUp(true, "");
  }
}

void RedisNotesStore::DisconnectCallback(const redisAsyncContext* context,
                                         int /*status*/) {
  auto* self = static_cast<RedisNotesStore*>(context->data);
  self->context_ = nullptr;
  self->OnConnectionLost(context->errstr[0] != '\0' ? context->errstr
                                                    : "connection closed");
}

// The connection is gone (or never came): down until a retry succeeds.
void RedisNotesStore::OnConnectionLost(absl::string_view why) {
  connected_ = false;
  want_read_ = want_write_ = false;
  connect_deadline_ = absl::InfiniteFuture();
  next_connect_ = absl::Now() + backoff_;
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  SetUp(false, why);
  absl::MutexLock lock(&mu_);
  first_attempt_done_ = true;
}

// Up and down are logged once per change, not per call or retry.
void RedisNotesStore::SetUp(bool up, absl::string_view why) {
  const bool was_up = up_.exchange(up, std::memory_order_acq_rel);
  if (up) {
    {
      absl::MutexLock lock(&mu_);
      first_attempt_done_ = true;
    }
    if (outage_logged_) {
      spdlog::info("notes store: {} is back after {}", address_text_,
                   absl::FormatDuration(absl::Trunc(absl::Now() - down_since_,
                                                    absl::Milliseconds(1))));
    }
    outage_logged_ = false;
    down_since_ = absl::InfiniteFuture();
    return;
  }
  if (down_since_ == absl::InfiniteFuture()) down_since_ = absl::Now();
  if (!outage_logged_ && (was_up || stats_.outages.load() == 0)) {
    outage_logged_ = true;
    stats_.outages.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("notes store: {}: {}; RouteChat answers UNAVAILABLE until it "
                 "is back (retrying)",
                 address_text_, std::string(why));
  }
}

void RedisNotesStore::SendInbox() {
  std::vector<std::unique_ptr<Request>> batch;
  {
    absl::MutexLock lock(&mu_);
    batch.swap(inbox_);
  }
  for (auto& request : batch) Send(std::move(request));
}

void RedisNotesStore::Send(std::unique_ptr<Request> request) {
  if (context_ == nullptr || !up()) {
    pending_.fetch_sub(1, std::memory_order_relaxed);
    stats_.failures.fetch_add(1, std::memory_order_relaxed);
    request->ticket->Complete(Unavailable(absl::StrCat(address_text_, " is down")));
    return;
  }
  const char* argv[] = {"EVAL", kAddNoteScript, "1", request->key.data(),
                        request->note.data(), bound_.data(), ttl_ms_.data()};
  const size_t lengths[] = {4,
                            sizeof(kAddNoteScript) - 1,
                            1,
                            request->key.size(),
                            request->note.size(),
                            bound_.size(),
                            ttl_ms_.size()};
  Request* raw = request.get();
  if (redisAsyncCommandArgv(context_, &ReplyCallback, raw, 7, argv, lengths) != REDIS_OK) {
    pending_.fetch_sub(1, std::memory_order_relaxed);
    stats_.failures.fetch_add(1, std::memory_order_relaxed);
    request->ticket->Complete(Unavailable("the connection is closing"));
    return;
  }
  // hiredis has copied the arguments into its output buffer.
  raw->key.clear();
  raw->key.shrink_to_fit();
  raw->note.clear();
  raw->note.shrink_to_fit();
  in_flight_.push_back(request.release());
}

void RedisNotesStore::ReplyCallback(redisAsyncContext* context, void* reply,
                                    void* data) {
  auto* request = static_cast<Request*>(data);
  (void)context;
  request->store->OnReply(request, reply);
}

void RedisNotesStore::OnReply(Request* raw, const void* reply_data) {
  std::unique_ptr<Request> request(raw);
  // Redis answers in order; a lost connection fails them in order too.
  if (!in_flight_.empty() && in_flight_.front() == raw) {
    in_flight_.pop_front();
  } else {
    in_flight_.erase(std::remove(in_flight_.begin(), in_flight_.end(), raw),
                     in_flight_.end());
  }
  pending_.fetch_sub(1, std::memory_order_relaxed);
  const auto* reply = static_cast<const redisReply*>(reply_data);
  if (reply == nullptr) {
    stats_.failures.fetch_add(1, std::memory_order_relaxed);
    request->ticket->Complete(Unavailable(absl::StrCat(
        "lost the connection to ", address_text_, " before it answered")));
    return;
  }
  stats_.latency.Record(absl::Now() - request->submitted);
  // Redis answers again, unless the next request is overdue as well.
  if (!up() && connected_ && setup_replies_due_ == 0 &&
      (in_flight_.empty() ||
       absl::Now() - in_flight_.front()->submitted <= options_.timeout)) {
    SetUp(true, "");
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    stats_.failures.fetch_add(1, std::memory_order_relaxed);
    const absl::string_view error(reply->str, reply->len);
    LogErrorReply(error);
    // A full Redis under maxmemory's noeviction policy: a bound, not an
    // outage.
    request->ticket->Complete(
        absl::StartsWith(error, "OOM")
            ? absl::ResourceExhaustedError(
                  absl::StrCat("notes store: Redis is full: ", error))
            : Unavailable(absl::StrCat("Redis said: ", error)));
    return;
  }
  if (reply->type != REDIS_REPLY_ARRAY) {
    stats_.failures.fetch_add(1, std::memory_order_relaxed);
    request->ticket->Complete(absl::InternalError(absl::StrCat(
        "notes store: the script answered with reply type ", reply->type,
        ", not a list")));
    return;
  }
  std::vector<std::string> notes;
  notes.reserve(reply->elements);
  for (size_t i = 0; i < reply->elements; ++i) {
    const redisReply* element = reply->element[i];
    if (element->type != REDIS_REPLY_STRING) continue;
    notes.emplace_back(element->str, element->len);
  }
  request->ticket->Complete(std::move(notes));
}

// Error replies are logged at most every kErrorLogInterval, with how many
// there were meanwhile: one per note would flood the log.
void RedisNotesStore::LogErrorReply(absl::string_view error) {
  ++error_replies_unlogged_;
  const absl::Time now = absl::Now();
  if (now - last_error_logged_ < kErrorLogInterval) return;
  spdlog::warn("notes store: {} answered a note with an error ({} since the last "
               "such warning): {}",
               address_text_, error_replies_unlogged_, std::string(error));
  error_replies_unlogged_ = 0;
  last_error_logged_ = now;
}

// A connection that takes too long to set up is dropped and retried; a
// store whose oldest request is past the timeout is "not answering": new
// notes fail at once until it answers again (the calls already waiting
// time out on their own alarms).
void RedisNotesStore::CheckDeadlines(absl::Time now) {
  if (context_ != nullptr && !connected_ && now >= connect_deadline_) {
    redisAsyncContext* context = context_;
    context_ = nullptr;
    redisAsyncFree(context);  // Not connected: no disconnect callback.
    OnConnectionLost(absl::StrCat("no connection within ",
                                  absl::FormatDuration(std::max(
                                      kMinConnectTimeout, options_.timeout))));
    return;
  }
  if (context_ != nullptr && setup_replies_due_ > 0 && now >= connect_deadline_) {
    // Connected but not answering the set-up: dropped (the disconnect
    // callback schedules the retry).
    redisAsyncFree(context_);
    return;
  }
  if (in_flight_.empty()) return;
  const absl::Duration oldest = now - in_flight_.front()->submitted;
  if (up() && oldest > options_.timeout) {
    SetUp(false, absl::StrCat("no answer within ", absl::FormatDuration(options_.timeout)));
  }
  // Long past the timeout, the connection is dropped and made again: Redis
  // may have moved (a failover behind the same name), and TCP alone would
  // take many minutes to notice a peer that is gone. The requests on it
  // fail (their calls have long stopped waiting).
  if (context_ != nullptr && oldest > HungConnectionAfter()) {
    redisAsyncFree(context_);
  }
}

void RedisNotesStore::AddRead(void* data) {
  static_cast<RedisNotesStore*>(data)->want_read_ = true;
}
void RedisNotesStore::DelRead(void* data) {
  static_cast<RedisNotesStore*>(data)->want_read_ = false;
}
void RedisNotesStore::AddWrite(void* data) {
  static_cast<RedisNotesStore*>(data)->want_write_ = true;
}
void RedisNotesStore::DelWrite(void* data) {
  static_cast<RedisNotesStore*>(data)->want_write_ = false;
}
void RedisNotesStore::Cleanup(void* data) {
  auto* self = static_cast<RedisNotesStore*>(data);
  self->want_read_ = self->want_write_ = false;
}

}  // namespace routeguide
