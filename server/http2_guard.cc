#include "http2_guard.h"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace routeguide {
namespace {

// What every HTTP/2 client sends first (RFC 9113, section 3.4); the
// acceptor checked it, the guard passes it on unread.
constexpr uint64_t kClientPrefaceSize = 24;
constexpr size_t kFrameHeaderSize = 9;

// Frame types, flags and error codes (RFC 9113, sections 6 and 7).
constexpr uint8_t kDataFrame = 0x0;
constexpr uint8_t kHeadersFrame = 0x1;
constexpr uint8_t kRstStreamFrame = 0x3;
constexpr uint8_t kSettingsFrame = 0x4;
constexpr uint8_t kGoawayFrame = 0x7;
constexpr uint8_t kEndStreamFlag = 0x1;  // On HEADERS and DATA.
constexpr uint8_t kPaddedFlag = 0x8;     // On DATA.
constexpr uint8_t kAckFlag = 0x1;        // On SETTINGS.
constexpr uint32_t kSettingsTimeout = 0x4;
constexpr uint32_t kEnhanceYourCalm = 0xb;

constexpr absl::Duration kResetWindow = absl::Seconds(1);
// A client closed for rapid reset usually reconnects at once, and each
// connection gets max_client_resets resets through before it is closed: an
// attacker that reconnects hundreds of times a second still feeds gRPC far
// more than it can free (measured with that rule alone: 640 reconnects a
// second, RSS at 2.9 GiB 15 s after a 5 s attack, gRPC still working
// through it). So once a connection was closed for rapid reset, or all
// clients together reset more than kGlobalResetFactor times the limit
// within a second, the limit is divided by kStrictDivisor for every
// connection for kStrictPeriod. Clients that complete more calls than they
// reset are never closed, so this only costs clients that reset most of
// their calls.
constexpr absl::Duration kStrictPeriod = absl::Seconds(10);
constexpr int64_t kStrictDivisor = 100;
constexpr int64_t kGlobalResetFactor = 10;
// Once gRPC's side is gone: how long the client gets to read what is left
// (a GOAWAY) and hang up before its socket is closed under it.
constexpr absl::Duration kCloseLinger = absl::Seconds(1);
// Rounds one connection may relay per turn before the others get theirs,
// so a flooding client cannot starve the rest of the thread.
constexpr int kStepsPerTurn = 4;
// Connections handed over that the loop has not taken yet.
constexpr size_t kMaxIncoming = 4096;
constexpr int kMaxWarningsPerSecond = 10;
constexpr int kMaxEvents = 128;

// epoll tags: a relay's id times two, plus one for gRPC's side. Ids start
// at 1, so 0 is free for the wake-up eventfd.
constexpr uint64_t kWakeTag = 0;

std::string ErrnoText(int error) { return std::strerror(error); }

// Bytes waiting to be written, oldest first. Its storage is freed whenever
// it empties: most writes complete at once, so an idle connection holds no
// buffer at all.
class ByteQueue {
 public:
  size_t size() const { return bytes_.size() - head_; }
  bool empty() const { return size() == 0; }
  const char* data() const { return bytes_.data() + head_; }
  void Append(const char* data, size_t size) {
    if (head_ > 0) {
      bytes_.erase(0, head_);
      head_ = 0;
    }
    bytes_.append(data, size);
  }
  void Consume(size_t size) {
    head_ += size;
    if (head_ >= bytes_.size()) Clear();
  }
  // Keeps only the first `size` bytes.
  void Truncate(size_t size) {
    bytes_.resize(head_ + std::min(size, this->size()));
    if (empty()) Clear();
  }
  void Clear() {
    std::string().swap(bytes_);
    head_ = 0;
  }

 private:
  std::string bytes_;
  size_t head_ = 0;
};

struct FrameHeader {
  uint32_t length = 0;
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t stream_id = 0;
};

// Follows one direction of an HTTP/2 connection frame by frame: reads each
// 9-byte frame header and skips the payload by its length, wherever the
// reads happen to cut the stream.
class FrameCursor {
 public:
  // `skip`: bytes before the first frame (the client preface).
  explicit FrameCursor(uint64_t skip) : skip_(skip), frame_start_(skip) {}

  // Feeds the next bytes. `on_header(const FrameHeader&)` runs for each
  // frame header completed; when it returns false the rest of `data` is
  // not looked at, and the cursor must not be fed again.
  template <typename OnHeader>
  void Feed(const char* data, size_t size, OnHeader&& on_header) {
    Feed(data, size, on_header, [](const FrameHeader&, uint32_t, const char*, size_t) {
      return true;
    });
  }
  // The same, with `on_payload(frame, offset, bytes, n)` for each piece of
  // a frame's payload (`offset` into the payload); false stops as above.
  template <typename OnHeader, typename OnPayload>
  void Feed(const char* data, size_t size, OnHeader&& on_header, OnPayload&& on_payload) {
    size_t i = 0;
    while (i < size) {
      const size_t left = size - i;
      if (skip_ > 0 || payload_left_ > 0) {
        const bool payload = skip_ == 0;
        uint64_t& rest = skip_ > 0 ? skip_ : payload_left_;
        const size_t n = static_cast<size_t>(std::min<uint64_t>(rest, left));
        const auto offset = static_cast<uint32_t>(frame_.length - rest);
        rest -= n;
        i += n;
        if (rest == 0) frame_start_ = offset_ + i;
        if (payload && !on_payload(frame_, offset, data + i - n, n)) return;
        continue;
      }
      const size_t n = std::min(kFrameHeaderSize - have_, left);
      std::memcpy(header_ + have_, data + i, n);
      have_ += n;
      i += n;
      if (have_ < kFrameHeaderSize) break;
      have_ = 0;
      FrameHeader frame;
      frame.length = uint32_t{header_[0]} << 16 | uint32_t{header_[1]} << 8 | header_[2];
      frame.type = header_[3];
      frame.flags = header_[4];
      frame.stream_id = (uint32_t{header_[5]} << 24 | uint32_t{header_[6]} << 16 |
                         uint32_t{header_[7]} << 8 | header_[8]) &
                        0x7fffffffu;
      payload_left_ = frame.length;
      frame_ = frame;
      if (frame.length == 0) frame_start_ = offset_ + i;
      if (!on_header(frame)) return;
    }
    offset_ += size;
  }

  // The stream offset where the frame being read began: the end of the
  // last whole frame fed.
  uint64_t boundary() const { return frame_start_; }

 private:
  uint64_t skip_;
  uint64_t offset_ = 0;  // Bytes fed.
  uint64_t frame_start_;
  uint64_t payload_left_ = 0;
  FrameHeader frame_;  // The frame whose payload is being read.
  unsigned char header_[kFrameHeaderSize] = {};
  size_t have_ = 0;
};

std::string GoawayFrame(uint32_t last_stream_id, uint32_t error_code,
                        absl::string_view debug) {
  const size_t length = 8 + debug.size();
  std::string frame;
  frame.reserve(kFrameHeaderSize + length);
  auto put32 = [&frame](uint32_t value) {
    for (int shift = 24; shift >= 0; shift -= 8) {
      frame.push_back(static_cast<char>((value >> shift) & 0xff));
    }
  };
  frame.push_back(static_cast<char>((length >> 16) & 0xff));
  frame.push_back(static_cast<char>((length >> 8) & 0xff));
  frame.push_back(static_cast<char>(length & 0xff));
  frame.push_back(static_cast<char>(kGoawayFrame));
  frame.push_back(0);  // No flags.
  put32(0);            // The connection.
  put32(last_stream_id & 0x7fffffffu);
  put32(error_code);
  frame.append(debug.data(), debug.size());
  return frame;
}

// Writes what `queue` holds to `fd` while the socket takes it. False on an
// error other than a full socket (errno says which).
bool Flush(int fd, bool* writable, ByteQueue& queue, bool* moved,
           uint64_t* written = nullptr) {
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

// Writes `data` to `fd` behind whatever `queue` holds, as far as the
// socket takes it, and queues the rest. False on an error.
bool Forward(int fd, bool* writable, ByteQueue& queue, const char* data,
             size_t size, bool* moved, uint64_t* written = nullptr) {
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

}  // namespace

// Where one client stream is in gRPC's message framing: a 5-byte prefix
// (flag, 32-bit length), then that many bytes; so each length a message
// declares is seen as it starts.
struct Http2Guard::StreamMessages {
  uint64_t body_left = 0;
  unsigned char prefix[5] = {};
  size_t prefix_have = 0;
};

struct Http2Guard::Relay {
  enum class State {
    kOpen,     // Relaying both ways.
    kClosing,  // gRPC's side is closed: flushing to the client, then closing.
  };

  uint64_t id = 0;
  int client_fd = -1;
  int relay_fd = -1;  // Our end of the socketpair; -1 once closed.
  int grpc_fd = -1;   // gRPC's end, named in the log as gRPC names it.
  std::string peer;
  State state = State::kOpen;
  bool queued = false;  // In ready_.

  // Edge-triggered epoll: whether each socket may have bytes to read or
  // room to write, as far as we know. Cleared when a call would block.
  bool client_readable = false, client_writable = false;
  bool grpc_readable = false, grpc_writable = false;
  // The socket reported a hang-up: read it until it says end of file, as
  // no further edge will come.
  bool client_hup = false, grpc_hup = false;
  // EPOLLOUT is in the epoll set (only while bytes wait to be written).
  bool client_out_watched = false, grpc_out_watched = false;
  bool client_eof = false;         // The client shut down its side.
  bool grpc_write_shut = false;    // Passed on to gRPC.
  bool client_write_shut = false;  // gRPC's end of file, passed on.

  FrameCursor from_client{kClientPrefaceSize};
  ByteQueue to_grpc;
  FrameCursor from_grpc{0};
  ByteQueue to_client;
  uint64_t sent_to_client = 0;

  bool settings_acked = false;
  absl::Time settings_deadline;
  absl::Time close_deadline;
  uint32_t last_stream_id = 0;  // Highest stream the client opened.
  // Per client stream: where it is in gRPC's message framing. Dropped when
  // the stream ends.
  absl::flat_hash_map<uint32_t, StreamMessages> messages;
  uint8_t pad_length = 0;  // Of the DATA frame being read.
  uint64_t oversized_length = 0;  // The declared length it was closed for.
  // Until the client acknowledges SETTINGS: its streams the server has not
  // ended, which gRPC 1.51 does not yet bound.
  absl::flat_hash_set<uint32_t> open_before_ack;
  bool too_many_early_streams = false;  // What it was closed for.
  int64_t limit = 0;            // The reset limit it ran into.
  // The current one-second window of the reset rule.
  absl::Time window_start;
  int64_t window_opened = 0;
  int64_t window_resets = 0;
  int64_t window_completed = 0;  // Streams the server ended (trailers).

  void RollWindow(absl::Time now) {
    if (now - window_start < kResetWindow) return;
    window_start = now;
    window_opened = window_resets = window_completed = 0;
  }
};

Http2Guard::Http2Guard(const Http2GuardOptions& options) : options_(options) {}

absl::StatusOr<std::unique_ptr<Http2Guard>> Http2Guard::Start(
    const Http2GuardOptions& options) {
  if (options.max_client_resets < 1 || options.buffer_bytes < 1024 ||
      options.settings_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HTTP/2 guard: need max_client_resets >= 1, buffer_bytes >= 1024 and "
        "a positive settings timeout; got max_client_resets=",
        options.max_client_resets, " buffer_bytes=", options.buffer_bytes,
        " settings_timeout=", absl::FormatDuration(options.settings_timeout)));
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
  self->scratch_.resize(options.buffer_bytes);
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
  }
  relays_.clear();
  ready_.clear();
  {
    absl::MutexLock lock(&mu_);
    for (const Incoming& in : incoming_) {
      close(in.client_fd);
      close(in.relay_fd);  // gRPC's end is gRPC's: it sees end of file.
    }
    incoming_.clear();
  }
  active_.store(0, std::memory_order_relaxed);
  if (warnings_suppressed_ > 0) {
    spdlog::warn("HTTP/2 guard: {} more connections were closed than logged",
                 warnings_suppressed_);
    warnings_suppressed_ = 0;
  }
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
  stats.rapid_reset_closes = rapid_reset_closes_.load(std::memory_order_relaxed);
  stats.settings_timeouts = settings_timeouts_.load(std::memory_order_relaxed);
  stats.oversized_message_closes = oversized_message_closes_.load(std::memory_order_relaxed);
  stats.early_stream_closes = early_stream_closes_.load(std::memory_order_relaxed);
  stats.goaways_sent = goaways_sent_.load(std::memory_order_relaxed);
  stats.strict_periods = strict_periods_.load(std::memory_order_relaxed);
  stats.streams_opened = streams_opened_.load(std::memory_order_relaxed);
  stats.client_resets = client_resets_.load(std::memory_order_relaxed);
  return stats;
}

void Http2Guard::Loop() {
  // So that top -H and perf tell its share from gRPC's threads.
  pthread_setname_np(pthread_self(), "http2-guard");
  epoll_event events[kMaxEvents];
  std::vector<uint64_t> turn;
  while (!stopping_.load(std::memory_order_acquire)) {
    int timeout_ms = -1;
    if (!ready_.empty()) {
      timeout_ms = 0;
    } else if (!timers_.empty()) {
      const absl::Duration left = timers_.top().first - absl::Now();
      timeout_ms = static_cast<int>(std::clamp<int64_t>(
          absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))), 0,
          INT_MAX));
    }
    const int count = epoll_wait(epoll_fd_, events, kMaxEvents, timeout_ms);
    if (count < 0 && errno != EINTR) {
      spdlog::error("HTTP/2 guard: epoll_wait failed: {}", ErrnoText(errno));
      absl::SleepFor(absl::Milliseconds(10));  // Never spin.
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
      Relay& relay = *it->second;
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
    auto relay = std::make_unique<Relay>();
    relay->id = next_id_++;
    relay->client_fd = in.client_fd;
    relay->relay_fd = in.relay_fd;
    relay->grpc_fd = in.grpc_fd;
    relay->peer = std::move(in.peer);
    relay->settings_deadline = now + options_.settings_timeout;
    relay->window_start = now;
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
    timers_.push({relay->settings_deadline, relay->id});
    relays_.emplace(relay->id, std::move(relay));
  }
  active_.store(static_cast<int64_t>(relays_.size()), std::memory_order_relaxed);
}

void Http2Guard::Pump(uint64_t id, absl::Time now) {
  auto it = relays_.find(id);
  if (it == relays_.end()) return;
  Relay& relay = *it->second;
  bool moved = true;
  for (int step = 0; step < kStepsPerTurn && moved; ++step) {
    bool closed = false;
    moved = relay.state == Relay::State::kOpen ? Step(relay, now, &closed)
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
  if (!watching) {
    // Without the wake-up the bytes would wait forever.
    spdlog::error("HTTP/2 guard: epoll_ctl failed for the connection from {}: {}",
                  relay.peer, ErrnoText(errno));
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

bool Http2Guard::Step(Relay& relay, absl::Time now, bool* closed) {
  bool moved = false;
  const size_t capacity = options_.buffer_bytes;

  // Client to gRPC.
  if (!Flush(relay.relay_fd, &relay.grpc_writable, relay.to_grpc, &moved)) {
    BeginClosing(relay, now);  // gRPC closed its end.
    return true;
  }
  if (!relay.client_eof && relay.client_readable && relay.to_grpc.size() < capacity) {
    const size_t want = std::min(capacity - relay.to_grpc.size(), scratch_.size());
    const ssize_t got = recv(relay.client_fd, scratch_.data(), want, 0);
    if (got > 0) {
      const size_t size = static_cast<size_t>(got);
      // A short read emptied the socket: the next bytes bring a new edge.
      if (size < want && !relay.client_hup) relay.client_readable = false;
      uint32_t error_code = 0;
      if (!InspectClientBytes(relay, scratch_.data(), size, now, &error_code)) {
        Reject(relay, error_code, now, closed);
        return true;
      }
      if (!Forward(relay.relay_fd, &relay.grpc_writable, relay.to_grpc,
                   scratch_.data(), size, &moved)) {
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
    const size_t want = std::min(capacity - relay.to_client.size(), scratch_.size());
    const ssize_t got = recv(relay.relay_fd, scratch_.data(), want, 0);
    if (got > 0) {
      const size_t size = static_cast<size_t>(got);
      if (size < want && !relay.grpc_hup) relay.grpc_readable = false;
      InspectServerBytes(relay, scratch_.data(), size, now);
      if (!Forward(relay.client_fd, &relay.client_writable, relay.to_client,
                   scratch_.data(), size, &moved, &relay.sent_to_client)) {
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

bool Http2Guard::StepClosing(Relay& relay, bool* closed) {
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
    const ssize_t got = recv(relay.client_fd, scratch_.data(), scratch_.size(), 0);
    if (got > 0) {
      moved = true;
      if (static_cast<size_t>(got) < scratch_.size() && !relay.client_hup) {
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

bool Http2Guard::InspectClientBytes(Relay& relay, const char* data, size_t size,
                                    absl::Time now, uint32_t* error_code) {
  relay.RollWindow(now);
  bool allowed = true;
  relay.from_client.Feed(data, size, [&](const FrameHeader& frame) {
    switch (frame.type) {
      case kHeadersFrame:
        // A client's streams have odd ids, each higher than the last (RFC
        // 9113, section 5.1.1); HEADERS on an older one carries trailers.
        if ((frame.stream_id & 1) != 0 && frame.stream_id > relay.last_stream_id) {
          relay.last_stream_id = frame.stream_id;
          ++relay.window_opened;
          streams_opened_.fetch_add(1, std::memory_order_relaxed);
          if (!relay.settings_acked) {
            relay.open_before_ack.insert(frame.stream_id);
            if (static_cast<int64_t>(relay.open_before_ack.size()) >
                options_.max_streams_before_ack) {
              relay.too_many_early_streams = true;
              *error_code = kEnhanceYourCalm;
              allowed = false;
            }
          }
        }
        break;
      case kRstStreamFrame: {
        ++relay.window_resets;
        client_resets_.fetch_add(1, std::memory_order_relaxed);
        if (now - global_window_start_ >= kResetWindow) {
          global_window_start_ = now;
          global_resets_ = 0;
        }
        if (++global_resets_ / kGlobalResetFactor > options_.max_client_resets) {
          BeStrict(now);
        }
        const int64_t limit = now < strict_until_
                                  ? std::max<int64_t>(1, options_.max_client_resets /
                                                             kStrictDivisor)
                                  : options_.max_client_resets;
        if (relay.window_resets > limit &&
            relay.window_resets > relay.window_completed) {
          relay.limit = limit;
          *error_code = kEnhanceYourCalm;
          allowed = false;
        }
        break;
      }
      case kSettingsFrame:
        if ((frame.flags & kAckFlag) != 0) {
          relay.settings_acked = true;
          relay.open_before_ack = {};  // gRPC bounds them from here on.
        }
        break;
      default:
        break;
    }
    if (frame.type == kRstStreamFrame) relay.open_before_ack.erase(frame.stream_id);
    if (allowed && frame.type == kDataFrame && frame.length == 0 &&
        (frame.flags & kEndStreamFlag) != 0) {
      relay.messages.erase(frame.stream_id);
    }
    if (allowed && frame.type == kRstStreamFrame) relay.messages.erase(frame.stream_id);
    return allowed;
  }, [&](const FrameHeader& frame, uint32_t offset, const char* bytes, size_t n) {
    if (frame.type != kDataFrame || frame.stream_id == 0) return true;
    // Padding (RFC 9113, 6.1): a length byte first, that many bytes last.
    uint32_t data_begin = 0;
    uint32_t data_end = frame.length;
    if ((frame.flags & kPaddedFlag) != 0) {
      if (offset == 0) relay.pad_length = static_cast<uint8_t>(bytes[0]);
      data_begin = 1;
      data_end = frame.length >= 1u + relay.pad_length ? frame.length - relay.pad_length : 1;
    }
    const uint32_t from = std::max(offset, data_begin);
    const uint32_t to = std::min<uint32_t>(offset + static_cast<uint32_t>(n), data_end);
    if (from < to && !CheckMessageLengths(relay.messages[frame.stream_id],
                                          bytes + (from - offset), to - from,
                                          &relay.oversized_length)) {
      *error_code = kEnhanceYourCalm;
      allowed = false;
      return false;
    }
    if (offset + n == frame.length && (frame.flags & kEndStreamFlag) != 0) {
      relay.messages.erase(frame.stream_id);
    }
    return true;
  });
  return allowed;
}

bool Http2Guard::CheckMessageLengths(StreamMessages& stream, const char* bytes,
                                     size_t n, uint64_t* oversized) const {
  while (n > 0) {
    if (stream.body_left > 0) {
      const size_t skipped = static_cast<size_t>(std::min<uint64_t>(stream.body_left, n));
      stream.body_left -= skipped;
      bytes += skipped;
      n -= skipped;
      continue;
    }
    const size_t taken = std::min(sizeof(stream.prefix) - stream.prefix_have, n);
    std::memcpy(stream.prefix + stream.prefix_have, bytes, taken);
    stream.prefix_have += taken;
    bytes += taken;
    n -= taken;
    if (stream.prefix_have < sizeof(stream.prefix)) break;
    stream.prefix_have = 0;
    stream.body_left = uint64_t{stream.prefix[1]} << 24 | uint64_t{stream.prefix[2]} << 16 |
                       uint64_t{stream.prefix[3]} << 8 | stream.prefix[4];
    if (stream.body_left > options_.max_declared_message_bytes) {
      *oversized = stream.body_left;
      return false;
    }
  }
  return true;
}

void Http2Guard::InspectServerBytes(Relay& relay, const char* data, size_t size,
                                    absl::Time now) {
  relay.RollWindow(now);
  relay.from_grpc.Feed(data, size, [&](const FrameHeader& frame) {
    // Trailers: the server finished the call.
    if (frame.type == kHeadersFrame && (frame.flags & kEndStreamFlag) != 0 &&
        frame.stream_id != 0) {
      ++relay.window_completed;
      relay.messages.erase(frame.stream_id);
      relay.open_before_ack.erase(frame.stream_id);
    }
    if (frame.type == kRstStreamFrame) {
      relay.messages.erase(frame.stream_id);
      relay.open_before_ack.erase(frame.stream_id);
    }
    return true;
  });
}

void Http2Guard::BeStrict(absl::Time now) {
  if (now >= strict_until_) {
    strict_periods_.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn(
        "HTTP/2 guard: rapid reset under way; for the next {} every "
        "connection may reset at most {} streams a second beyond those the "
        "server completes",
        absl::FormatDuration(kStrictPeriod),
        std::max<int64_t>(1, options_.max_client_resets / kStrictDivisor));
  }
  strict_until_ = now + kStrictPeriod;
}

void Http2Guard::Reject(Relay& relay, uint32_t error_code, absl::Time now,
                        bool* closed) {
  const bool rapid_reset = error_code == kEnhanceYourCalm && relay.oversized_length == 0 &&
                           !relay.too_many_early_streams;
  if (relay.too_many_early_streams) {
    early_stream_closes_.fetch_add(1, std::memory_order_relaxed);
  } else if (relay.oversized_length > 0) {
    oversized_message_closes_.fetch_add(1, std::memory_order_relaxed);
  } else if (rapid_reset) {
    rapid_reset_closes_.fetch_add(1, std::memory_order_relaxed);
  } else {
    settings_timeouts_.fetch_add(1, std::memory_order_relaxed);
  }
  // gRPC sees end of file and frees what the connection holds; nothing
  // more the client sends reaches it.
  close(relay.relay_fd);
  relay.relay_fd = -1;
  relay.to_grpc.Clear();
  // The GOAWAY must not land inside a frame of the server's: it goes
  // after the last whole frame gRPC wrote, dropping the part of a frame
  // read after it, unless some of that part already reached the client.
  const uint64_t boundary = relay.from_grpc.boundary();
  const bool goaway = !relay.client_write_shut && boundary >= relay.sent_to_client;
  Warn(relay, error_code, goaway, now);
  // Its client is likely to be back at once, on a new connection.
  if (rapid_reset) BeStrict(now);
  if (!goaway) {
    CloseRelay(relay.id);
    *closed = true;
    return;
  }
  relay.to_client.Truncate(static_cast<size_t>(boundary - relay.sent_to_client));
  const std::string frame = GoawayFrame(
      relay.last_stream_id, error_code,
      error_code == kEnhanceYourCalm ? "too many stream resets"
                                     : "SETTINGS not acknowledged in time");
  relay.to_client.Append(frame.data(), frame.size());
  goaways_sent_.fetch_add(1, std::memory_order_relaxed);
  BeginClosing(relay, now);
}

void Http2Guard::BeginClosing(Relay& relay, absl::Time now) {
  if (relay.relay_fd >= 0) {
    close(relay.relay_fd);
    relay.relay_fd = -1;
  }
  relay.to_grpc.Clear();
  relay.state = Relay::State::kClosing;
  relay.close_deadline = now + kCloseLinger;
  timers_.push({relay.close_deadline, relay.id});
}

void Http2Guard::CloseRelay(uint64_t id) {
  auto it = relays_.find(id);
  if (it == relays_.end()) return;
  // Closing leaves the epoll set: neither descriptor was duplicated.
  if (it->second->client_fd >= 0) close(it->second->client_fd);
  if (it->second->relay_fd >= 0) close(it->second->relay_fd);
  relays_.erase(it);
  active_.store(static_cast<int64_t>(relays_.size()), std::memory_order_relaxed);
}

void Http2Guard::ExpireTimers(absl::Time now) {
  while (!timers_.empty() && timers_.top().first <= now) {
    const uint64_t id = timers_.top().second;
    timers_.pop();
    auto it = relays_.find(id);
    if (it == relays_.end()) continue;
    Relay& relay = *it->second;
    if (relay.state == Relay::State::kClosing) {
      // The client did not read what was left, or did not hang up.
      if (now >= relay.close_deadline) CloseRelay(id);
    } else if (!relay.settings_acked && now >= relay.settings_deadline) {
      bool closed = false;
      Reject(relay, kSettingsTimeout, now, &closed);
      if (!closed) Pump(id, now);
    }
  }
}

void Http2Guard::Warn(const Relay& relay, uint32_t error_code, bool goaway,
                      absl::Time now) {
  if (now - warn_window_start_ >= absl::Seconds(1)) {
    if (warnings_suppressed_ > 0) {
      spdlog::warn("HTTP/2 guard: {} more connections were closed than logged",
                   warnings_suppressed_);
    }
    warn_window_start_ = now;
    warnings_in_window_ = 0;
    warnings_suppressed_ = 0;
  }
  if (warnings_in_window_ >= kMaxWarningsPerSecond) {
    ++warnings_suppressed_;
    return;
  }
  ++warnings_in_window_;
  const char* how = goaway ? "sent GOAWAY and closed it" : "closed it";
  if (relay.too_many_early_streams) {
    spdlog::warn(
        "HTTP/2 guard: the connection from {} (gRPC's fd:{}) opened more than "
        "{} streams before acknowledging the server's SETTINGS (which carry "
        "that limit; gRPC 1.51 applies it only from the acknowledgement on); "
        "{} (ENHANCE_YOUR_CALM)",
        relay.peer, relay.grpc_fd, options_.max_streams_before_ack, how);
  } else if (relay.oversized_length > 0) {
    spdlog::warn(
        "HTTP/2 guard: the connection from {} (gRPC's fd:{}) began a message "
        "of {} bytes, past {} (gRPC 1.51 would buffer it whole before "
        "refusing it); {} (ENHANCE_YOUR_CALM)",
        relay.peer, relay.grpc_fd, relay.oversized_length,
        options_.max_declared_message_bytes, how);
  } else if (error_code == kEnhanceYourCalm) {
    spdlog::warn(
        "HTTP/2 guard: the connection from {} (gRPC's fd:{}) opened {} "
        "streams and reset {} within a second while the server completed {} "
        "(limit {}): HTTP/2 rapid reset (CVE-2023-44487); {} "
        "(ENHANCE_YOUR_CALM)",
        relay.peer, relay.grpc_fd, relay.window_opened, relay.window_resets,
        relay.window_completed, relay.limit, how);
  } else {
    spdlog::warn(
        "HTTP/2 guard: the connection from {} (gRPC's fd:{}) did not "
        "acknowledge the server's SETTINGS within {}; {} (SETTINGS_TIMEOUT)",
        relay.peer, relay.grpc_fd, absl::FormatDuration(options_.settings_timeout),
        how);
  }
}

}  // namespace routeguide
