#include "subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

extern char** environ;

namespace routeguide {
namespace testing {
namespace {

// Longest a single poll() may block; a longer wait just loops.
constexpr absl::Duration kMaxPollSlice = absl::Seconds(1);
// Without a pidfd, how often to look for the child's exit once its pipes
// are closed.
constexpr absl::Duration kReapTick = absl::Milliseconds(5);

std::string ErrnoText(int error) {
  return absl::StrCat(std::strerror(error), " (errno ", error, ")");
}

void CloseIfOpen(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// A pidfd for `pid`, readable once the child exits; -1 if unsupported.
int OpenPidFd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

ExitStatus Decode(int wait_status) {
  ExitStatus status;
  if (WIFEXITED(wait_status)) {
    status.exited = true;
    status.code = WEXITSTATUS(wait_status);
  } else if (WIFSIGNALED(wait_status)) {
    status.signal = WTERMSIG(wait_status);
  }
  return status;
}

// Owns spawn attributes and file actions until the spawn is done.
class SpawnSetup {
 public:
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions_);
    posix_spawnattr_init(&attr_);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions_);
    posix_spawnattr_destroy(&attr_);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  // stdin from /dev/null, stdout and stderr to the pipes' write ends. The
  // pipes are close-on-exec, so only these copies reach the child. The
  // child starts with no signal blocked and the stop signals at their
  // defaults, whatever the test process has done with them.
  int Configure(int stdout_fd, int stderr_fd) {
    int rc = posix_spawn_file_actions_addopen(&actions_, STDIN_FILENO,
                                              "/dev/null", O_RDONLY, 0);
    if (rc == 0) {
      rc =
          posix_spawn_file_actions_adddup2(&actions_, stdout_fd, STDOUT_FILENO);
    }
    if (rc == 0) {
      rc =
          posix_spawn_file_actions_adddup2(&actions_, stderr_fd, STDERR_FILENO);
    }
    sigset_t none;
    sigemptyset(&none);
    sigset_t defaults;
    sigemptyset(&defaults);
    for (int signal_number : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT}) {
      sigaddset(&defaults, signal_number);
    }
    if (rc == 0) rc = posix_spawnattr_setsigmask(&attr_, &none);
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr_, &defaults);
    if (rc == 0) {
      rc = posix_spawnattr_setflags(
          &attr_, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    }
    return rc;
  }

  const posix_spawn_file_actions_t* actions() const { return &actions_; }
  const posix_spawnattr_t* attr() const { return &attr_; }

 private:
  posix_spawn_file_actions_t actions_;
  posix_spawnattr_t attr_;
};

}  // namespace

std::string ExitStatus::ToString() const {
  if (exited) return absl::StrCat("exit code ", code);
  if (signal != 0) return absl::StrCat("killed by signal ", signal);
  return "not ended";
}

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(
    const std::vector<std::string>& argv) {
  if (argv.empty()) return absl::InvalidArgumentError("empty argv");
  int stdout_pipe[2];
  int stderr_pipe[2];
  if (pipe2(stdout_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", ErrnoText(errno)));
  }
  if (pipe2(stderr_pipe, O_CLOEXEC) != 0) {
    const int error = errno;
    close(stdout_pipe[0]);
    close(stdout_pipe[1]);
    return absl::InternalError(absl::StrCat("pipe2: ", ErrnoText(error)));
  }

  std::vector<char*> args;
  for (const std::string& arg : argv) {
    args.push_back(const_cast<char*>(arg.c_str()));
  }
  args.push_back(nullptr);

  pid_t pid = -1;
  int rc = 0;
  {
    SpawnSetup setup;
    rc = setup.Configure(stdout_pipe[1], stderr_pipe[1]);
    if (rc == 0) {
      rc = posix_spawn(&pid, args[0], setup.actions(), setup.attr(),
                       args.data(), environ);
    }
  }
  close(stdout_pipe[1]);
  close(stderr_pipe[1]);
  if (rc != 0) {
    close(stdout_pipe[0]);
    close(stderr_pipe[0]);
    return absl::InternalError(
        absl::StrCat("cannot start ", argv[0], ": ", ErrnoText(rc)));
  }
  for (int fd : {stdout_pipe[0], stderr_pipe[0]}) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  return std::unique_ptr<Subprocess>(
      new Subprocess(pid, OpenPidFd(pid), stdout_pipe[0], stderr_pipe[0]));
}

Subprocess::Subprocess(pid_t pid, int pidfd, int stdout_fd, int stderr_fd)
    : pid_(pid), pidfd_(pidfd) {
  pipes_[static_cast<size_t>(Stream::kStdout)].fd = stdout_fd;
  pipes_[static_cast<size_t>(Stream::kStderr)].fd = stderr_fd;
}

Subprocess::~Subprocess() {
  if (!reaped_) {
    kill(pid_, SIGKILL);
    int wait_status = 0;
    while (waitpid(pid_, &wait_status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
  }
  CloseIfOpen(pidfd_);
  for (Pipe& pipe : pipes_) CloseIfOpen(pipe.fd);
}

bool Subprocess::TryReap() {
  if (reaped_) return true;
  int wait_status = 0;
  pid_t rc;
  do {
    rc = waitpid(pid_, &wait_status, WNOHANG);
  } while (rc < 0 && errno == EINTR);
  if (rc == pid_) {
    reaped_ = true;
    exit_status_ = Decode(wait_status);
    CloseIfOpen(pidfd_);
  } else if (rc < 0) {
    // ECHILD: someone else reaped it; nothing is left to wait for.
    reaped_ = true;
    CloseIfOpen(pidfd_);
  }
  return reaped_;
}

bool Subprocess::PumpOnce(absl::Time deadline) {
  std::array<pollfd, 3> fds{};
  std::array<Pipe*, 3> owners{};
  nfds_t count = 0;
  for (Pipe& pipe : pipes_) {
    if (pipe.fd < 0) continue;
    fds[count] = {pipe.fd, POLLIN, 0};
    owners[count] = &pipe;
    ++count;
  }
  if (!reaped_ && pidfd_ >= 0) {
    fds[count] = {pidfd_, POLLIN, 0};
    ++count;
  }
  const bool tick_for_exit = !reaped_ && pidfd_ < 0;
  if (count == 0 && !tick_for_exit) return false;  // Nothing can happen.

  const absl::Duration remaining = deadline - absl::Now();
  const bool last_round = remaining <= absl::ZeroDuration();
  absl::Duration slice = std::min(remaining, kMaxPollSlice);
  if (tick_for_exit) slice = std::min(slice, kReapTick);
  const int timeout_ms = last_round
                             ? 0
                             : static_cast<int>(absl::ToInt64Milliseconds(
                                   absl::Ceil(slice, absl::Milliseconds(1))));

  const int ready = poll(fds.data(), count, timeout_ms);
  if (ready < 0 && errno != EINTR) return false;
  for (nfds_t i = 0; ready > 0 && i < count; ++i) {
    if (fds[i].revents == 0) continue;
    if (owners[i] == nullptr) {  // The pidfd: the child has exited.
      TryReap();
      continue;
    }
    Pipe& pipe = *owners[i];
    char buffer[16384];
    const ssize_t n = read(pipe.fd, buffer, sizeof(buffer));
    if (n > 0) {
      pipe.text.append(buffer, static_cast<size_t>(n));
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      CloseIfOpen(pipe.fd);  // End of file (or a broken pipe).
    }
  }
  if (tick_for_exit) TryReap();
  return !last_round;
}

absl::StatusOr<std::string> Subprocess::WaitForLine(
    Stream stream, const std::function<bool(absl::string_view)>& matches,
    absl::Time deadline) {
  Pipe& pipe = pipes_[static_cast<size_t>(stream)];
  const char* name = stream == Stream::kStdout ? "stdout" : "stderr";
  bool expired = false;
  for (;;) {
    for (size_t newline = pipe.text.find('\n', pipe.scanned);
         newline != std::string::npos;
         newline = pipe.text.find('\n', pipe.scanned)) {
      std::string line = pipe.text.substr(pipe.scanned, newline - pipe.scanned);
      pipe.scanned = newline + 1;
      if (matches(line)) return line;
    }
    if (pipe.fd < 0) {
      // At end of file an unterminated last line still counts.
      if (pipe.scanned < pipe.text.size()) {
        std::string line = pipe.text.substr(pipe.scanned);
        pipe.scanned = pipe.text.size();
        if (matches(line)) return line;
      }
      return absl::FailedPreconditionError(absl::StrCat(
          name, " ended before a matching line; it had:\n", pipe.text));
    }
    if (expired) {
      return absl::DeadlineExceededError(
          absl::StrCat("no matching line on ", name,
                       " before the deadline; it had:\n", pipe.text));
    }
    expired = !PumpOnce(deadline);
  }
}

absl::StatusOr<std::string> Subprocess::WaitForStderrLineContaining(
    absl::string_view text, absl::Time deadline) {
  return WaitForLine(
      Stream::kStderr,
      [text](absl::string_view line) { return absl::StrContains(line, text); },
      deadline);
}

absl::Status Subprocess::Signal(int signal_number) {
  if (reaped_) {
    return absl::FailedPreconditionError(
        absl::StrCat("process ", pid_, " has already been reaped"));
  }
  // The PID cannot have been reused: the child is not reaped yet.
  if (kill(pid_, signal_number) != 0) {
    return absl::InternalError(absl::StrCat("kill(", pid_, ", ", signal_number,
                                            "): ", ErrnoText(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<ExitStatus> Subprocess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  bool expired = false;
  for (;;) {
    const bool pipes_closed = std::all_of(
        pipes_.begin(), pipes_.end(), [](const Pipe& p) { return p.fd < 0; });
    if (reaped_ && pipes_closed) return exit_status_;
    if (expired) {
      return absl::DeadlineExceededError(absl::StrCat(
          "process ", pid_,
          reaped_ ? " exited but left a pipe open" : " still running",
          " after ", absl::FormatDuration(timeout), "; stderr so far:\n",
          stderr_text()));
    }
    expired = !PumpOnce(deadline);
  }
}

absl::StatusOr<RunResult> Run(const std::vector<std::string>& argv,
                              absl::Duration timeout) {
  auto child = Subprocess::Start(argv);
  if (!child.ok()) return child.status();
  auto exit = (*child)->Wait(timeout);
  if (!exit.ok()) {
    return absl::DeadlineExceededError(absl::StrCat(exit.status().message(),
                                                    "\nstdout so far:\n",
                                                    (*child)->stdout_text()));
  }
  return RunResult{*exit, (*child)->stdout_text(), (*child)->stderr_text()};
}

}  // namespace testing
}  // namespace routeguide
