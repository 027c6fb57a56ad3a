// ConnectionAcceptor on loopback with raw sockets: the preface gate, the
// handshake timeout, port sharing, recovery after running out of file
// descriptors (gRPC 1.51's own listener never recovers: CVE-2023-4785), and
// handing connections over through the HTTP/2 guard.

#include "connection_acceptor.h"
#include "listen_sockets.h"

#include <arpa/inet.h>
#include <poll.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "catch2/catch.hpp"
#include "http2_guard.h"
#include "test_util.h"

namespace routeguide {
namespace {

constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// A blocking client socket connected to 127.0.0.1:port; -1 on failure.
int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void Send(int fd, absl::string_view bytes) {
  REQUIRE(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(bytes.size()));
}

// Whether the server closed `fd` (recv sees end of file or a reset) within
// `timeout`.
bool ClosedByServerWithin(int fd, absl::Duration timeout) {
  timeval wait = absl::ToTimeval(timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
  char byte;
  const ssize_t got = recv(fd, &byte, 1, 0);
  return got == 0 || (got < 0 && errno == ECONNRESET);
}

// Collects the descriptors the acceptor hands over, and closes them.
class HandOvers {
 public:
  ~HandOvers() {
    absl::MutexLock lock(&mu_);
    for (int fd : fds_) close(fd);
  }
  std::function<void(int)> Sink() {
    return [this](int fd) {
      absl::MutexLock lock(&mu_);
      fds_.push_back(fd);
    };
  }
  // Waits until `count` were handed over; false at the deadline.
  bool AwaitCount(size_t count, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return fds_.size() >= count; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  int first() {
    absl::MutexLock lock(&mu_);
    return fds_.empty() ? -1 : fds_.front();
  }
  size_t count() {
    absl::MutexLock lock(&mu_);
    return fds_.size();
  }

 private:
  absl::Mutex mu_;
  std::vector<int> fds_ ABSL_GUARDED_BY(mu_);
};

std::unique_ptr<ConnectionAcceptor> ListenOrFail(const AcceptorOptions& options) {
  auto acceptor = ConnectionAcceptor::Listen(options);
  INFO(acceptor.status().ToString());
  REQUIRE(acceptor.ok());
  return *std::move(acceptor);
}

TEST_CASE("Listening addresses parse, and bad ones are refused with a reason",
          "[acceptor]") {
  SECTION("IPv4 with a port") {
    auto parsed = ParseListenAddress("127.0.0.1:50051");
    REQUIRE(parsed.ok());
    CHECK(parsed->host == "127.0.0.1");
    CHECK(parsed->port == 50051);
  }
  SECTION("bracketed IPv6, gRPC's ipv6: prefix") {
    auto parsed = ParseListenAddress("ipv6:[::1]:0");
    REQUIRE(parsed.ok());
    CHECK(parsed->host == "::1");
    CHECK(parsed->port == 0);
  }
  SECTION("every interface") {
    auto parsed = ParseListenAddress("[::]:8080");
    REQUIRE(parsed.ok());
    CHECK(parsed->host == "::");
  }
  SECTION("a unix socket") {
    auto parsed = ParseListenAddress("unix:///tmp/rg.sock");
    REQUIRE(parsed.ok());
    CHECK(parsed->is_unix);
    CHECK(parsed->path == "/tmp/rg.sock");
  }
  SECTION("bad ones") {
    for (const char* bad : {"50051", "::1:50051", "[::1]50051", "host:port",
                            "host:70000", "unix:", "unix-abstract:x"}) {
      CAPTURE(bad);
      auto parsed = ParseListenAddress(bad);
      REQUIRE_FALSE(parsed.ok());
      CHECK(absl::StrContains(parsed.status().message(), bad));
    }
  }
}

TEST_CASE("A connection is handed over once it sent the HTTP/2 preface, and "
          "only then; a silent one is closed at the handshake timeout",
          "[acceptor]") {
  AcceptorOptions options;
  options.address = "127.0.0.1:0";
  // Stretched under AddressSanitizer, so that "at once" below stays
  // shorter than the timeout while the acceptor's wake-ups take longer.
  const absl::Duration timeout = kSanitizerSlowdown * absl::Milliseconds(500);
  options.handshake_timeout = timeout;
  auto acceptor = ListenOrFail(options);
  HandOvers handed;
  acceptor->Start(handed.Sink());
  REQUIRE(acceptor->port() > 0);

  SECTION("the preface in two pieces, then handed over with its address") {
    const int client = Connect(acceptor->port());
    REQUIRE(client >= 0);
    Send(client, absl::string_view(kPreface, 10));
    // Not yet the whole preface: nothing handed over.
    CHECK_FALSE(WaitFor([&] { return handed.count() != 0; }, absl::Milliseconds(100)));
    Send(client, absl::string_view(kPreface + 10, sizeof(kPreface) - 1 - 10));
    CHECK(handed.AwaitCount(1, absl::Seconds(5)));
    sockaddr_in local{};
    socklen_t size = sizeof(local);
    getsockname(client, reinterpret_cast<sockaddr*>(&local), &size);
    CHECK(acceptor->peers().Resolve(absl::StrCat("fd:", handed.first())) ==
          absl::StrCat("ipv4:127.0.0.1:", ntohs(local.sin_port)));
    CHECK(acceptor->stats().handed_over == 1);
    close(client);
  }
  SECTION("silent: closed after the timeout, not before") {
    const absl::Time start = absl::Now();
    const int client = Connect(acceptor->port());
    REQUIRE(client >= 0);
    CHECK(ClosedByServerWithin(client, timeout + kSanitizerSlowdown * absl::Seconds(1)));
    const absl::Duration waited = absl::Now() - start;
    CHECK(waited >= timeout - absl::Milliseconds(50));
    CHECK(waited < timeout + kSanitizerSlowdown * absl::Seconds(1));
    CHECK(acceptor->stats().handshake_timeouts == 1);
    CHECK(handed.count() == 0);
    close(client);
  }
  SECTION("not HTTP/2: closed at once") {
    const int client = Connect(acceptor->port());
    REQUIRE(client >= 0);
    Send(client, "GET / HTTP/1.1\r\n\r\n");
    CHECK(ClosedByServerWithin(client, kSanitizerSlowdown * absl::Milliseconds(400)));
    CHECK(handed.count() == 0);
    close(client);
  }
  acceptor->Stop();
}

TEST_CASE("The access log's peer comes from the accepted socket", "[acceptor]") {
  PeerDirectory peers;
  peers.Record(17, "ipv4:127.0.0.1:5555");
  CHECK(peers.Resolve("fd:17") == "ipv4:127.0.0.1:5555");
  CHECK(peers.Resolve("fd:18") == "fd:18");
  CHECK(peers.Resolve("ipv6:[::1]:1") == "ipv6:[::1]:1");
  peers.Record(17, "ipv4:127.0.0.1:6666");  // The number was reused.
  CHECK(peers.Resolve("fd:17") == "ipv4:127.0.0.1:6666");
}
// Reads exactly `size` bytes from non-blocking `fd` within `timeout`; what
// arrived when it ended early (end of file, an error, the deadline).
std::string ReadExactly(int fd, size_t size, absl::Duration timeout) {
  std::string bytes;
  const absl::Time deadline = absl::Now() + timeout;
  while (bytes.size() < size) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    pollfd readable{fd, POLLIN, 0};
    if (poll(&readable, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) {
      continue;
    }
    char chunk[4096];
    const ssize_t got = recv(fd, chunk, std::min(sizeof(chunk), size - bytes.size()), 0);
    if (got <= 0) {
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      break;
    }
    bytes.append(chunk, static_cast<size_t>(got));
  }
  return bytes;
}

TEST_CASE("With an HTTP/2 guard, what is handed over is the guard's end of "
          "a socketpair, named after the client, relayed both ways",
          "[acceptor][guard]") {
  auto guard = Http2Guard::Start(Http2GuardOptions{});
  REQUIRE(guard.ok());
  AcceptorOptions options;
  options.address = "127.0.0.1:0";
  auto acceptor = ListenOrFail(options);
  HandOvers handed;
  acceptor->Start(handed.Sink(), guard->get());

  const int client = Connect(acceptor->port());
  REQUIRE(client >= 0);
  // The preface and an empty SETTINGS frame.
  const std::string settings("\0\0\0\x04\0\0\0\0\0", 9);
  Send(client, absl::StrCat(absl::string_view(kPreface, sizeof(kPreface) - 1), settings));
  REQUIRE(handed.AwaitCount(1, absl::Seconds(5)));
  const int grpc_end = handed.first();
  CHECK(grpc_end != client);
  sockaddr_storage kind{};
  socklen_t kind_size = sizeof(kind);
  REQUIRE(getsockname(grpc_end, reinterpret_cast<sockaddr*>(&kind), &kind_size) == 0);
  CHECK(kind.ss_family == AF_UNIX);
  sockaddr_in local{};
  socklen_t size = sizeof(local);
  getsockname(client, reinterpret_cast<sockaddr*>(&local), &size);
  CHECK(acceptor->peers().Resolve(absl::StrCat("fd:", grpc_end)) ==
        absl::StrCat("ipv4:127.0.0.1:", ntohs(local.sin_port)));

  // Client to gRPC: the preface (which the acceptor only peeked at) and
  // the frame after it, unchanged.
  CHECK(ReadExactly(grpc_end, sizeof(kPreface) - 1 + settings.size(), absl::Seconds(5)) ==
        absl::StrCat(absl::string_view(kPreface, sizeof(kPreface) - 1), settings));
  // gRPC to the client.
  Send(grpc_end, settings);
  timeval wait = absl::ToTimeval(absl::Seconds(5));
  setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
  char back[9] = {};
  CHECK(recv(client, back, sizeof(back), MSG_WAITALL) == 9);
  CHECK(std::string(back, 9) == settings);
  // The client's end of file reaches gRPC; gRPC's close reaches the client.
  shutdown(client, SHUT_WR);
  CHECK(ReadExactly(grpc_end, 1, absl::Seconds(5)).empty());
  CHECK(guard->get()->stats().relayed == 1);
  CHECK(guard->get()->stats().active == 1);
  shutdown(grpc_end, SHUT_RDWR);
  CHECK(ClosedByServerWithin(client, absl::Seconds(5)));
  close(client);
  acceptor->Stop();
  (*guard)->Stop();
  CHECK(guard->get()->stats().active == 0);
}

TEST_CASE("A port in use is an error unless every listener shares it",
          "[acceptor]") {
  AcceptorOptions first;
  first.address = "127.0.0.1:0";
  SECTION("without reuse_port") {
    auto one = ListenOrFail(first);
    AcceptorOptions second = first;
    second.address = absl::StrCat("127.0.0.1:", one->port());
    auto two = ConnectionAcceptor::Listen(second);
    REQUIRE_FALSE(two.ok());
    CHECK(absl::StrContains(two.status().message(), "in use"));
    CHECK(absl::StrContains(two.status().message(), std::to_string(one->port())));
    CHECK(absl::StrContains(two.status().message(), "--reuseport"));
  }
  SECTION("with reuse_port on both") {
    first.reuse_port = true;
    auto one = ListenOrFail(first);
    AcceptorOptions second = first;
    second.address = absl::StrCat("127.0.0.1:", one->port());
    auto two = ConnectionAcceptor::Listen(second);
    INFO(two.status().ToString());
    CHECK(two.ok());
  }
}

TEST_CASE("Out of file descriptors, the acceptor sheds and backs off, and "
          "accepts again once descriptors are free",
          "[acceptor][fd]") {
  AcceptorOptions options;
  options.address = "127.0.0.1:0";
  options.handshake_timeout = absl::Seconds(60);  // Silent ones stay.
  auto acceptor = ListenOrFail(options);
  HandOvers handed;
  acceptor->Start(handed.Sink());

  // Leave this process 40 descriptors: the clients take some, the
  // acceptor's pending connections the rest, until accept4 gets EMFILE.
  rlimit saved{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
  // New descriptors take the lowest free number: fill the holes below the
  // highest open one, so that exactly 40 are left above.
  int highest = 0;
  for (int fd = 0; fd < 65536; ++fd) {
    if (fcntl(fd, F_GETFD) != -1) highest = fd;
  }
  std::vector<int> fillers;
  for (;;) {
    const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    fillers.push_back(fd);
    if (fd >= highest) break;
  }
  rlimit lowered = saved;
  lowered.rlim_cur = static_cast<rlim_t>(fillers.back() + 1 + 40);
  REQUIRE(setrlimit(RLIMIT_NOFILE, &lowered) == 0);

  std::vector<int> clients;
  for (int i = 0; i < 30; ++i) {
    const int fd = Connect(acceptor->port());
    if (fd >= 0) clients.push_back(fd);
  }
  // The acceptor must have run out: wait for its first shed connection.
  WaitFor([&] { return acceptor->stats().shed != 0; }, absl::Seconds(10),
          absl::Milliseconds(10));
  const AcceptorStats during = acceptor->stats();
  for (int fd : clients) close(fd);
  for (int fd : fillers) close(fd);
  REQUIRE(setrlimit(RLIMIT_NOFILE, &saved) == 0);
  INFO("accepted " << during.accepted << ", shed " << during.shed << ", pending "
                   << during.pending);
  REQUIRE(during.shed > 0);

  // Descriptors are free again: a new client gets through within 5 s.
  const int client = Connect(acceptor->port());
  REQUIRE(client >= 0);
  Send(client, kPreface);
  CHECK(handed.AwaitCount(1, absl::Seconds(5)));
  close(client);
  acceptor->Stop();
}

}  // namespace
}  // namespace routeguide
