// Reading `load --json` reports back (docs/load-report.md), for
// `routeguide-client report merge|compare`.
#ifndef ROUTEGUIDE_CLIENT_REPORT_FILE_H_
#define ROUTEGUIDE_CLIENT_REPORT_FILE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "histogram.h"
#include "load_generator.h"

namespace routeguide {

// A latency object's figures as the report states them: all that a v1
// report has of a latency.
struct LatencyFigures {
  uint64_t count = 0;
  double mean = 0;
  uint64_t p50 = 0;
  uint64_t p90 = 0;
  uint64_t p99 = 0;
  uint64_t p99_9 = 0;
  uint64_t max = 0;

  static LatencyFigures Of(const Histogram& h);
};

// Index of the whole calls' figures of all kinds together in
// ReportFile::latency, after the kinds.
inline constexpr int kAllKinds = kNumCallKinds;

// The most seconds a report's completions_per_second spans: a week, the
// longest span report merge accepts (runs further apart were not made at
// the same time). Longer arrays are refused when read.
inline constexpr size_t kMaxReportSeconds = 7 * 24 * 3600;

// The most by_address entries a report may have (each address once).
inline constexpr size_t kMaxReportAddresses = 1024;

// One report read from a file.
struct ReportFile {
  std::string path;  // As named on the command line, for messages.
  int version = 2;   // 1 or 2 (the "schema").
  // Everything the file holds. v1 has no histograms: they are all empty
  // here, and `latency` holds what v1 has instead. report.total is the
  // kinds merged (the file's own total is checked against them).
  LoadReport report;
  // Whole calls' latency per kind, then all kinds (kAllKinds), as written.
  std::array<LatencyFigures, kNumCallKinds + 1> latency;

  bool has_histograms() const { return version >= 2; }
};

// Parses a report's JSON text; `name` (the file) starts every error
// message, which names the field at fault too: INVALID_ARGUMENT for text
// that is not JSON, another schema, a missing field or one of the wrong
// type, or figures that contradict each other (counts that do not add up,
// buckets out of range).
absl::StatusOr<ReportFile> ParseReport(absl::string_view json_text,
                                       const std::string& name);

// Reads and parses the file at `path` (at most 256 MiB).
absl::StatusOr<ReportFile> ReadReportFile(const std::string& path);

}  // namespace routeguide

#endif  // ROUTEGUIDE_CLIENT_REPORT_FILE_H_
