#ifndef ROUTEGUIDE_CLIENT_PROGRESS_LINE_H_
#define ROUTEGUIDE_CLIENT_PROGRESS_LINE_H_

#include <chrono>
#include <cstdint>

namespace routeguide {

// The live line a load run keeps on stderr when it is a terminal: time
// since the start, calls/s over the last second, errors so far, calls in
// flight, and whether the warm-up is still on. Each line overwrites the
// one before; Clear leaves the terminal as it was.
//
// Not thread-safe: the thread that watches the run owns it.
class ProgressLine {
 public:
  using Clock = std::chrono::steady_clock;

  // Prints nothing when `show` is false.
  ProgressLine(bool show, Clock::time_point start,
               Clock::time_point measure_start);

  // Whether a line is shown and a second has passed since the last one.
  bool Due(Clock::time_point now) const { return show_ && now >= next_line_; }
  // Rewrites the line; `completed` and `errors` are totals so far.
  void Print(Clock::time_point now, uint64_t completed, uint64_t errors,
             int64_t in_flight);
  void Clear();

 private:
  const bool show_;
  const Clock::time_point start_;
  const Clock::time_point measure_start_;
  uint64_t last_completed_ = 0;
  Clock::time_point last_;
  Clock::time_point next_line_;
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_CLIENT_PROGRESS_LINE_H_
