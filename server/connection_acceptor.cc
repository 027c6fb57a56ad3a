#include "connection_acceptor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "http2_guard.h"
#include "listen_sockets.h"
#include "process_limits.h"
#include "spdlog/spdlog.h"

namespace routeguide {

struct ConnectionAcceptor::Pending {
  uint64_t id = 0;      // Tells this connection from a later one on its fd.
  std::string address;  // The peer, as gRPC would name it.
};

namespace {

// What every HTTP/2 client sends first (RFC 9113, section 3.4).
constexpr char kClientPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr size_t kClientPrefaceSize = sizeof(kClientPreface) - 1;

// epoll tags: a pending connection's tag is its descriptor; the wake-up
// event and the listening sockets sit above every descriptor number.
constexpr uint64_t kWakeTag = uint64_t{1} << 40;
constexpr uint64_t kListenTagBase = uint64_t{1} << 41;

constexpr absl::Duration kFirstBackoff = absl::Milliseconds(10);
constexpr absl::Duration kMaxBackoff = absl::Seconds(1);
// Accepts per wake-up per socket, so pending connections and the other
// sockets get their turn during a flood.
constexpr int kAcceptsPerWake = 256;

std::string ErrnoText(int error) { return std::strerror(error); }

}  // namespace

void PeerDirectory::Record(int fd, std::string address) {
  absl::MutexLock lock(&mu_);
  addresses_[fd] = std::move(address);
}

std::string PeerDirectory::Resolve(absl::string_view peer) const {
  absl::string_view number = peer;
  int fd = -1;
  if (!absl::ConsumePrefix(&number, "fd:") || !absl::SimpleAtoi(number, &fd)) {
    return std::string(peer);
  }
  absl::MutexLock lock(&mu_);
  auto it = addresses_.find(fd);
  return it == addresses_.end() ? std::string(peer) : it->second;
}

ConnectionAcceptor::ConnectionAcceptor(const AcceptorOptions& options)
    : options_(options), backoff_(kFirstBackoff) {}

absl::StatusOr<std::unique_ptr<ConnectionAcceptor>> ConnectionAcceptor::Listen(
    const AcceptorOptions& options) {
  auto sockets = OpenListeningSockets(options.address, options.reuse_port);
  if (!sockets.ok()) return sockets.status();
  std::unique_ptr<ConnectionAcceptor> self(new ConnectionAcceptor(options));
  self->listen_fds_ = std::move(sockets->fds);
  self->listen_names_ = std::move(sockets->names);
  self->port_ = sockets->port;
  self->unix_path_ = std::move(sockets->unix_path);

  self->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  self->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  self->reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (self->epoll_fd_ < 0 || self->wake_fd_ < 0 || self->reserve_fd_ < 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot set up the accept loop: ", ErrnoText(errno)));
  }
  epoll_event wake{};
  wake.events = EPOLLIN;
  wake.data.u64 = kWakeTag;
  epoll_ctl(self->epoll_fd_, EPOLL_CTL_ADD, self->wake_fd_, &wake);
  for (size_t i = 0; i < self->listen_fds_.size(); ++i) {
    epoll_event listening{};
    listening.events = EPOLLIN;
    listening.data.u64 = kListenTagBase + i;
    epoll_ctl(self->epoll_fd_, EPOLL_CTL_ADD, self->listen_fds_[i], &listening);
  }
  return self;
}

ConnectionAcceptor::~ConnectionAcceptor() { Stop(); }

void ConnectionAcceptor::Start(std::function<void(int fd)> hand_over,
                               Http2Guard* guard) {
  hand_over_ = std::move(hand_over);
  guard_ = guard;
  thread_ = std::thread([this] {
    NameThisThread("rg-accept");
    Loop();
  });
}

void ConnectionAcceptor::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (thread_.joinable()) {
    const uint64_t one = 1;
    // An eventfd write cannot fail short of overflow; the loop wakes.
    [[maybe_unused]] const ssize_t written = write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
  for (auto& [fd, pending] : pending_) close(fd);
  pending_.clear();
  pending_count_.store(0, std::memory_order_relaxed);
  for (int fd : listen_fds_) close(fd);
  listen_fds_.clear();
  if (!unix_path_.empty()) unlink(unix_path_.c_str());
  for (int* fd : {&epoll_fd_, &wake_fd_, &reserve_fd_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

AcceptorStats ConnectionAcceptor::stats() const {
  AcceptorStats stats;
  stats.accepted = accepted_.load(std::memory_order_relaxed);
  stats.handed_over = handed_over_.load(std::memory_order_relaxed);
  stats.handshake_timeouts = handshake_timeouts_.load(std::memory_order_relaxed);
  stats.not_http2 = not_http2_.load(std::memory_order_relaxed);
  stats.shed = shed_.load(std::memory_order_relaxed);
  stats.pending = pending_count_.load(std::memory_order_relaxed);
  return stats;
}

void ConnectionAcceptor::Loop() {
  epoll_event events[64];
  for (;;) {
    absl::Time wake_at = absl::InfiniteFuture();
    if (deadlines_head_ < deadlines_.size()) wake_at = deadlines_[deadlines_head_].first;
    if (paused_) wake_at = std::min(wake_at, paused_until_);
    int timeout_ms = -1;
    if (wake_at != absl::InfiniteFuture()) {
      const absl::Duration left = wake_at - absl::Now();
      timeout_ms = static_cast<int>(std::clamp<int64_t>(
          absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))), 0, INT_MAX));
    }
    const int count = epoll_wait(epoll_fd_, events, 64, timeout_ms);
    if (count < 0 && errno != EINTR) {
      spdlog::error("accept loop: epoll_wait failed: {}", ErrnoText(errno));
      absl::SleepFor(kFirstBackoff);  // Never spin, never stop.
    }
    const absl::Time now = absl::Now();
    for (int i = 0; i < count; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kWakeTag) return;
      if (tag >= kListenTagBase) {
        AcceptFrom(static_cast<size_t>(tag - kListenTagBase), now);
      } else {
        CheckPreface(static_cast<int>(tag));
      }
    }
    if (paused_ && now >= paused_until_) {
      paused_ = false;
      WatchListeners(true);
    }
    ExpirePending(now);
  }
}

void ConnectionAcceptor::AcceptFrom(size_t index, absl::Time now) {
  if (paused_) return;
  for (int i = 0; i < kAcceptsPerWake; ++i) {
    sockaddr_storage address{};
    socklen_t size = sizeof(address);
    const int fd = accept4(listen_fds_[index], reinterpret_cast<sockaddr*>(&address),
                           &size, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int error = errno;
      switch (error) {
        case EINTR:
        case ECONNABORTED:  // The client gave up while queued.
        case EPROTO:        // Linux hands pending network errors to accept.
        case EPERM:
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case ENETUNREACH:
          continue;
        case EAGAIN:
          return;
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
          Shed(index, error, now);
          return;
        default:
          spdlog::error("accept on {} failed: {}; retrying in {}", listen_names_[index],
                        ErrnoText(error), absl::FormatDuration(backoff_));
          PauseAccepting(now);
          return;
      }
    }
    accepted_.fetch_add(1, std::memory_order_relaxed);
    if (shed_in_episode_ > 0) {
      spdlog::info("accepting connections on {} again; {} were shed while "
                   "descriptors were short",
                   listen_names_[index], shed_in_episode_);
      shed_in_episode_ = 0;
    }
    backoff_ = kFirstBackoff;
    if (reserve_fd_ < 0) reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (address.ss_family != AF_UNIX) {
      const int one = 1;  // gRPC's own listener sets it too: small frames go out now.
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    // Edge-triggered: a preface that arrives in pieces wakes the loop once
    // per piece, while MSG_PEEK leaves the bytes for gRPC to read.
    epoll_event readable{};
    readable.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    readable.data.u64 = static_cast<uint64_t>(fd);
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &readable) != 0) {
      close(fd);
      shed_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    auto pending = std::make_unique<Pending>();
    pending->id = next_id_++;
    pending->address = SocketAddressText(address, size);
    deadlines_.push_back({now + options_.handshake_timeout, {fd, pending->id}});
    pending_[fd] = std::move(pending);
    pending_count_.store(static_cast<int64_t>(pending_.size()), std::memory_order_relaxed);
  }
}

void ConnectionAcceptor::CheckPreface(int fd) {
  auto it = pending_.find(fd);
  if (it == pending_.end()) return;
  char head[kClientPrefaceSize];
  const ssize_t got = recv(fd, head, sizeof(head), MSG_PEEK);
  if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (got <= 0 || std::memcmp(head, kClientPreface, static_cast<size_t>(got)) != 0) {
    // Hung up, reset, or not HTTP/2 (an HTTP/1 request, a TLS hello).
    not_http2_.fetch_add(1, std::memory_order_relaxed);
    ClosePending(fd);
    return;
  }
  if (static_cast<size_t>(got) < kClientPrefaceSize) return;  // More to come.
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  std::string address = std::move(it->second->address);
  pending_.erase(it);
  pending_count_.store(static_cast<int64_t>(pending_.size()), std::memory_order_relaxed);
  int grpc_fd = fd;
  if (guard_ != nullptr) {
    // gRPC gets the guard's end of a socketpair, and names that one.
    auto relayed = guard_->Adopt(fd, address);
    if (!relayed.ok()) {  // The guard closed it.
      shed_.fetch_add(1, std::memory_order_relaxed);
      spdlog::debug("closed the connection from {}: {}", address,
                    relayed.status().ToString());
      return;
    }
    grpc_fd = *relayed;
  }
  peers_.Record(grpc_fd, std::move(address));
  handed_over_.fetch_add(1, std::memory_order_relaxed);
  hand_over_(grpc_fd);
}

void ConnectionAcceptor::ClosePending(int fd) {
  pending_.erase(fd);
  pending_count_.store(static_cast<int64_t>(pending_.size()), std::memory_order_relaxed);
  close(fd);  // Also leaves the epoll set.
}

void ConnectionAcceptor::ExpirePending(absl::Time now) {
  while (deadlines_head_ < deadlines_.size() && deadlines_[deadlines_head_].first <= now) {
    const auto [fd, id] = deadlines_[deadlines_head_].second;
    ++deadlines_head_;
    auto it = pending_.find(fd);
    if (it != pending_.end() && it->second->id == id) {
      handshake_timeouts_.fetch_add(1, std::memory_order_relaxed);
      ClosePending(fd);
    }
  }
  // Drop the consumed front once it is most of the vector.
  if (deadlines_head_ > 1024 && deadlines_head_ * 2 > deadlines_.size()) {
    deadlines_.erase(deadlines_.begin(), deadlines_.begin() + static_cast<ptrdiff_t>(deadlines_head_));
    deadlines_head_ = 0;
  }
}

void ConnectionAcceptor::Shed(size_t index, int error, absl::Time now) {
  if (shed_in_episode_ == 0) {
    rlimit files{};
    getrlimit(RLIMIT_NOFILE, &files);
    spdlog::warn(
        "accept on {} failed: {} (open-files limit {}); shedding new "
        "connections and retrying with backoff until descriptors are free",
        listen_names_[index], ErrnoText(error), static_cast<int64_t>(files.rlim_cur));
  }
  // The connection at the head of the queue would make the kernel wake us
  // again at once: take it with the reserved descriptor and close it.
  if (reserve_fd_ >= 0) {
    close(reserve_fd_);
    reserve_fd_ = -1;
    const int fd = accept4(listen_fds_[index], nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) close(fd);
    reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
  shed_.fetch_add(1, std::memory_order_relaxed);
  ++shed_in_episode_;
  PauseAccepting(now);
}

void ConnectionAcceptor::PauseAccepting(absl::Time now) {
  paused_ = true;
  paused_until_ = now + backoff_;
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  WatchListeners(false);
}

void ConnectionAcceptor::WatchListeners(bool on) {
  for (size_t i = 0; i < listen_fds_.size(); ++i) {
    epoll_event listening{};  // No events: the socket waits out the backoff.
    listening.events = on ? static_cast<uint32_t>(EPOLLIN) : 0u;
    listening.data.u64 = kListenTagBase + i;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listen_fds_[i], &listening);
  }
}

}  // namespace routeguide
