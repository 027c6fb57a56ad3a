#ifndef ROUTEGUIDE_SERVER_HTTP2_RELAY_H_
#define ROUTEGUIDE_SERVER_HTTP2_RELAY_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "http2_policy.h"

// The HTTP/2 guard's relay I/O: one relayed connection's sockets and
// buffers, and the non-blocking writes that move bytes between them.
namespace routeguide {

// Bytes waiting to be written, oldest first. Its storage is freed whenever
// it empties: most writes complete at once, so an idle connection holds no
// buffer at all.
class ByteQueue {
 public:
  size_t size() const { return bytes_.size() - head_; }
  bool empty() const { return size() == 0; }
  const char* data() const { return bytes_.data() + head_; }
  void Append(const char* data, size_t size);
  void Consume(size_t size);
  // Keeps only the first `size` bytes.
  void Truncate(size_t size);
  void Clear();

 private:
  std::string bytes_;
  size_t head_ = 0;
};

// Writes what `queue` holds to `fd` while the socket takes it. False on an
// error other than a full socket (errno says which).
bool Flush(int fd, bool* writable, ByteQueue& queue, bool* moved,
           uint64_t* written = nullptr);

// Writes `data` to `fd` behind whatever `queue` holds, as far as the
// socket takes it, and queues the rest. False on an error.
bool Forward(int fd, bool* writable, ByteQueue& queue, const char* data,
             size_t size, bool* moved, uint64_t* written = nullptr);

// Takes `size` bytes, already read with MSG_PEEK, out of `fd`, using
// `scratch` (at least `size` bytes) as the place to drop them. False on an
// error or end of file (errno says which, or is 0).
bool TakePeeked(int fd, char* scratch, size_t size);

// One connection the guard relays: the client's socket and our end of
// gRPC's socketpair, what waits to be written each way, and what the
// policy knows about its HTTP/2. Loop thread only.
struct Http2Relay {
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
  bool queued = false;  // In the guard's ready list.

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

  ByteQueue to_grpc;
  ByteQueue to_client;
  uint64_t sent_to_client = 0;
  // to_grpc's and to_client's bytes as last added to the guard's count.
  size_t held_counted = 0;
  absl::Time close_deadline;

  Http2ConnectionState http2;
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_HTTP2_RELAY_H_
