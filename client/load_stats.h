#ifndef ROUTEGUIDE_CLIENT_LOAD_STATS_H_
#define ROUTEGUIDE_CLIENT_LOAD_STATS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

#include "histogram.h"
#include "load_options.h"
#include "status_codes.h"

namespace routeguide {

// How a counted call ended.
enum class Outcome { kOk, kWrongAnswer, kFailed };

// The figures of one kind of call (or of all kinds together).
struct KindStats {
  uint64_t started = 0;
  uint64_t ok = 0;
  uint64_t wrong_answer = 0;
  std::array<uint64_t, kNumStatusCodes> failed_by_code{};
  uint64_t messages_sent = 0;
  uint64_t messages_received = 0;
  Histogram latency;        // The whole call.
  Histogram first_message;  // ListFeatures: to the first feature.
  Histogram reply;          // RouteChat: from a note to the reply it triggers.

  uint64_t failed() const {
    uint64_t sum = 0;
    for (uint64_t n : failed_by_code) sum += n;
    return sum;
  }
  uint64_t completed() const { return ok + wrong_answer + failed(); }
  // (failed + wrong answers) / completed; 0 when none completed.
  double error_rate() const {
    const uint64_t done = completed();
    return done == 0 ? 0
                     : static_cast<double>(failed() + wrong_answer) / static_cast<double>(done);
  }
  void Merge(const KindStats& other);
};

// What one completion-queue thread measured. Only that thread writes the
// plain fields, so nothing on the hot path locks; the atomics feed the
// live progress line from another thread.
struct WorkerStats {
  explicit WorkerStats(size_t timeline_seconds)
      : completions_per_second(timeline_seconds, 0) {}

  std::array<KindStats, kNumCallKinds> kinds;
  // Started calls, counted where they start (any thread).
  std::array<std::atomic<uint64_t>, kNumCallKinds> started{};
  // Counted completions per whole second since the measurement began.
  std::vector<uint64_t> completions_per_second;
  std::atomic<uint64_t> completed{0};
  std::atomic<uint64_t> errors{0};
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_CLIENT_LOAD_STATS_H_
