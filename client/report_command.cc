#include "report_command.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "files.h"
#include "flags.h"
#include "load_report.h"
#include "report_compare.h"
#include "report_file.h"
#include "report_merge.h"

namespace routeguide {
namespace {

int Fail(std::ostream& err, absl::string_view message) {
  err << "routeguide-client: error: " << message << "\n";
  err.flush();
  return kExitUsage;
}

int RunMerge(const std::vector<std::string>& paths, const ReportCommandFlags& flags,
             std::ostream& out, std::ostream& err) {
  if (!flags.max_regression.empty()) {
    return Fail(err, "--max_regression is for report compare, not merge");
  }
  std::vector<ReportFile> files;
  for (const std::string& path : paths) {
    absl::StatusOr<ReportFile> file = ReadReportFile(path);
    if (!file.ok()) return Fail(err, file.status().message());
    files.push_back(*std::move(file));
  }
  std::vector<std::string> notes;
  absl::StatusOr<LoadReport> merged = MergeReports(files, flags.force, &notes);
  if (!merged.ok()) return Fail(err, merged.status().message());
  for (const std::string& note : notes) err << "routeguide-client: note: " << note << "\n";
  err.flush();
  out << "merged " << files.size() << " report" << (files.size() > 1 ? "s" : "") << ":";
  for (const ReportFile& f : files) out << " " << f.path;
  out << "\n\n" << FormatReportTable(*merged);
  out.flush();
  if (!flags.json_path.empty() && !WriteWholeFile(flags.json_path, FormatReportJson(*merged))) {
    return Fail(err, absl::StrCat("cannot write --json report ", flags.json_path));
  }
  if (!flags.html_path.empty() && !WriteWholeFile(flags.html_path, FormatReportHtml(*merged))) {
    return Fail(err, absl::StrCat("cannot write --html report ", flags.html_path));
  }
  return 0;
}

int RunCompare(const std::vector<std::string>& paths, const ReportCommandFlags& flags,
               std::ostream& out, std::ostream& err) {
  if (paths.size() != 2) {
    return Fail(err, "report compare takes two reports: BASE.json NEW.json");
  }
  if (flags.force) return Fail(err, "--force is for report merge, not compare");
  if (!flags.json_path.empty()) {
    return Fail(err, "report compare writes no JSON (--json is for merge)");
  }
  absl::StatusOr<RegressionLimits> limits = RegressionLimits();
  if (!flags.max_regression.empty()) limits = ParseRegressionLimits(flags.max_regression);
  if (!limits.ok()) return Fail(err, limits.status().message());
  absl::StatusOr<ReportFile> base = ReadReportFile(paths[0]);
  if (!base.ok()) return Fail(err, base.status().message());
  absl::StatusOr<ReportFile> next = ReadReportFile(paths[1]);
  if (!next.ok()) return Fail(err, next.status().message());
  const std::vector<std::string> differences = SettingsDifferences(base->report, next->report);
  if (!differences.empty()) {
    err << "routeguide-client: note: the runs' settings differ, so their figures may not be "
           "comparable:";
    for (const std::string& d : differences) err << "\n  " << d;
    err << "\n";
    err.flush();
  }
  const Comparison comparison = CompareReports(*base, *next, *limits);
  out << comparison.table;
  out.flush();
  if (!flags.html_path.empty() &&
      !WriteWholeFile(flags.html_path, FormatCompareHtml(*base, *next, comparison))) {
    return Fail(err, absl::StrCat("cannot write --html report ", flags.html_path));
  }
  return comparison.regressions > 0 ? 1 : 0;
}

}  // namespace

int RunReportCommand(const std::vector<std::string>& args,
                     const ReportCommandFlags& flags, std::ostream& out,
                     std::ostream& err) {
  const std::string sub = args.empty() ? "" : args[0];
  const std::vector<std::string> paths(args.begin() + (args.empty() ? 0 : 1), args.end());
  if (sub == "merge") {
    if (paths.empty()) return Fail(err, "report merge takes one or more reports");
    return RunMerge(paths, flags, out, err);
  }
  if (sub == "compare") return RunCompare(paths, flags, out, err);
  return Fail(err, "report takes a sub-command: merge A.json B.json ... or compare "
                   "BASE.json NEW.json (see routeguide-client --help)");
}

}  // namespace routeguide
