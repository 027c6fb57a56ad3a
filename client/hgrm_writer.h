#ifndef ROUTEGUIDE_CLIENT_HGRM_WRITER_H_
#define ROUTEGUIDE_CLIENT_HGRM_WRITER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "histogram.h"
#include "load_generator.h"

namespace routeguide {

// HdrHistogram's percentile-distribution text (the .hgrm files wrk2 writes
// and HdrHistogram's plotters read; docs/hgrm.md): a header, one row per
// percentile step - value in milliseconds, percentile as a fraction,
// cumulative count, 1/(1-percentile) - stepping as HdrHistogram's
// percentile iterator does with `ticks_per_half_distance`, a last row at
// 1.0 ("inf"), and the Mean/StdDeviation, Max/Total count and
// Buckets/SubBuckets footer. `histogram` holds nanoseconds. Each row's value
// is what Histogram::Percentile reports at that percentile, so the rows
// agree with the table's and the JSON's percentiles.
std::string FormatHgrm(const Histogram& histogram,
                       int ticks_per_half_distance = 5);

// Every file --hgrm=PREFIX may write, PREFIX.<suffix>.hgrm (suffixes get,
// list, record, chat, all, list_first_message, chat_reply), for checking
// them before a run.
std::vector<std::string> HgrmPaths(const std::string& prefix);

// Writes a file for each kind with recorded latencies, and for "all"
// always, and removes the other PREFIX.<suffix>.hgrm files an earlier run
// may have left, so the files under a prefix always describe one run.
absl::Status WriteHgrmFiles(const std::string& prefix, const LoadReport& report);

}  // namespace routeguide

#endif  // ROUTEGUIDE_CLIENT_HGRM_WRITER_H_
