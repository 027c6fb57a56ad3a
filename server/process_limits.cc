#include "process_limits.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace routeguide {
namespace {

// Descriptors the server needs beside its queues (gRPC's epoll set and
// wake-ups, the accept loop, logs) plus room for a few dozen connections.
constexpr int64_t kDescriptorsBesideQueues = 64;
// Threads gRPC and the server start beside the pollers (gRPC's executor
// and timer threads, the accept loop, shutdown).
constexpr int64_t kThreadsBesidePollers = 32;

int64_t AsCount(rlim_t limit) {
  return limit == RLIM_INFINITY ? INT64_MAX : static_cast<int64_t>(limit);
}

}  // namespace

OpenFilesLimit RaiseOpenFilesLimit() {
  OpenFilesLimit result;
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) != 0) return result;
  result.soft_before = AsCount(files.rlim_cur);
  if (files.rlim_cur < files.rlim_max) {
    rlimit raised = files;
    raised.rlim_cur = files.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) files = raised;
  }
  result.soft = AsCount(files.rlim_cur);
  result.hard = AsCount(files.rlim_max);
  return result;
}

void LogOpenFilesLimit(const OpenFilesLimit& result) {
  spdlog::info("open files limit {} (soft limit was {}, hard limit {})", result.soft,
               result.soft_before, result.hard);
  if (result.soft < kWantedOpenFiles) {
    spdlog::warn(
        "the open files limit is {}, below {}: each connection takes one, so "
        "a burst of clients can use them all (raise the hard limit: ulimit "
        "-Hn, or LimitNOFILE= in a systemd unit)",
        result.soft, kWantedOpenFiles);
  }
}

absl::Status CheckThreadBudget(int threads, int completion_queues) {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 &&
      completion_queues + kDescriptorsBesideQueues > AsCount(files.rlim_cur)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--cqs/--threads: ", completion_queues, " completion queues need about ",
        completion_queues + kDescriptorsBesideQueues,
        " open files (one each, plus room for connections), but the open "
        "files limit is ",
        AsCount(files.rlim_cur), "; use fewer or raise the limit (ulimit -n)"));
  }
  rlimit processes{};
  if (getrlimit(RLIMIT_NPROC, &processes) == 0 &&
      threads + kThreadsBesidePollers > AsCount(processes.rlim_cur)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--threads: ", threads, " poller threads and gRPC's own need about ",
        threads + kThreadsBesidePollers, " threads, but the process limit is ",
        AsCount(processes.rlim_cur), "; use fewer or raise the limit (ulimit -u)"));
  }
  return absl::OkStatus();
}

int UsableCores() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0) {
    return std::max(1, CPU_COUNT(&allowed));
  }
  // More CPUs than a cpu_set_t holds (1024): count them all.
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

void NameThisThread(const char* name) {
  char truncated[16];
  std::snprintf(truncated, sizeof(truncated), "%s", name);
  pthread_setname_np(pthread_self(), truncated);
}

}  // namespace routeguide
