// libFuzzer target: any bytes given to the load-report reader either
// yield an error or a report that merges with itself, is written out and
// read back, and compares with itself; never a crash, a hang or a leak.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "load_report.h"
#include "report_compare.h"
#include "report_file.h"
#include "report_merge.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<routeguide::ReportFile> file = routeguide::ParseReport(text, "fuzz");
  if (!file.ok()) {
    // Errors name the file first.
    if (file.status().message().substr(0, 5) != "fuzz:") __builtin_trap();
    return 0;
  }
  std::vector<std::string> notes;
  absl::StatusOr<routeguide::LoadReport> merged =
      routeguide::MergeReports({*file, *file}, false, &notes);
  if (merged.ok()) {
    // Every merged report reads back.
    if (!routeguide::ParseReport(routeguide::FormatReportJson(*merged), "merged").ok()) {
      __builtin_trap();
    }
  }
  routeguide::CompareReports(*file, *file, *routeguide::ParseRegressionLimits("p99:10%"));
  return 0;
}
