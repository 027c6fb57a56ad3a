#ifndef ROUTEGUIDE_TESTS_REDIS_SERVER_H_
#define ROUTEGUIDE_TESTS_REDIS_SERVER_H_

// A real redis-server as a child process, for the tests of the Redis notes
// store: on a free loopback port and a unix socket, in a scratch directory
// of its own, without persistence. Plus a small synchronous RESP client
// (raw sockets, every wait bounded) to look at what the servers stored.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "subprocess.h"

namespace routeguide {
namespace testing {

// One RESP reply.
struct RespValue {
  enum class Type { kSimpleString, kError, kInteger, kBulkString, kNil, kArray };
  Type type = Type::kNil;
  std::string text;  // kSimpleString, kError, kBulkString (binary-safe).
  int64_t integer = 0;
  std::vector<RespValue> elements;  // kArray.

  bool IsError() const { return type == Type::kError; }
  // "+OK", ":3", "$5 bytes", "*2 [...]": for test messages.
  std::string ToString() const;
};

// A blocking connection to Redis on loopback. Each command waits until
// `timeout` (from its start) for the whole reply.
class RedisConnection {
 public:
  static absl::StatusOr<std::unique_ptr<RedisConnection>> Connect(
      int port, absl::Duration timeout = absl::Seconds(5));
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Sends `args` as one command (binary-safe) and reads its reply. A Redis
  // error reply is returned as a RespValue of type kError, not a failed
  // status; the status fails for I/O errors, timeouts and protocol errors.
  absl::StatusOr<RespValue> Command(const std::vector<std::string>& args,
                                    absl::Duration timeout = absl::Seconds(5));

 private:
  explicit RedisConnection(int fd) : fd_(fd) {}
  absl::Status Fill(absl::Time deadline);
  absl::StatusOr<std::string> ReadLine(absl::Time deadline);
  absl::StatusOr<RespValue> ReadValue(absl::Time deadline, int depth);

  int fd_;
  std::string buffer_;  // Received, not yet parsed.
};

// A redis-server child process. Every method that waits is bounded.
// Destroying it SIGKILLs and reaps the child by its PID and removes the
// scratch directory.
class RedisServer {
 public:
  // Starts the binary named by REDIS_SERVER (meson test sets it) on a free
  // port of 127.0.0.1 (retrying with another port when the one picked was
  // taken meanwhile) and waits until it answers PING.
  //
  // With a `password`, Redis requires it (requirepass) and this fixture's
  // own commands send AUTH first.
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(
      absl::Duration timeout = absl::Seconds(10), std::string password = "");

  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  pid_t pid() const;
  // redis://127.0.0.1:PORT
  std::string url() const;
  // The unix socket it also listens on, and unix://<that path>.
  const std::string& socket_path() const { return socket_path_; }
  std::string unix_url() const { return "unix://" + socket_path_; }
  const std::string& directory() const { return directory_; }
  // Its log file so far, for failure messages.
  std::string Log() const;

  // SIGKILL, then reap. The port is closed once this returns.
  absl::Status Kill();
  // SIGSTOP: the process hangs, its sockets stay open (a hung store).
  absl::Status Pause();
  // SIGCONT after Pause.
  absl::Status Resume();
  // Kills it if it runs and starts it again on the same port (and socket),
  // empty, and waits until it answers PING.
  absl::Status Restart(absl::Duration timeout = absl::Seconds(10));

  // One PING on a fresh connection: true for +PONG within `timeout`.
  bool Ping(absl::Duration timeout = absl::Seconds(1)) const;

  // A command on a fresh connection (after AUTH when there is a password).
  absl::StatusOr<RespValue> Command(const std::vector<std::string>& args,
                                    absl::Duration timeout = absl::Seconds(5)) const;

 private:
  RedisServer(std::string binary, std::string directory, std::string password);
  // Starts the child on port_ and waits for PING; on failure the child is
  // killed and the status says why (its log included).
  absl::Status Launch(absl::Duration timeout);

  const std::string binary_;
  const std::string directory_;
  const std::string socket_path_;
  const std::string password_;
  int port_ = 0;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace testing
}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_REDIS_SERVER_H_
