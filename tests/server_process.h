#ifndef ROUTEGUIDE_TESTS_SERVER_PROCESS_H_
#define ROUTEGUIDE_TESTS_SERVER_PROCESS_H_

// The routeguide-server binary as a child process on 127.0.0.1:0, for the
// process tests: start it, read its port from its log, watch its memory.

#include <sys/types.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "sanitizers.h"
#include "subprocess.h"

namespace routeguide {
namespace testing {

// The line the server logs once it serves; it names the port.
inline constexpr char kListeningLine[] = "RouteGuide server listening on";

// The binary named by the environment variable `env_name` (meson test
// sets ROUTEGUIDE_SERVER and the others).
inline std::string BinaryFromEnv(const std::string& env_name) {
  const char* path = std::getenv(env_name.c_str());
  INFO(env_name << " must name a binary (meson test sets it)");
  REQUIRE(path != nullptr);
  REQUIRE(*path != '\0');
  return path;
}

// The server binary, from ROUTEGUIDE_SERVER.
inline std::string ServerPath() { return BinaryFromEnv("ROUTEGUIDE_SERVER"); }

// A started server child process and the port it reported. Destroying it
// SIGKILLs and reaps the child by its PID if it still runs.
struct ServerProcess {
  std::unique_ptr<Subprocess> process;
  int port = 0;

  std::string target() const { return absl::StrCat("127.0.0.1:", port); }
  pid_t pid() const { return process->pid(); }
};

// Starts `argv` (a server listening on 127.0.0.1:0) and waits up to
// `timeout` for its log line containing `listening_text`, which must name
// the port as "(port N)": ours and the benchmark baselines log alike.
inline ServerProcess StartListeningProcess(const std::vector<std::string>& argv,
                                           absl::string_view listening_text,
                                           absl::Duration timeout) {
  INFO("running " << absl::StrJoin(argv, " "));
  auto started = Subprocess::Start(argv);
  INFO(started.status().ToString());
  REQUIRE(started.ok());
  ServerProcess server{*std::move(started)};

  auto line = server.process->WaitForStderrLineContaining(
      listening_text, absl::Now() + timeout);
  INFO(line.status().ToString());
  REQUIRE(line.ok());
  INFO("listening line: " << *line);
  // "... (port N) ...".
  const size_t start = line->find("(port ");
  REQUIRE(start != std::string::npos);
  const size_t end = line->find(')', start);
  REQUIRE(end != std::string::npos);
  REQUIRE(absl::SimpleAtoi(
      absl::string_view(*line).substr(start + 6, end - start - 6),
      &server.port));
  REQUIRE(server.port > 0);
  return server;
}

// Starts the server on 127.0.0.1:0 with two threads (plus `flags`, which
// may override them) and waits up to `timeout` for the log line that says
// it serves.
inline ServerProcess StartServerProcess(
    const std::vector<std::string>& flags = {},
    absl::Duration timeout = absl::Seconds(20)) {
  std::vector<std::string> argv = {ServerPath(), "--address=127.0.0.1:0",
                                   "--threads=2"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  return StartListeningProcess(argv, kListeningLine, timeout);
}

// Whether absolute RSS bounds mean anything in this build. Under
// AddressSanitizer (the server is built alike), freed memory waits in a
// quarantine of up to 256 MiB, shadow memory adds more, and malloc_trim
// does not reach ASan's allocator: tests then check only that memory
// levels off, not how high.
inline constexpr bool kRssBoundsHold = !ROUTEGUIDE_ASAN;

// The resident set size of process `pid` in KiB, from /proc; -1 when it is
// unknown, as for a process that has exited (a zombie has no VmRSS).
inline int64_t ResidentKiB(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (absl::StartsWith(line, "VmRSS:")) {
      int64_t kib = -1;
      return absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::StripSuffix(
                                  absl::StripAsciiWhitespace(line.substr(6)), "kB")),
                              &kib)
                 ? kib
                 : -1;
    }
  }
  return -1;
}

// Whether the child is still running: not reaped, and not a zombie. Reads
// whatever output is waiting (so a chatty child never blocks on a full
// pipe) without waiting for more.
inline bool StillRunning(ServerProcess& server) {
  server.process->Wait(absl::ZeroDuration()).IgnoreError();
  return !server.process->reaped() && ResidentKiB(server.pid()) >= 0;
}

}  // namespace testing
}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_SERVER_PROCESS_H_
