#include "http2_relay.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "http2_guard.h"
#include "spdlog/spdlog.h"

namespace routeguide {
namespace {

// Once gRPC's side is gone: how long the client gets to read what is left
// (a GOAWAY) and hang up before its socket is closed under it.
constexpr absl::Duration kCloseLinger = absl::Seconds(1);
// Rounds one connection may relay per turn before the others get theirs,
// so a flooding client cannot starve the rest of the thread.
constexpr int kStepsPerTurn = 4;
}  // namespace

void ByteQueue::Append(const char* data, size_t size) {
  if (head_ > 0) {
    bytes_.erase(0, head_);
    head_ = 0;
  }
  bytes_.append(data, size);
}

void ByteQueue::Consume(size_t size) {
  head_ += size;
  if (head_ >= bytes_.size()) Clear();
}

void ByteQueue::Truncate(size_t size) {
  bytes_.resize(head_ + std::min(size, this->size()));
  if (empty()) Clear();
}

void ByteQueue::Clear() {
  std::string().swap(bytes_);
  head_ = 0;
}

bool Flush(int fd, bool* writable, ByteQueue& queue, bool* moved, uint64_t* written) {
  while (!queue.empty() && *writable) {
    const ssize_t sent = send(fd, queue.data(), queue.size(), MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        *writable = false;
        return true;
      }
      return false;
    }
    *moved = true;
    if (written != nullptr) *written += static_cast<uint64_t>(sent);
    // A short write means the socket is full; epoll says when it is not.
    if (static_cast<size_t>(sent) < queue.size()) *writable = false;
    queue.Consume(static_cast<size_t>(sent));
  }
  return true;
}

bool Forward(int fd, bool* writable, ByteQueue& queue, const char* data,
             size_t size, bool* moved, uint64_t* written) {
  if (queue.empty() && *writable) {
    ssize_t sent;
    do {
      sent = send(fd, data, size, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
      *writable = false;
      sent = 0;
    }
    if (written != nullptr) *written += static_cast<uint64_t>(sent);
    if (static_cast<size_t>(sent) < size) *writable = false;
    data += sent;
    size -= static_cast<size_t>(sent);
  }
  if (size > 0) queue.Append(data, size);
  *moved = true;
  return true;
}

bool TakePeeked(int fd, char* scratch, size_t size) {
  while (size > 0) {
    const ssize_t taken = recv(fd, scratch, size, 0);
    if (taken < 0 && errno == EINTR) continue;
    if (taken <= 0) {
      if (taken == 0) errno = 0;
      return false;
    }
    size -= static_cast<size_t>(taken);
  }
  return true;
}

// The guard's relay I/O, on its loop thread.

void Http2Guard::Pump(uint64_t id, absl::Time now) {
  auto it = relays_.find(id);
  if (it == relays_.end()) return;
  Http2Relay& relay = *it->second;
  bool moved = true;
  for (int step = 0; step < kStepsPerTurn && moved; ++step) {
    bool closed = false;
    moved = relay.state == Http2Relay::State::kOpen ? Step(relay, now, &closed)
                                               : StepClosing(relay, &closed);
    if (closed) return;
  }
  // Its share is used up and it may have more: it goes on after the others.
  if (moved && !relay.queued) {
    relay.queued = true;
    ready_.push_back(id);
  }
  // Room to write is watched for only while bytes wait for it: a socket
  // pair reports room each time its peer reads, which would otherwise wake
  // the loop once more for every message relayed.
  bool watching = true;
  const bool client_out = !relay.to_client.empty();
  if (client_out != relay.client_out_watched) {
    watching = Watch(relay.client_fd, relay.id, Side::kClient, client_out);
    relay.client_out_watched = client_out;
  }
  const bool grpc_out = !relay.to_grpc.empty();
  if (relay.relay_fd >= 0 && grpc_out != relay.grpc_out_watched) {
    watching = Watch(relay.relay_fd, relay.id, Side::kGrpc, grpc_out) && watching;
    relay.grpc_out_watched = grpc_out;
  }
  const size_t held = relay.to_client.size() + relay.to_grpc.size();
  if (held != relay.held_counted) {
    AddHeldBytes(static_cast<int64_t>(held) - static_cast<int64_t>(relay.held_counted));
    relay.held_counted = held;
  }
  if (!watching) {
    // Without the wake-up the bytes would wait forever.
    spdlog::error("HTTP/2 guard: epoll_ctl failed for the connection from {}: {}",
                  relay.peer, std::strerror(errno));
    CloseRelay(id);
  }
}

bool Http2Guard::Watch(int fd, uint64_t id, Side side, bool out, bool add) {
  epoll_event watch{};
  // Edge-triggered: backpressure is simply not reading (or not writing)
  // until the other side catches up, which costs no epoll_ctl call.
  // Adding, or changing what is watched, reports what is ready already.
  watch.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (out ? EPOLLOUT : 0u);
  watch.data.u64 = id << 1 | static_cast<uint64_t>(side);
  return epoll_ctl(epoll_fd_, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &watch) == 0;
}

bool Http2Guard::Step(Http2Relay& relay, absl::Time now, bool* closed) {
  bool moved = false;
  const size_t capacity = options_.buffer_bytes;

  // Client to gRPC.
  if (!Flush(relay.relay_fd, &relay.grpc_writable, relay.to_grpc, &moved)) {
    BeginClosing(relay, now);  // gRPC closed its end.
    return true;
  }
  if (!relay.client_eof && relay.client_readable && relay.to_grpc.size() < capacity) {
    const size_t want = std::min(capacity - relay.to_grpc.size(), scratch_size_);
    const ssize_t got = recv(relay.client_fd, scratch_.get(), want, 0);
    if (got > 0) {
      const size_t size = static_cast<size_t>(got);
      // A short read emptied the socket: the next bytes bring a new edge.
      if (size < want && !relay.client_hup) relay.client_readable = false;
      uint32_t error_code = 0;
      if (!policy_->InspectClientBytes(relay.http2, scratch_.get(), size, now, &error_code)) {
        Reject(relay, error_code, now, closed);
        return true;
      }
      if (!Forward(relay.relay_fd, &relay.grpc_writable, relay.to_grpc,
                   scratch_.get(), size, &moved)) {
        BeginClosing(relay, now);
        return true;
      }
    } else if (got == 0) {
      relay.client_eof = true;
      moved = true;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      relay.client_readable = false;
    } else if (errno != EINTR) {
      CloseRelay(relay.id);  // Reset by the client: nothing left to deliver.
      *closed = true;
      return true;
    }
  }
  if (relay.client_eof && relay.to_grpc.empty() && !relay.grpc_write_shut) {
    shutdown(relay.relay_fd, SHUT_WR);
    relay.grpc_write_shut = true;
    moved = true;
  }

  // gRPC to the client.
  if (!Flush(relay.client_fd, &relay.client_writable, relay.to_client, &moved,
             &relay.sent_to_client)) {
    CloseRelay(relay.id);
    *closed = true;
    return true;
  }
  if (relay.grpc_readable && relay.to_client.size() < capacity) {
    const size_t want = std::min(capacity - relay.to_client.size(), scratch_size_);
    // Peeked, and taken only once passed on. Taking bytes from a
    // socketpair tells the writer's end it has room, and gRPC's poller
    // watches for room too: it wakes, and at nice 0 it preempts this
    // thread (nice 10) before the answer has gone to the client.
    const ssize_t got = recv(relay.relay_fd, scratch_.get(), want, MSG_PEEK);
    if (got > 0) {
      const size_t size = static_cast<size_t>(got);
      if (size < want && !relay.grpc_hup) relay.grpc_readable = false;
      policy_->InspectServerBytes(relay.http2, scratch_.get(), size, now);
      if (!Forward(relay.client_fd, &relay.client_writable, relay.to_client,
                   scratch_.get(), size, &moved, &relay.sent_to_client)) {
        CloseRelay(relay.id);
        *closed = true;
        return true;
      }
      if (!TakePeeked(relay.relay_fd, scratch_.get(), size)) {
        // Only we read this end, so the peeked bytes are there to take.
        spdlog::error("HTTP/2 guard: taking {} relayed bytes from gRPC failed "
                      "for the connection from {}: {}",
                      size, relay.peer, std::strerror(errno));
        CloseRelay(relay.id);
        *closed = true;
        return true;
      }
    } else if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      BeginClosing(relay, now);  // gRPC closed the connection.
      return true;
    } else if (errno != EINTR) {
      relay.grpc_readable = false;
    }
  }
  return moved;
}

bool Http2Guard::StepClosing(Http2Relay& relay, bool* closed) {
  bool moved = false;
  if (!Flush(relay.client_fd, &relay.client_writable, relay.to_client, &moved,
             &relay.sent_to_client)) {
    CloseRelay(relay.id);
    *closed = true;
    return true;
  }
  if (relay.to_client.empty() && !relay.client_write_shut) {
    // End of file after the last byte, rather than a reset that could
    // overtake it.
    shutdown(relay.client_fd, SHUT_WR);
    relay.client_write_shut = true;
    moved = true;
  }
  if (relay.client_write_shut && relay.client_eof) {
    CloseRelay(relay.id);
    *closed = true;
    return true;
  }
  // What the client still sends is dropped, so that closing its socket
  // finds nothing unread (which would send a reset) once it hangs up.
  if (relay.client_readable && !relay.client_eof) {
    const ssize_t got = recv(relay.client_fd, scratch_.get(), scratch_size_, 0);
    if (got > 0) {
      moved = true;
      if (static_cast<size_t>(got) < scratch_size_ && !relay.client_hup) {
        relay.client_readable = false;
      }
    } else if (got == 0) {
      relay.client_eof = true;
      moved = true;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      relay.client_readable = false;
    } else if (errno != EINTR) {
      CloseRelay(relay.id);
      *closed = true;
      return true;
    }
  }
  return moved;
}

void Http2Guard::BeginClosing(Http2Relay& relay, absl::Time now) {
  if (relay.relay_fd >= 0) {
    close(relay.relay_fd);
    relay.relay_fd = -1;
  }
  relay.to_grpc.Clear();
  policy_->EndStreams(relay.http2);  // gRPC ends no more of them.
  relay.state = Http2Relay::State::kClosing;
  relay.close_deadline = now + kCloseLinger;
  timers_.push({relay.close_deadline, relay.id});
}

void Http2Guard::CloseRelay(uint64_t id) {
  auto it = relays_.find(id);
  if (it == relays_.end()) return;
  // Closing leaves the epoll set: neither descriptor was duplicated.
  if (it->second->client_fd >= 0) close(it->second->client_fd);
  if (it->second->relay_fd >= 0) close(it->second->relay_fd);
  policy_->EndStreams(it->second->http2);
  AddHeldBytes(-static_cast<int64_t>(it->second->held_counted));
  relays_.erase(it);
  active_.store(static_cast<int64_t>(relays_.size()), std::memory_order_relaxed);
}

}  // namespace routeguide
