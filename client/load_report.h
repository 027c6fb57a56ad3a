#ifndef ROUTEGUIDE_CLIENT_LOAD_REPORT_H_
#define ROUTEGUIDE_CLIENT_LOAD_REPORT_H_

#include <string>

#include "load_generator.h"

namespace routeguide {

// "950ns", "12.3us", "4.56ms", "1.23s": a latency as the tables show it.
std::string FormatLatencyNs(uint64_t nanos);

// The mix as "get:70,list:10,record:10,chat:10": every kind, in order.
std::string MixText(const LoadOptions& options);

// The plain table printed at the end of a run.
std::string FormatReportTable(const LoadReport& report);

// What a report's "schema" says: v2 adds the histograms to v1.
inline constexpr char kReportSchema[] = "routeguide.load.v2";
inline constexpr char kReportSchemaV1[] = "routeguide.load.v1";
// A latency object's "layout": how its "buckets" are numbered
// (Histogram::BucketOf). A reader refuses any other.
inline constexpr char kHistogramLayout[] = "log-linear exact_below=256 sub_buckets=128";
static_assert(Histogram::kExactBelow == 256 && Histogram::kSubBuckets == 128,
              "a new bucket layout needs a new kHistogramLayout");

// Every figure and the run's settings as JSON; the schema is in
// docs/load-report.md ("schema": "routeguide.load.v2").
std::string FormatReportJson(const LoadReport& report);

// One self-contained HTML page: the latency percentile curve of each kind
// and calls/s over time, as inline SVG (no scripts, nothing fetched).
std::string FormatReportHtml(const LoadReport& report);

// The exit code a run ends with: 1 when its error rate passed
// `max_error_rate`, else 3 when a signal cut it short, else 1 when no call
// completed, else 0. Failures come first: a script that reads only the
// code must not take an interrupted run whose calls failed for merely
// interrupted.
inline constexpr int kExitInterrupted = 3;
int LoadExitCode(const LoadReport& report, double max_error_rate);

}  // namespace routeguide

#endif  // ROUTEGUIDE_CLIENT_LOAD_REPORT_H_
