#ifndef ROUTEGUIDE_CLIENT_LOAD_REPORT_H_
#define ROUTEGUIDE_CLIENT_LOAD_REPORT_H_

#include <string>

#include "load_generator.h"

namespace routeguide {

// The plain table printed at the end of a run.
std::string FormatReportTable(const LoadReport& report);

// Every figure and the run's settings as JSON; the schema is in
// docs/load-report.md ("schema": "routeguide.load.v1").
std::string FormatReportJson(const LoadReport& report);

// One self-contained HTML page: the latency percentile curve of each kind
// and calls/s over time, as inline SVG (no scripts, nothing fetched).
std::string FormatReportHtml(const LoadReport& report);

}  // namespace routeguide

#endif  // ROUTEGUIDE_CLIENT_LOAD_REPORT_H_
