#ifndef ROUTEGUIDE_SERVER_PROCESS_LIMITS_H_
#define ROUTEGUIDE_SERVER_PROCESS_LIMITS_H_

#include <cstdint>

#include "absl/status/status.h"

namespace routeguide {

// The open-files limit before and after RaiseOpenFilesLimit.
struct OpenFilesLimit {
  int64_t soft_before = 0;
  int64_t soft = 0;
  int64_t hard = 0;
};

// Raises the soft RLIMIT_NOFILE to the hard limit, as Go's runtime does:
// every connection costs a descriptor, and the usual soft limit of 1024
// is a few hundred clients.
OpenFilesLimit RaiseOpenFilesLimit();
// Logs the limits (info), with a warning when the soft one is below
// kWantedOpenFiles.
void LogOpenFilesLimit(const OpenFilesLimit& limit);
inline constexpr int64_t kWantedOpenFiles = 4096;

// Whether `threads` poller threads over `completion_queues` queues fit the
// process's limits: each queue holds a descriptor (gRPC's wake-up eventfd)
// and connections need the rest; each thread counts against RLIMIT_NPROC.
// InvalidArgument with a message naming the flags and the limit otherwise
// (gRPC would abort part-way through start-up).
absl::Status CheckThreadBudget(int threads, int completion_queues);

// The CPUs this process may run on (its affinity mask, as `taskset` or a
// container's cpuset sets it), at least 1: what "one per core" means for
// --threads=0. A process held to one core gains nothing from a second
// poller thread but the switches between them.
int UsableCores();

// Names the calling thread, so that top -H, perf and /proc tell the
// server's threads from gRPC's (Linux keeps the first 15 bytes).
void NameThisThread(const char* name);

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_PROCESS_LIMITS_H_
