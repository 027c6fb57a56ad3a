// Line charts as inline SVG, for the self-contained HTML reports of
// `load --html` and `report merge|compare --html` (no scripts, nothing
// fetched).
#ifndef ROUTEGUIDE_CLIENT_SVG_CHART_H_
#define ROUTEGUIDE_CLIENT_SVG_CHART_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "histogram.h"

namespace routeguide {

// One line of a chart: (x, y) points in data units.
struct Series {
  std::string name;
  std::string color;
  std::vector<std::pair<double, double>> points;
  bool dashed = false;  // Told apart from a solid line of the same colour.
};

// `text` with HTML's special characters escaped.
std::string EscapeHtml(absl::string_view text);

// A 720x360 chart with a legend; the y axis starts at 0 and is rounded up
// to a whole step. Ticks label the x axis at the given positions.
std::string SvgChart(const std::string& title, const std::string& x_label,
                     const std::string& y_label, const std::vector<Series>& series,
                     const std::vector<std::pair<double, std::string>>& x_ticks);

// The latency (ms) by percentile of `h`, x in "nines", -log10(1 - p/100),
// so 90, 99, 99.9 and 99.99 are evenly spaced; no points when empty.
Series PercentileCurve(const std::string& name, const std::string& color,
                       const Histogram& h);

// x ticks for PercentileCurve: p0, p90, p99, p99.9, p99.99.
std::vector<std::pair<double, std::string>> NinesTicks();

// Where percentile `p` (0 to 100, below 100) lies on that x axis.
double Nines(double percentile);

}  // namespace routeguide

#endif  // ROUTEGUIDE_CLIENT_SVG_CHART_H_
