#include "http2_guard.h"

#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "http2_frames.h"
#include "http2_policy.h"
#include "http2_relay.h"
#include "process_limits.h"
#include "spin_window.h"
#include "spdlog/spdlog.h"

namespace routeguide {
namespace {

// Connections handed over that the loop has not taken yet.
constexpr size_t kMaxIncoming = 4096;
constexpr int kMaxEvents = 128;

// epoll tags: a relay's id times two, plus one for gRPC's side. Ids start
// at 1, so 0 is free for the wake-up eventfd.
constexpr uint64_t kWakeTag = 0;

std::string ErrnoText(int error) { return std::strerror(error); }

}  // namespace

Http2Guard::Http2Guard(const Http2GuardOptions& options)
    : options_(options), policy_(std::make_unique<Http2Policy>(options)) {}

absl::StatusOr<std::unique_ptr<Http2Guard>> Http2Guard::Start(
    const Http2GuardOptions& options) {
  if (options.max_client_resets < 1 || options.buffer_bytes < 1024 ||
      options.settings_timeout <= absl::ZeroDuration() ||
      options.thread_nice < 0 || options.thread_nice > 19 ||
      options.spin < absl::ZeroDuration() || options.spin > kMaxGuardSpin ||
      options.spin_max_open_streams < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HTTP/2 guard: need max_client_resets >= 1, buffer_bytes >= 1024, "
        "a positive settings timeout, a thread nice value of 0 to 19 and a "
        "spin of 0 to ", absl::FormatDuration(kMaxGuardSpin),
        " with spin_max_open_streams >= 0",
        "; got max_client_resets=",
        options.max_client_resets, " buffer_bytes=", options.buffer_bytes,
        " settings_timeout=", absl::FormatDuration(options.settings_timeout),
        " thread_nice=", options.thread_nice,
        " spin=", absl::FormatDuration(options.spin),
        " spin_max_open_streams=", options.spin_max_open_streams));
  }
  std::unique_ptr<Http2Guard> self(new Http2Guard(options));
  self->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  self->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (self->epoll_fd_ < 0 || self->wake_fd_ < 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("HTTP/2 guard: cannot set up its loop: ", ErrnoText(errno)));
  }
  epoll_event wake{};
  wake.events = EPOLLIN;
  wake.data.u64 = kWakeTag;
  if (epoll_ctl(self->epoll_fd_, EPOLL_CTL_ADD, self->wake_fd_, &wake) != 0) {
    return absl::InternalError(
        absl::StrCat("HTTP/2 guard: epoll_ctl: ", ErrnoText(errno)));
  }
  self->scratch_.reset(new char[options.buffer_bytes]);
  self->scratch_size_ = options.buffer_bytes;
  self->thread_ = std::thread([guard = self.get()] { guard->Loop(); });
  return self;
}

Http2Guard::~Http2Guard() { Stop(); }

absl::StatusOr<int> Http2Guard::Adopt(int client_fd, std::string peer) {
  int ends[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, ends) != 0) {
    const int error = errno;
    close(client_fd);
    refused_.fetch_add(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(
        absl::StrCat("HTTP/2 guard: socketpair: ", ErrnoText(error)));
  }
  {
    absl::MutexLock lock(&mu_);
    if (stopped_ || incoming_.size() >= kMaxIncoming) {
      const bool stopped = stopped_;
      close(client_fd);
      close(ends[0]);
      close(ends[1]);
      refused_.fetch_add(1, std::memory_order_relaxed);
      return absl::UnavailableError(stopped ? "HTTP/2 guard: stopped"
                                            : "HTTP/2 guard: too many connections "
                                              "waiting to be taken");
    }
    incoming_.push_back(Incoming{client_fd, ends[0], ends[1], std::move(peer)});
  }
  relayed_.fetch_add(1, std::memory_order_relaxed);
  const uint64_t one = 1;
  // An eventfd write fails only on overflow, which 2^64 wake-ups are not.
  [[maybe_unused]] const ssize_t written = write(wake_fd_, &one, sizeof(one));
  return ends[1];
}

void Http2Guard::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  stopping_.store(true, std::memory_order_release);
  if (thread_.joinable()) {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t written = write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
  for (auto& [id, relay] : relays_) {
    if (relay->client_fd >= 0) close(relay->client_fd);
    if (relay->relay_fd >= 0) close(relay->relay_fd);
    policy_->EndStreams(relay->http2);
  }
  relays_.clear();
  ready_.clear();
  held_bytes_.store(0, std::memory_order_relaxed);
  {
    absl::MutexLock lock(&mu_);
    for (const Incoming& in : incoming_) {
      close(in.client_fd);
      close(in.relay_fd);  // gRPC's end is gRPC's: it sees end of file.
    }
    incoming_.clear();
  }
  active_.store(0, std::memory_order_relaxed);
  policy_->LogSuppressedWarnings();
  for (int* fd : {&epoll_fd_, &wake_fd_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

Http2GuardStats Http2Guard::stats() const {
  Http2GuardStats stats;
  stats.relayed = relayed_.load(std::memory_order_relaxed);
  stats.active = active_.load(std::memory_order_relaxed);
  stats.refused = refused_.load(std::memory_order_relaxed);
  stats.goaways_sent = goaways_sent_.load(std::memory_order_relaxed);
  stats.held_bytes = held_bytes_.load(std::memory_order_relaxed);
  stats.spin_polls = spin_polls_.load(std::memory_order_relaxed);
  stats.spin_hits = spin_hits_.load(std::memory_order_relaxed);
  stats.spin_wasted_us = spin_wasted_us_.load(std::memory_order_relaxed);
  policy_->AddStats(stats);
  return stats;
}

void Http2Guard::Loop() {
  NameThisThread("http2-guard");
  // On Linux a nice value belongs to the thread (by its id), not the
  // process; a new thread starts at its creator's. Raising it needs no
  // privilege. Relative, so a server run under `nice` keeps the gap.
  const auto tid = static_cast<id_t>(syscall(SYS_gettid));
  errno = 0;
  const int inherited = getpriority(PRIO_PROCESS, tid);  // -1 is valid.
  const int nice = errno != 0 ? options_.thread_nice
                              : std::min(19, inherited + options_.thread_nice);
  if (setpriority(PRIO_PROCESS, tid, nice) != 0) {
    spdlog::warn("HTTP/2 guard: cannot set its thread's nice value to {}: {}",
                 nice, ErrnoText(errno));
  }
  epoll_event events[kMaxEvents];
  std::vector<uint64_t> turn;
  SpinWindow spin(options_.spin);
  // The spin runs on the monotonic clock: a wall clock stepped back must
  // not stretch a poll into a busy loop.
  using SteadyClock = std::chrono::steady_clock;
  // Whether the guard has had no socket event since it last ran out of
  // work, since when, and the time its spin from then runs out (once the
  // spin's waste is counted, or with no spin, equal to idle_since).
  bool idle = false;
  SteadyClock::time_point idle_since, spin_until;
  while (!stopping_.load(std::memory_order_acquire)) {
    int timeout_ms = -1;
    bool spinning = false;
    if (!ready_.empty()) {
      timeout_ms = 0;
    } else {
      const SteadyClock::time_point now = SteadyClock::now();
      if (!idle) {
        idle = true;
        idle_since = now;
        // Streams open or end only with events, so this holds until the
        // next one.
        const bool few_calls =
            policy_->open_streams() <= options_.spin_max_open_streams;
        spin_until = few_calls ? now + absl::ToChronoNanoseconds(spin.window()) : now;
      }
      if (now < spin_until) {
        // Polls on while the spin lasts, but lets gRPC's pollers have the
        // core first: a thread that never sleeps would otherwise take its
        // share of a busy core, nice 10 or not.
        sched_yield();
        timeout_ms = 0;
        spinning = true;
      } else if (spin_until > idle_since) {
        // The spin ran out: its window is counted, once. (Not the time
        // since idle_since, which on a busy core holds the time this
        // thread waited to run.)
        spin_wasted_us_.fetch_add(
            std::chrono::duration_cast<std::chrono::microseconds>(spin_until -
                                                                  idle_since)
                .count(),
            std::memory_order_relaxed);
        spin_until = idle_since;
      }
      if (!spinning && !timers_.empty()) {
        const absl::Duration left = timers_.top().first - absl::Now();
        timeout_ms = static_cast<int>(std::clamp<int64_t>(
            absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))),
            0, INT_MAX));
      }
    }
    const int count = epoll_wait(epoll_fd_, events, kMaxEvents, timeout_ms);
    if (count < 0 && errno != EINTR) {
      spdlog::error("HTTP/2 guard: epoll_wait failed: {}", ErrnoText(errno));
      absl::SleepFor(absl::Milliseconds(10));  // Never busy-loop on an error.
    }
    if (count == 0 && spinning) {
      spin_polls_.fetch_add(1, std::memory_order_relaxed);
    } else if (count > 0 && idle) {
      // An event ended the wait. Timers due meanwhile did not: they say
      // nothing about the sockets' traffic.
      spin.Record(absl::FromChrono(SteadyClock::now() - idle_since));
      if (spinning) spin_hits_.fetch_add(1, std::memory_order_relaxed);
      idle = false;
    }
    const absl::Time now = absl::Now();
    for (int i = 0; i < count; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kWakeTag) {
        uint64_t wakes;
        [[maybe_unused]] const ssize_t got = read(wake_fd_, &wakes, sizeof(wakes));
        if (stopping_.load(std::memory_order_acquire)) return;
        TakeIncoming(now);
        continue;
      }
      auto it = relays_.find(tag >> 1);
      if (it == relays_.end()) continue;  // Closed earlier in this batch.
      Http2Relay& relay = *it->second;
      const uint32_t flags = events[i].events;
      const bool hup = (flags & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
      const bool in = hup || (flags & EPOLLIN) != 0;
      const bool out = (flags & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0;
      if ((tag & 1) == static_cast<uint64_t>(Side::kClient)) {
        relay.client_readable |= in;
        relay.client_hup |= hup;
        relay.client_writable |= out;
      } else {
        relay.grpc_readable |= in;
        relay.grpc_hup |= hup;
        relay.grpc_writable |= out;
      }
      Pump(relay.id, now);
    }
    turn.swap(ready_);
    for (const uint64_t id : turn) {
      auto it = relays_.find(id);
      if (it == relays_.end()) continue;
      it->second->queued = false;
      Pump(id, now);
    }
    turn.clear();
    ExpireTimers(now);
  }
}

void Http2Guard::TakeIncoming(absl::Time now) {
  std::vector<Incoming> taken;
  {
    absl::MutexLock lock(&mu_);
    taken.swap(incoming_);
  }
  for (Incoming& in : taken) {
    auto relay = std::make_unique<Http2Relay>();
    relay->id = next_id_++;
    relay->client_fd = in.client_fd;
    relay->relay_fd = in.relay_fd;
    relay->grpc_fd = in.grpc_fd;
    relay->peer = std::move(in.peer);
    relay->http2.settings_deadline = now + options_.settings_timeout;
    relay->http2.window_start = now;
    // Both sockets are new: there is room to write until a write says
    // otherwise.
    relay->client_writable = relay->grpc_writable = true;
    const bool added =
        Watch(relay->client_fd, relay->id, Side::kClient, false, /*add=*/true) &&
        Watch(relay->relay_fd, relay->id, Side::kGrpc, false, /*add=*/true);
    if (!added) {
      spdlog::error("HTTP/2 guard: cannot watch the connection from {}: {}",
                    relay->peer, ErrnoText(errno));
      close(relay->client_fd);
      close(relay->relay_fd);
      refused_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    timers_.push({relay->http2.settings_deadline, relay->id});
    relays_.emplace(relay->id, std::move(relay));
  }
  active_.store(static_cast<int64_t>(relays_.size()), std::memory_order_relaxed);
}

void Http2Guard::Reject(Http2Relay& relay, uint32_t error_code, absl::Time now,
                        bool* closed) {
  policy_->CountClose(relay.http2, error_code);
  // gRPC sees end of file and frees what the connection holds; nothing
  // more the client sends reaches it.
  close(relay.relay_fd);
  relay.relay_fd = -1;
  relay.to_grpc.Clear();
  // The GOAWAY must not land inside a frame of the server's: it goes
  // after the last whole frame gRPC wrote, dropping the part of a frame
  // read after it, unless some of that part already reached the client.
  const uint64_t boundary = relay.http2.from_grpc.boundary();
  const bool goaway = !relay.client_write_shut && boundary >= relay.sent_to_client;
  policy_->ReportClose(relay.http2, error_code, goaway, relay.peer, relay.grpc_fd, now);
  if (!goaway) {
    CloseRelay(relay.id);
    *closed = true;
    return;
  }
  relay.to_client.Truncate(static_cast<size_t>(boundary - relay.sent_to_client));
  const std::string frame =
      GoawayFrame(relay.http2.last_stream_id, error_code,
                  Http2Policy::CloseReason(relay.http2, error_code));
  relay.to_client.Append(frame.data(), frame.size());
  goaways_sent_.fetch_add(1, std::memory_order_relaxed);
  BeginClosing(relay, now);
}

void Http2Guard::ExpireTimers(absl::Time now) {
  while (!timers_.empty() && timers_.top().first <= now) {
    const uint64_t id = timers_.top().second;
    timers_.pop();
    auto it = relays_.find(id);
    if (it == relays_.end()) continue;
    Http2Relay& relay = *it->second;
    if (relay.state == Http2Relay::State::kClosing) {
      // The client did not read what was left, or did not hang up.
      if (now >= relay.close_deadline) CloseRelay(id);
    } else if (!relay.http2.settings_acked && now >= relay.http2.settings_deadline) {
      bool closed = false;
      Reject(relay, kSettingsTimeout, now, &closed);
      if (!closed) Pump(id, now);
    }
  }
}

}  // namespace routeguide
