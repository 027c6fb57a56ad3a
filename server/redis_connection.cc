// RedisNotesStore's connection, on the store's thread: connecting (AUTH,
// SELECT, PING), losing it and reconnecting with backoff, the deadlines
// that drop a connection which does not answer, and hiredis's event hooks
// (its async API driven by the store's own poll loop in
// redis_notes_store.cc).
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "hiredis/async.h"
#include "hiredis/hiredis.h"
#include "redis_notes_store.h"
#include "spdlog/spdlog.h"

namespace routeguide {
namespace {

// How long a connection may take to be set up (TCP, AUTH, SELECT) at least;
// the store's timeout when that is longer.
constexpr absl::Duration kMinConnectTimeout = absl::Seconds(1);
// A connection whose oldest request is this many store timeouts old (and
// at least kMinHungConnection) is dropped and made again.
constexpr int kHungConnectionTimeouts = 4;
constexpr absl::Duration kMinHungConnection = absl::Seconds(2);

}  // namespace

absl::Duration RedisNotesStore::HungConnectionAfter() const {
  return std::max(kMinHungConnection, options_.timeout * kHungConnectionTimeouts);
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
