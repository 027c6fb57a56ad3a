// Latency distributions as HdrHistogram's percentile-distribution text, so
// the tools built for wrk2's and HdrHistogram's .hgrm files (plotters,
// comparisons of runs) read our runs too. The format is described in
// docs/hgrm.md.
#include "hgrm_writer.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "files.h"

namespace routeguide {
namespace {

// Values are written in milliseconds (as wrk2 does); histograms hold
// nanoseconds.
constexpr double kNanosPerUnit = 1e6;

// HdrHistogram's percentile steps: `ticks` equal steps in each half of the
// distance left to 100% (0-50%, 50-75%, 75-87.5%, ...), so the tail gets
// ever finer rows while the row count stays logarithmic.
double NextPercent(double percent, int ticks) {
  const double halvings = std::floor(std::log2(100.0 / (100.0 - percent)));
  const double steps = ticks * std::exp2(std::min(halvings, 60.0) + 1);
  return percent + 100.0 / steps;
}

void AppendRow(std::string& out, uint64_t value, double percent, uint64_t count) {
  const double fraction = percent / 100.0;
  absl::StrAppendFormat(&out, "%12.3f %2.12f %10d %14.2f\n", value / kNanosPerUnit,
                        fraction, count, 1.0 / (1.0 - fraction));
}

// Population standard deviation of the bucket values around the exact
// mean: the histogram keeps no more than which bucket a value fell in.
double StdDeviation(const Histogram& h) {
  if (h.count() == 0) return 0;
  const double mean = h.mean();
  double squares = 0;
  for (const auto& [bucket, n] : h.NonEmptyBuckets()) {
    const double deviation = static_cast<double>(h.ValueOfBucket(bucket)) - mean;
    squares += static_cast<double>(n) * deviation * deviation;
  }
  return std::sqrt(squares / static_cast<double>(h.count()));
}

}  // namespace

std::string FormatHgrm(const Histogram& h, int ticks_per_half_distance) {
  const int ticks = std::max(1, ticks_per_half_distance);
  std::string out = absl::StrFormat("%12s %14s %10s %14s\n\n", "Value", "Percentile",
                                    "TotalCount", "1/(1-Percentile)");
  const uint64_t total = h.count();
  if (total > 0) {
    double percent = 0;
    uint64_t seen = 0;
    int last_bucket = 0;
    for (const auto& [bucket, n] : h.NonEmptyBuckets()) {
      seen += n;
      last_bucket = bucket;
      // Every step whose rank falls in this bucket; in the last bucket only
      // one, as HdrHistogram's iterator ends there and adds the 100% row.
      while (seen >= Histogram::RankOf(percent, total)) {
        AppendRow(out, h.ValueOfBucket(bucket), percent, seen);
        percent = NextPercent(percent, ticks);
        if (seen == total) break;
      }
    }
    absl::StrAppendFormat(&out, "%12.3f %2.12f %10d %14s\n",
                          h.ValueOfBucket(last_bucket) / kNanosPerUnit, 1.0, seen, "inf");
  }
  absl::StrAppendFormat(&out, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n",
                        h.mean() / kNanosPerUnit, StdDeviation(h) / kNanosPerUnit);
  absl::StrAppendFormat(&out, "#[Max     = %12.3f, Total count    = %12d]\n",
                        h.max() / kNanosPerUnit, total);
  // In HdrHistogram's terms ours has 256 sub-buckets (the exact values
  // 0-255; each later power of two has the upper 128 of them) and one
  // bucket per power of two up to 2^64.
  absl::StrAppendFormat(
      &out, "#[Buckets = %12d, SubBuckets     = %12d]\n",
      1 + (Histogram::kBuckets - Histogram::kExactBelow) / Histogram::kSubBuckets,
      Histogram::kExactBelow);
  return out;
}

namespace {

// The file name suffixes --hgrm=PREFIX may write.
std::vector<std::string> HgrmFileSuffixes() {
  std::vector<std::string> suffixes(kCallKindNames.begin(), kCallKindNames.end());
  for (const char* more : {"all", "list_first_message", "chat_reply"}) {
    suffixes.push_back(more);
  }
  return suffixes;
}

std::string HgrmPath(const std::string& prefix, const std::string& suffix) {
  return absl::StrCat(prefix, ".", suffix, ".hgrm");
}

// What --hgrm writes for `report`: (suffix, histogram) for each kind with
// recorded latencies, and "all" always.
std::vector<std::pair<std::string, const Histogram*>> HgrmHistograms(
    const LoadReport& report) {
  std::vector<std::pair<std::string, const Histogram*>> files;
  for (int k = 0; k < kNumCallKinds; ++k) {
    if (report.kinds[k].latency.count() > 0) {
      files.emplace_back(kCallKindNames[k], &report.kinds[k].latency);
    }
  }
  files.emplace_back("all", &report.total.latency);
  const KindStats& list = report.kinds[static_cast<int>(CallKind::kListFeatures)];
  if (list.first_message.count() > 0) {
    files.emplace_back("list_first_message", &list.first_message);
  }
  const KindStats& chat = report.kinds[static_cast<int>(CallKind::kRouteChat)];
  if (chat.reply.count() > 0) files.emplace_back("chat_reply", &chat.reply);
  return files;
}

}  // namespace

std::vector<std::string> HgrmPaths(const std::string& prefix) {
  std::vector<std::string> paths;
  for (const std::string& suffix : HgrmFileSuffixes()) {
    paths.push_back(HgrmPath(prefix, suffix));
  }
  return paths;
}

absl::Status WriteHgrmFiles(const std::string& prefix, const LoadReport& report) {
  const auto files = HgrmHistograms(report);
  for (const std::string& suffix : HgrmFileSuffixes()) {
    const std::string path = HgrmPath(prefix, suffix);
    const auto file = std::find_if(files.begin(), files.end(),
                                   [&](const auto& f) { return f.first == suffix; });
    if (file == files.end()) {
      if (unlink(path.c_str()) != 0 && errno != ENOENT) {
        return absl::InternalError(absl::StrCat("cannot remove the stale ", path,
                                                ": ", std::strerror(errno)));
      }
    } else if (!WriteWholeFile(path, FormatHgrm(*file->second))) {
      return absl::InternalError(absl::StrCat("cannot write ", path));
    }
  }
  return absl::OkStatus();
}

}  // namespace routeguide
