#ifndef ROUTEGUIDE_CLIENT_LOAD_GENERATOR_H_
#define ROUTEGUIDE_CLIENT_LOAD_GENERATOR_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "address_calls.h"
#include "histogram.h"
#include "load_options.h"
#include "load_stats.h"

namespace routeguide {

// Everything a load run measured, merged over its threads.
struct LoadReport {
  LoadOptions options;
  std::string channel_target;   // What the channels were created with.
  size_t features_known = 0;    // Learnt from the server at the start.
  absl::Time started_at;        // Wall clock, when measuring began.
  absl::Duration measured;      // The measurement window (warm-up excluded).
  std::array<KindStats, kNumCallKinds> kinds;
  KindStats total;
  // Completions in each whole second of the window, and after the last
  // whole one: a rate of a few milliseconds' worth is not a rate.
  std::vector<uint64_t> completions_per_second;
  uint64_t partial_second_completions = 0;
  // Open loop: how late calls started against their schedule.
  Histogram start_lag;
  uint64_t late_starts = 0;  // Started more than 1 ms after their time.
  bool interrupted = false;  // Ended early by SIGINT or SIGTERM.
  // A --target list: calls per address, warm-up included, as gRPC counts
  // them; empty for one address.
  std::vector<AddressCalls> by_address;

  double error_rate() const { return total.error_rate(); }
};

// Runs the load `options` describes. UNAVAILABLE when the target cannot be
// reached or does not answer ListFeatures; the run itself always yields a
// report. Setting `*interrupt` ends the run early (the report covers what
// was measured); while waiting for options.start_at, it ends it with
// CANCELLED and no report (nothing was measured).
absl::StatusOr<LoadReport> RunLoad(const LoadOptions& options,
                                   const std::atomic<bool>& interrupt);

}  // namespace routeguide

#endif  // ROUTEGUIDE_CLIENT_LOAD_GENERATOR_H_
