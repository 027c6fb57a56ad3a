#include "redis_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace routeguide {
namespace testing {
namespace {

constexpr int kMaxDepth = 8;        // Nested arrays; ours never nest.
constexpr int kStartAttempts = 5;  // Ports tried before giving up.
constexpr char kSetpriv[] = "/usr/bin/setpriv";

absl::Status ErrnoStatus(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

int MillisUntil(absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
}

// A port of 127.0.0.1 that was free a moment ago: bind to port 0, read the
// port the kernel chose, close. Another process may take it before Redis
// binds it; Start then tries again.
absl::StatusOr<int> PickFreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const absl::Status status = ErrnoStatus("bind to 127.0.0.1:0");
    close(fd);
    return status;
  }
  close(fd);
  return ntohs(address.sin_port);
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

}  // namespace

std::string RespValue::ToString() const {
  switch (type) {
    case Type::kSimpleString: return "+" + text;
    case Type::kError: return "-" + text;
    case Type::kInteger: return absl::StrCat(":", integer);
    case Type::kBulkString: return absl::StrCat("$", text.size(), " bytes");
    case Type::kNil: return "(nil)";
    case Type::kArray: {
      std::string out = absl::StrCat("*", elements.size(), " [");
      for (size_t i = 0; i < elements.size(); ++i) {
        absl::StrAppend(&out, i == 0 ? "" : ", ", elements[i].ToString());
      }
      return out + "]";
    }
  }
  return "?";
}

absl::StatusOr<std::unique_ptr<RedisConnection>> RedisConnection::Connect(
    int port, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return ErrnoStatus("socket");
  std::unique_ptr<RedisConnection> connection(new RedisConnection(fd));
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    if (errno != EINPROGRESS) return ErrnoStatus(absl::StrCat("connect to port ", port));
    pollfd p{fd, POLLOUT, 0};
    const int ready = poll(&p, 1, MillisUntil(deadline));
    if (ready == 0) return absl::DeadlineExceededError("connect: timeout");
    if (ready < 0) return ErrnoStatus("poll");
    int error = 0;
    socklen_t length = sizeof(error);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) {
      errno = error;
      return ErrnoStatus(absl::StrCat("connect to port ", port));
    }
  }
  return connection;
}

RedisConnection::~RedisConnection() { close(fd_); }

absl::Status RedisConnection::Fill(absl::Time deadline) {
  char chunk[16384];
  while (true) {
    const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      return absl::OkStatus();
    }
    if (n == 0) return absl::UnavailableError("connection closed by Redis");
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return ErrnoStatus("recv");
    pollfd p{fd_, POLLIN, 0};
    const int ready = poll(&p, 1, MillisUntil(deadline));
    if (ready == 0) return absl::DeadlineExceededError("no reply from Redis in time");
    if (ready < 0 && errno != EINTR) return ErrnoStatus("poll");
  }
}

absl::StatusOr<std::string> RedisConnection::ReadLine(absl::Time deadline) {
  while (true) {
    const size_t end = buffer_.find("\r\n");
    if (end != std::string::npos) {
      std::string line = buffer_.substr(0, end);
      buffer_.erase(0, end + 2);
      return line;
    }
    if (absl::Status status = Fill(deadline); !status.ok()) return status;
  }
}

absl::StatusOr<RespValue> RedisConnection::ReadValue(absl::Time deadline, int depth) {
  if (depth > kMaxDepth) return absl::InternalError("RESP: nested too deep");
  auto line = ReadLine(deadline);
  if (!line.ok()) return line.status();
  if (line->empty()) return absl::InternalError("RESP: empty line");
  RespValue value;
  const char kind = (*line)[0];
  const std::string rest = line->substr(1);
  int64_t number = 0;
  switch (kind) {
    case '+':
      value.type = RespValue::Type::kSimpleString;
      value.text = rest;
      return value;
    case '-':
      value.type = RespValue::Type::kError;
      value.text = rest;
      return value;
    case ':':
      if (!absl::SimpleAtoi(rest, &number)) {
        return absl::InternalError("RESP: bad integer " + rest);
      }
      value.type = RespValue::Type::kInteger;
      value.integer = number;
      return value;
    case '$': {
      if (!absl::SimpleAtoi(rest, &number)) {
        return absl::InternalError("RESP: bad length " + rest);
      }
      if (number < 0) return value;  // kNil.
      const size_t needed = static_cast<size_t>(number) + 2;
      while (buffer_.size() < needed) {
        if (absl::Status status = Fill(deadline); !status.ok()) return status;
      }
      value.type = RespValue::Type::kBulkString;
      value.text = buffer_.substr(0, static_cast<size_t>(number));
      buffer_.erase(0, needed);
      return value;
    }
    case '*': {
      if (!absl::SimpleAtoi(rest, &number)) {
        return absl::InternalError("RESP: bad count " + rest);
      }
      if (number < 0) return value;  // kNil.
      value.type = RespValue::Type::kArray;
      for (int64_t i = 0; i < number; ++i) {
        auto element = ReadValue(deadline, depth + 1);
        if (!element.ok()) return element.status();
        value.elements.push_back(*std::move(element));
      }
      return value;
    }
    default:
      return absl::InternalError("RESP: unknown reply type in " + *line);
  }
}

absl::StatusOr<RespValue> RedisConnection::Command(
    const std::vector<std::string>& args, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string request = absl::StrCat("*", args.size(), "\r\n");
  for (const std::string& arg : args) {
    absl::StrAppend(&request, "$", arg.size(), "\r\n", arg, "\r\n");
  }
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n =
        send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return ErrnoStatus("send");
    pollfd p{fd_, POLLOUT, 0};
    const int ready = poll(&p, 1, MillisUntil(deadline));
    if (ready == 0) return absl::DeadlineExceededError("send to Redis: timeout");
    if (ready < 0 && errno != EINTR) return ErrnoStatus("poll");
  }
  return ReadValue(deadline, 0);
}

RedisServer::RedisServer(std::string binary, std::string directory,
                         std::string password)
    : binary_(std::move(binary)),
      directory_(std::move(directory)),
      socket_path_(directory_ + "/redis.sock"),
      password_(std::move(password)) {}

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start(
    absl::Duration timeout, std::string password) {
  const char* binary = std::getenv("REDIS_SERVER");
  if (binary == nullptr || *binary == '\0') {
    return absl::FailedPreconditionError(
        "REDIS_SERVER must name the redis-server binary (meson test sets it)");
  }
  const char* tmpdir = std::getenv("TMPDIR");
  std::string pattern = absl::StrCat(
      tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp", "/routeguide-redis-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) return ErrnoStatus("mkdtemp " + pattern);
  std::unique_ptr<RedisServer> server(
      new RedisServer(binary, pattern, std::move(password)));

  absl::Status last;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    auto port = PickFreePort();
    if (!port.ok()) return port.status();
    server->port_ = *port;
    last = server->Launch(timeout);
    if (last.ok()) return server;
    // Only a port taken between our probe and Redis's bind is worth another try.
    if (!absl::StrContains(last.message(), "in use")) break;
  }
  return last;
}

RedisServer::~RedisServer() {
  process_.reset();  // SIGKILL and reap by PID.
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
}

pid_t RedisServer::pid() const { return process_ != nullptr ? process_->pid() : -1; }

std::string RedisServer::url() const { return absl::StrCat("redis://127.0.0.1:", port_); }

std::string RedisServer::Log() const { return ReadWholeFile(directory_ + "/redis.log"); }

absl::Status RedisServer::Launch(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<std::string> argv;
  // Redis dies with the test (the thread that started it), even when the
  // test is killed or aborts before any destructor runs: util-linux's
  // setpriv sets the parent-death signal and execs redis-server in place,
  // so the PID stays Redis's own.
  if (access(kSetpriv, X_OK) == 0) argv = {kSetpriv, "--pdeathsig", "KILL"};
  const std::vector<std::string> redis_argv = {
      binary_, "--port", absl::StrCat(port_), "--bind", "127.0.0.1",
      "--unixsocket", socket_path_, "--unixsocketperm", "700",
      "--save", "", "--appendonly", "no", "--dir", directory_,
      "--logfile", directory_ + "/redis.log", "--daemonize", "no",
      "--databases", "16"};
  argv.insert(argv.end(), redis_argv.begin(), redis_argv.end());
  if (!password_.empty()) {
    argv.push_back("--requirepass");
    argv.push_back(password_);
  }
  auto started = Subprocess::Start(argv);
  if (!started.ok()) return started.status();
  process_ = *std::move(started);
  while (true) {
    if (Ping(absl::Milliseconds(200))) return absl::OkStatus();
    // Gone already (a port taken, a bad flag): say why.
    auto exit = process_->Wait(absl::ZeroDuration());
    if (exit.ok()) {
      process_.reset();
      return absl::UnavailableError(absl::StrCat(
          "redis-server on port ", port_, " ended (", exit->ToString(),
          ") before answering PING; its log:\n", Log()));
    }
    if (absl::Now() > deadline) {
      process_.reset();
      return absl::DeadlineExceededError(absl::StrCat(
          "redis-server on port ", port_, " did not answer PING in ",
          absl::FormatDuration(timeout), "; its log:\n", Log()));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
}

absl::Status RedisServer::Kill() {
  if (process_ == nullptr) return absl::FailedPreconditionError("not running");
  if (absl::Status status = process_->Signal(SIGKILL); !status.ok()) return status;
  auto exit = process_->Wait(absl::Seconds(10));
  if (!exit.ok()) return exit.status();
  process_.reset();
  return absl::OkStatus();
}

absl::Status RedisServer::Pause() {
  if (process_ == nullptr) return absl::FailedPreconditionError("not running");
  return process_->Signal(SIGSTOP);
}

absl::Status RedisServer::Resume() {
  if (process_ == nullptr) return absl::FailedPreconditionError("not running");
  return process_->Signal(SIGCONT);
}

absl::Status RedisServer::Restart(absl::Duration timeout) {
  if (process_ != nullptr) {
    if (absl::Status status = Kill(); !status.ok()) return status;
  }
  return Launch(timeout);
}

bool RedisServer::Ping(absl::Duration timeout) const {
  auto reply = Command({"PING"}, timeout);
  return reply.ok() && reply->type == RespValue::Type::kSimpleString &&
         reply->text == "PONG";
}

absl::StatusOr<RespValue> RedisServer::Command(const std::vector<std::string>& args,
                                               absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  auto connection = RedisConnection::Connect(port_, timeout);
  if (!connection.ok()) return connection.status();
  if (!password_.empty()) {
    auto auth = (*connection)->Command({"AUTH", password_}, deadline - absl::Now());
    if (!auth.ok()) return auth.status();
    if (auth->IsError()) return absl::PermissionDeniedError("AUTH: " + auth->text);
  }
  return (*connection)->Command(args, deadline - absl::Now());
}

}  // namespace testing
}  // namespace routeguide
