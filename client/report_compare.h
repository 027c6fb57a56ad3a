// `routeguide-client report compare`: two runs' figures side by side, and
// whether the second regressed past given limits.
#ifndef ROUTEGUIDE_CLIENT_REPORT_COMPARE_H_
#define ROUTEGUIDE_CLIENT_REPORT_COMPARE_H_

#include <array>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "report_file.h"

namespace routeguide {

// The figures compared, in table order.
enum class Figure { kCallsPerSecond, kP50, kP90, kP99, kP99_9, kMax, kErrorRate };
inline constexpr int kNumFigures = 7;
// Their names in --max_regression ("p99.9" is taken for "p99_9" too).
inline constexpr std::array<const char*, kNumFigures> kFigureNames = {
    "calls_per_second", "p50", "p90", "p99", "p99_9", "max", "error_rate"};

// How far each figure may move the wrong way before it counts as a
// regression: latencies up, calls/s down, by this many percent of the base
// figure; the error rate up by this many percentage points (a base of 0
// errors is common, and no percentage of 0 means anything: "error_rate:1%"
// allows a rise from 0.5% to 1.5%). Unset: not checked.
struct RegressionLimits {
  std::array<std::optional<double>, kNumFigures> percent;
  // The error rate's limit is the default 0 (none named it).
  bool error_rate_by_default = false;
  bool any() const;
};

// "p99:10%,calls_per_second:5%" (the % is optional). INVALID_ARGUMENT for
// an unknown figure, a figure given twice, or a value that is not a
// non-negative number. Unless error_rate is named, its limit is 0: any
// rise of the error rate is a regression (a run whose every call failed
// fast would pass latency limits).
absl::StatusOr<RegressionLimits> ParseRegressionLimits(absl::string_view text);

struct Comparison {
  std::string table;     // For stdout: both runs' figures and the changes.
  int regressions = 0;   // Figures past their limit, marked REGRESSION.
};

// Compares `next` with `base` for each kind in either run's mix (weight
// above 0), and all kinds
// together. Works with v1 reports (their percentiles as written).
Comparison CompareReports(const ReportFile& base, const ReportFile& next,
                          const RegressionLimits& limits);

// A self-contained HTML page: `comparison`'s table, and per kind a chart
// of both runs' latency by percentile (the whole curve from a v2
// histogram, the written percentiles of a v1 report).
std::string FormatCompareHtml(const ReportFile& base, const ReportFile& next,
                              const Comparison& comparison);

}  // namespace routeguide

#endif  // ROUTEGUIDE_CLIENT_REPORT_COMPARE_H_
