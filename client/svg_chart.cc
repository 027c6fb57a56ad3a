#include "svg_chart.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace routeguide {

std::string EscapeHtml(absl::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string SvgChart(const std::string& title, const std::string& x_label,
                     const std::string& y_label, const std::vector<Series>& series,
                     const std::vector<std::pair<double, std::string>>& x_ticks) {
  constexpr double kWidth = 720, kHeight = 360, kLeft = 80, kRight = 20,
                   kTop = 40, kBottom = 50;
  double x_min = 1e300, x_max = -1e300, y_max = 0;
  for (const Series& s : series) {
    for (const auto& [x, y] : s.points) {
      x_min = std::min(x_min, x);
      x_max = std::max(x_max, x);
      y_max = std::max(y_max, y);
    }
  }
  for (const auto& tick : x_ticks) {
    x_min = std::min(x_min, tick.first);
    x_max = std::max(x_max, tick.first);
  }
  if (x_max <= x_min) x_max = x_min + 1;
  if (y_max <= 0) y_max = 1;
  // Round the top up to a whole number of 1, 2 or 5 times a power of ten.
  const double magnitude = std::pow(10, std::floor(std::log10(y_max / 4)));
  double y_step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    y_step = m * magnitude;
    if (y_step * 4 >= y_max) break;
  }
  const double y_top = y_step * 4;
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  auto px = [&](double x) { return kLeft + (x - x_min) / (x_max - x_min) * plot_w; };
  auto py = [&](double y) { return kTop + plot_h - y / y_top * plot_h; };

  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<text x=\"%.0f\" y=\"20\" font-size=\"15\" font-weight=\"bold\">%s</text>\n"
      "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
      "stroke=\"#999\"/>\n",
      kWidth, kHeight, kLeft, EscapeHtml(title), kLeft, kTop, plot_w, plot_h);
  for (int i = 0; i <= 4; ++i) {
    const double y = y_step * i;
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                          "stroke=\"#eee\"/><text x=\"%.1f\" y=\"%.1f\" "
                          "text-anchor=\"end\">%s</text>\n",
                          kLeft, py(y), kLeft + plot_w, py(y), kLeft - 6, py(y) + 4,
                          y_step >= 1 ? absl::StrFormat("%.0f", y)
                                      : absl::StrFormat("%.3g", y));
  }
  for (const auto& [x, label] : x_ticks) {
    absl::StrAppendFormat(&svg,
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                          px(x), kTop + plot_h + 16, EscapeHtml(label));
  }
  absl::StrAppendFormat(&svg,
                        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n"
                        "<text x=\"14\" y=\"%.1f\" transform=\"rotate(-90 14 %.1f)\" "
                        "text-anchor=\"middle\">%s</text>\n",
                        kLeft + plot_w / 2, kHeight - 8, EscapeHtml(x_label),
                        kTop + plot_h / 2, kTop + plot_h / 2, EscapeHtml(y_label));
  double legend_x = kLeft + 10;
  for (const Series& s : series) {
    if (s.points.empty()) continue;
    std::string path;
    for (const auto& [x, y] : s.points) {
      absl::StrAppendFormat(&path, "%s%.1f,%.1f ", path.empty() ? "M" : "L", px(x), py(y));
    }
    absl::StrAppendFormat(&svg,
                          "<path d=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s/>\n"
                          "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                          "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                          path, s.color, s.dashed ? " stroke-dasharray=\"6 4\"" : "",
                          legend_x, kTop + 8, s.color, legend_x + 16,
                          kTop + 18, EscapeHtml(s.name));
    legend_x += 30 + 8 * s.name.size();
  }
  svg += "</svg>\n";
  return svg;
}

Series PercentileCurve(const std::string& name, const std::string& color,
                       const Histogram& h) {
  Series s{name, color, {}};
  if (h.count() == 0) return s;
  for (double nines = 0; nines <= 4.0001; nines += 0.05) {
    const double p = 100 * (1 - std::pow(10, -nines));
    s.points.emplace_back(nines, h.Percentile(p) / 1e6);
  }
  return s;
}

std::vector<std::pair<double, std::string>> NinesTicks() {
  return {{0, "p0"}, {1, "p90"}, {2, "p99"}, {3, "p99.9"}, {4, "p99.99"}};
}

double Nines(double percentile) { return -std::log10(1 - percentile / 100); }

}  // namespace routeguide
