// RedisNotesStore's requests: taken from any thread, pipelined by the
// store's thread, answered through NotesTicket. Its connection's life is
// redis_connection.cc; the options and addresses redis_notes_options.cc.
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
#include "absl/strings/str_cat.h"
#include "hiredis/async.h"
#include "hiredis/hiredis.h"
#include "process_limits.h"
#include "spdlog/spdlog.h"

namespace routeguide {
namespace {

// At most one warning about error replies in this long.
constexpr absl::Duration kErrorLogInterval = absl::Seconds(10);
// The loop wakes at least this often, to notice deadlines.
constexpr int kMaxPollMs = 50;

absl::Status Unavailable(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat("notes store: ", what));
}

}  // namespace

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
  self->thread_ = std::thread([store = self.get()] {
    NameThisThread("rg-redis-notes");
    store->Run();
  });
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

}  // namespace routeguide
