// `routeguide-client report merge|compare`: load reports read back from
// their JSON files (docs/load-report.md).
#ifndef ROUTEGUIDE_CLIENT_REPORT_COMMAND_H_
#define ROUTEGUIDE_CLIENT_REPORT_COMMAND_H_

#include <ostream>
#include <string>
#include <vector>

namespace routeguide {

struct ReportCommandFlags {
  std::string json_path;       // merge: write the merged report (v2) here.
  std::string html_path;       // merge, compare: write an HTML page here.
  bool force = false;          // merge: runs whose settings differ too.
  std::string max_regression;  // compare: "p99:10%,calls_per_second:5%".
};

// `args` are the sub-command and its files: {"merge", "a.json", "b.json"}
// or {"compare", "base.json", "new.json"}. Prints the table on `out` and
// errors ("routeguide-client: error: ...") on `err`. Returns the exit
// code: 0 done; 1 compare found a regression past --max_regression; 2 a
// bad command line, a file that cannot be read or is not a valid report,
// reports merge refuses, or an output that cannot be written.
int RunReportCommand(const std::vector<std::string>& args,
                     const ReportCommandFlags& flags, std::ostream& out,
                     std::ostream& err);

}  // namespace routeguide

#endif  // ROUTEGUIDE_CLIENT_REPORT_COMMAND_H_
