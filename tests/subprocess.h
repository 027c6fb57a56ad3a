#ifndef ROUTEGUIDE_TESTS_SUBPROCESS_H_
#define ROUTEGUIDE_TESTS_SUBPROCESS_H_

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace routeguide {
namespace testing {

// How a child process ended.
struct ExitStatus {
  // True when the child called exit (see `code`); false when a signal
  // killed it (see `signal`).
  bool exited = false;
  int code = -1;
  int signal = 0;

  bool Exited(int expected_code) const {
    return exited && code == expected_code;
  }
  // "exit code 2" or "killed by signal 9 (Killed)", for test messages.
  std::string ToString() const;
};

// A child process started from an argv, with the test's environment, stdin
// from /dev/null and stdout and stderr each on a pipe of their own.
//
// Output is read only while a Wait* method runs; each reads both pipes with
// poll(), so a child blocked on a full pipe cannot deadlock the test. All
// waiting is bounded by a deadline. The destructor SIGKILLs the child if it
// has not been reaped yet and reaps it by its PID, so no test path leaves a
// process behind.
//
// Not thread-safe: one thread (the test's) owns and drives it.
class Subprocess {
 public:
  enum class Stream { kStdout = 0, kStderr = 1 };

  // Starts argv[0] (a path; PATH is not searched) with `argv`.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      const std::vector<std::string>& argv);

  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  bool reaped() const { return reaped_; }

  // Reads output until a line of `stream` not returned before satisfies
  // `matches`, and returns that line (without its newline). Lines are
  // examined in order; those that do not match are passed over for good.
  // DEADLINE_EXCEEDED when `deadline` passes first; FAILED_PRECONDITION
  // when the stream ends (the child closed it or exited) first.
  absl::StatusOr<std::string> WaitForLine(
      Stream stream, const std::function<bool(absl::string_view)>& matches,
      absl::Time deadline);

  // WaitForLine for a line of stderr that contains `text`.
  absl::StatusOr<std::string> WaitForStderrLineContaining(
      absl::string_view text, absl::Time deadline);

  // Sends `signal_number` to the child; FAILED_PRECONDITION once reaped.
  absl::Status Signal(int signal_number);

  // Reads output until the child has exited and both pipes are at end of
  // file, and returns how it ended. DEADLINE_EXCEEDED if it is still
  // running (or a pipe is still open) after `timeout`; it is then left
  // running, for the destructor or a later call.
  absl::StatusOr<ExitStatus> Wait(absl::Duration timeout);

  // Everything read from each stream so far.
  const std::string& stdout_text() const { return Text(Stream::kStdout); }
  const std::string& stderr_text() const { return Text(Stream::kStderr); }

 private:
  struct Pipe {
    int fd = -1;         // Read end; -1 once at end of file.
    std::string text;    // All read so far.
    size_t scanned = 0;  // Offset of the first line WaitForLine has not seen.
  };

  Subprocess(pid_t pid, int pidfd, int stdout_fd, int stderr_fd);

  const std::string& Text(Stream stream) const {
    return pipes_[static_cast<size_t>(stream)].text;
  }
  // Reaps the child if it has exited, without blocking; true once reaped.
  bool TryReap();
  // Waits up to `deadline` for output or the child's exit and handles what
  // happened. False when nothing can happen any more (pipes closed, child
  // reaped) or the deadline has passed.
  bool PumpOnce(absl::Time deadline);

  const pid_t pid_;
  int pidfd_;  // -1 when the kernel has no pidfd_open; Wait then polls.
  std::array<Pipe, 2> pipes_;
  bool reaped_ = false;
  ExitStatus exit_status_;
};

// What Run saw of a child that ran to its end.
struct RunResult {
  ExitStatus exit;
  std::string stdout_text;
  std::string stderr_text;
};

// Starts `argv`, waits up to `timeout` for it to end and returns its exit
// status and output. On timeout the child is killed and DEADLINE_EXCEEDED
// returned, with the output so far in the message.
absl::StatusOr<RunResult> Run(const std::vector<std::string>& argv,
                              absl::Duration timeout);

}  // namespace testing
}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_SUBPROCESS_H_
