#include "progress_line.h"

#include <cstdio>

namespace routeguide {

ProgressLine::ProgressLine(bool show, Clock::time_point start,
                           Clock::time_point measure_start)
    : show_(show),
      start_(start),
      measure_start_(measure_start),
      last_(Clock::now()),
      next_line_(last_ + std::chrono::seconds(1)) {}

void ProgressLine::Print(Clock::time_point now, uint64_t completed,
                         uint64_t errors, int64_t in_flight) {
  const double seconds = std::chrono::duration<double>(now - last_).count();
  std::fprintf(stderr,
               "\r\033[K%6.1fs  %9.0f calls/s  %llu errors  %lld in flight%s",
               std::chrono::duration<double>(now - start_).count(),
               (completed - last_completed_) / seconds,
               static_cast<unsigned long long>(errors),
               static_cast<long long>(in_flight),
               now < measure_start_ ? "  (warming up)" : "");
  std::fflush(stderr);
  last_completed_ = completed;
  last_ = now;
  next_line_ += std::chrono::seconds(1);
}

void ProgressLine::Clear() {
  if (!show_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
}

}  // namespace routeguide
