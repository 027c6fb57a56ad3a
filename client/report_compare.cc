#include "report_compare.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "load_report.h"
#include "svg_chart.h"

namespace routeguide {
namespace {

constexpr std::array<const char*, kNumFigures> kFigureLabels = {
    "calls/s", "p50", "p90", "p99", "p99.9", "max", "error rate"};

bool IsLatency(Figure f) { return f != Figure::kCallsPerSecond && f != Figure::kErrorRate; }

// Row `k` of a report: a kind, or all kinds (kAllKinds).
const KindStats& Stats(const ReportFile& f, int k) {
  return k == kAllKinds ? f.report.total : f.report.kinds[k];
}

// Latencies in ns, calls/s, the error rate as a fraction.
double Value(const ReportFile& f, int k, Figure figure) {
  const LatencyFigures& l = f.latency[k];
  switch (figure) {
    case Figure::kCallsPerSecond: {
      const double seconds = absl::ToDoubleSeconds(f.report.measured);
      return seconds <= 0 ? 0 : static_cast<double>(Stats(f, k).completed()) / seconds;
    }
    case Figure::kP50: return static_cast<double>(l.p50);
    case Figure::kP90: return static_cast<double>(l.p90);
    case Figure::kP99: return static_cast<double>(l.p99);
    case Figure::kP99_9: return static_cast<double>(l.p99_9);
    case Figure::kMax: return static_cast<double>(l.max);
    case Figure::kErrorRate: return Stats(f, k).error_rate();
  }
  return 0;
}

std::string Show(double value, Figure figure) {
  if (figure == Figure::kCallsPerSecond) return absl::StrFormat("%.1f", value);
  if (figure == Figure::kErrorRate) return absl::StrFormat("%.4f%%", value * 100);
  // Latencies are uint64_t nanoseconds; one near 2^64 rounds up to 2^64
  // as a double, which a uint64_t does not hold.
  return FormatLatencyNs(value >= 18446744073709551615.0 ? UINT64_MAX
                                                         : static_cast<uint64_t>(value));
}

std::string RunLine(const char* role, const ReportFile& f) {
  return absl::StrFormat(
      "%-4s %s (v%d): started %s, measured %s, target %s, mix %s, %d calls\n", role, f.path,
      f.version, absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", f.report.started_at,
                                  absl::UTCTimeZone()),
      absl::FormatDuration(absl::Trunc(f.report.measured, absl::Milliseconds(1))),
      f.report.options.target, MixText(f.report.options), f.report.total.completed());
}

}  // namespace

bool RegressionLimits::any() const {
  for (const auto& p : percent) {
    if (p.has_value()) return true;
  }
  return false;
}

absl::StatusOr<RegressionLimits> ParseRegressionLimits(absl::string_view text) {
  RegressionLimits limits;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    const std::pair<absl::string_view, absl::string_view> parts =
        absl::StrSplit(item, absl::MaxSplits(':', 1));
    std::string name(absl::StripAsciiWhitespace(parts.first));
    if (name == "p99.9") name = "p99_9";
    int figure = 0;
    while (figure < kNumFigures && name != kFigureNames[figure]) ++figure;
    if (figure == kNumFigures) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--max_regression: unknown figure \"", parts.first,
          "\" in \"", item, "\" (calls_per_second, p50, p90, p99, p99_9, max or error_rate)"));
    }
    absl::string_view value = absl::StripAsciiWhitespace(parts.second);
    absl::ConsumeSuffix(&value, "%");
    double percent = 0;
    if (!absl::SimpleAtod(value, &percent) || !std::isfinite(percent) || percent < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--max_regression: \"", item, "\": expected ", name,
          ":PERCENT with PERCENT a number >= 0, as in p99:10%"));
    }
    if (limits.percent[figure].has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--max_regression: ", name, " is given twice"));
    }
    limits.percent[figure] = percent;
  }
  constexpr int kError = static_cast<int>(Figure::kErrorRate);
  if (!limits.percent[kError].has_value()) {
    limits.percent[kError] = 0;
    limits.error_rate_by_default = true;
  }
  return limits;
}

Comparison CompareReports(const ReportFile& base, const ReportFile& next,
                          const RegressionLimits& limits) {
  Comparison out;
  std::string& t = out.table;
  t = RunLine("base", base) + RunLine("new", next);
  std::vector<std::string> marked;
  for (int k = 0; k <= kAllKinds; ++k) {
    if (k != kAllKinds && base.report.options.mix[k] <= 0 &&
        next.report.options.mix[k] <= 0) {
      continue;
    }
    const char* kind = k == kAllKinds ? "all" : kCallKindNames[k];
    absl::StrAppendFormat(&t, "\n%-12s %12s %12s %10s\n", kind, "base", "new", "change");
    for (int i = 0; i < kNumFigures; ++i) {
      const Figure figure = static_cast<Figure>(i);
      const double a = Value(base, k, figure);
      const double b = Value(next, k, figure);
      std::string change;
      double worse = 0;  // How far the wrong way, in the limit's units.
      if (figure == Figure::kErrorRate) {
        change = absl::StrFormat("%+.3fpp", (b - a) * 100);
        worse = (b - a) * 100;
      } else if (a > 0) {
        const double percent = (b - a) / a * 100;
        change = absl::StrFormat("%+.1f%%", percent);
        worse = IsLatency(figure) ? percent : -percent;
      } else {
        // Nothing to take a percentage of: no call of the kind in base.
        change = b == 0 ? "+0.0%" : "n/a";
      }
      std::string mark;
      if (limits.percent[i].has_value() && worse > *limits.percent[i]) {
        ++out.regressions;
        const std::string limit =
            absl::StrFormat("%s%g%s", figure == Figure::kCallsPerSecond ? "-" : "+",
                            *limits.percent[i], figure == Figure::kErrorRate ? "pp" : "%");
        mark = absl::StrCat("  REGRESSION (limit ", limit, ")");
        marked.push_back(absl::StrCat(kind, " ", kFigureLabels[i], " ", change));
      }
      absl::StrAppendFormat(&t, "  %-10s %12s %12s %10s%s\n", kFigureLabels[i],
                            Show(a, figure), Show(b, figure), change, mark);
    }
  }
  if (limits.error_rate_by_default) {
    t += "\nerror_rate limit +0pp by default (not named in --max_regression)\n";
  }
  if (!limits.any()) {
    t += "\nno --max_regression given: figures reported, nothing checked\n";
  } else if (out.regressions == 0) {
    t += "\nno regression past the limits\n";
  } else {
    absl::StrAppend(&t, "\n", out.regressions, " REGRESSION", out.regressions > 1 ? "S" : "",
                    " past the limits: ", absl::StrJoin(marked, ", "), "\n");
  }
  return out;
}

std::string FormatCompareHtml(const ReportFile& base, const ReportFile& next,
                              const Comparison& comparison) {
  auto curve = [](const ReportFile& f, int k, const std::string& name,
                  const std::string& color) {
    const Histogram& h = Stats(f, k).latency;
    if (f.has_histograms()) return PercentileCurve(name, color, h);
    // v1: only the percentiles written down.
    Series s{name, color, {}};
    const LatencyFigures& l = f.latency[k];
    if (l.count == 0) return s;
    s.points = {{Nines(50), l.p50 / 1e6},
                {Nines(90), l.p90 / 1e6},
                {Nines(99), l.p99 / 1e6},
                {Nines(99.9), l.p99_9 / 1e6}};
    return s;
  };
  std::string html =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
      "<title>routeguide load comparison</title>\n<style>body{font-family:sans-serif;"
      "margin:2em}pre{background:#f6f6f6;padding:1em;overflow-x:auto}</style>"
      "</head><body>\n<h1>routeguide load comparison</h1>\n";
  absl::StrAppend(&html, "<pre>", EscapeHtml(comparison.table), "</pre>\n");
  for (int k = 0; k <= kAllKinds; ++k) {
    if (k != kAllKinds && base.report.options.mix[k] <= 0 &&
        next.report.options.mix[k] <= 0) {
      continue;
    }
    const std::string kind = k == kAllKinds ? "all" : kCallKindNames[k];
    Series b = curve(base, k, "base " + base.path, "#1f77b4");
    Series n = curve(next, k, "new " + next.path, "#d62728");
    n.dashed = true;
    absl::StrAppend(&html, SvgChart("Latency by percentile: " + kind, "percentile",
                                    "latency (ms)", {b, n}, NinesTicks()),
                    "<br>\n");
  }
  html += "</body></html>\n";
  return html;
}

}  // namespace routeguide
