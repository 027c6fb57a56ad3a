#include "report_merge.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "load_report.h"

namespace routeguide {
namespace {

// Runs further apart than this (first start to last end) were not made
// at the same time; it also bounds the merged completions_per_second (one
// entry a second), as the reader does (kMaxReportSeconds).
constexpr absl::Duration kMaxSpan = absl::Seconds(kMaxReportSeconds);

std::string Rect(const std::optional<GeoRect>& rect) {
  if (!rect.has_value()) return "none";
  return absl::StrCat(rect->lo.latitude, ",", rect->lo.longitude, ",", rect->hi.latitude,
                      ",", rect->hi.longitude);
}

// a += b, stopping at the type's maximum: a report read from a file may
// hold any value up to it, and a signed overflow must not follow.
template <typename T>
void AddSaturating(T& a, T b) {
  a = b > std::numeric_limits<T>::max() - a ? std::numeric_limits<T>::max() : a + b;
}

absl::Status Overflow(const std::string& where) {
  return absl::InvalidArgumentError(
      absl::StrCat("merging ", where, ": counts overflow 64 bits (a report holds absurd counts)"));
}

// The length of the union of [start, end) intervals.
absl::Duration UnionLength(std::vector<std::pair<absl::Time, absl::Time>> windows) {
  std::sort(windows.begin(), windows.end());
  absl::Duration length;
  absl::Time covered_to = absl::InfinitePast();
  for (const auto& [start, end] : windows) {
    const absl::Time from = std::max(start, covered_to);
    if (end > from) {
      length += end - from;
      covered_to = end;
    }
  }
  return length;
}

}  // namespace

bool CountsFit(const KindStats& s) {
  uint64_t failed = 0;
  for (uint64_t n : s.failed_by_code) {
    if (!AddChecked(failed, n)) return false;
  }
  uint64_t completed = s.ok;
  return AddChecked(completed, s.wrong_answer) && AddChecked(completed, failed);
}

bool MergeChecked(KindStats& into, const KindStats& from) {
  KindStats counts;  // The plain counts summed, no histograms.
  bool fit = true;
  auto add = [&](uint64_t& out, uint64_t a, uint64_t b) {
    out = a;
    fit = AddChecked(out, b) && fit;
  };
  add(counts.started, into.started, from.started);
  add(counts.ok, into.ok, from.ok);
  add(counts.wrong_answer, into.wrong_answer, from.wrong_answer);
  for (int i = 0; i < kNumStatusCodes; ++i) {
    add(counts.failed_by_code[i], into.failed_by_code[i], from.failed_by_code[i]);
  }
  add(counts.messages_sent, into.messages_sent, from.messages_sent);
  add(counts.messages_received, into.messages_received, from.messages_received);
  // A histogram's bucket counts are each at most its count.
  uint64_t unused = 0;
  add(unused, into.latency.count(), from.latency.count());
  add(unused, into.first_message.count(), from.first_message.count());
  add(unused, into.reply.count(), from.reply.count());
  if (!fit || !CountsFit(counts)) return false;
  into.Merge(from);
  return true;
}

std::vector<std::string> SettingsDifferences(const LoadReport& a, const LoadReport& b) {
  std::vector<std::string> out;
  auto differ = [&](const char* what, const std::string& x, const std::string& y) {
    if (x != y) out.push_back(absl::StrCat(what, " ", x, " vs ", y));
  };
  const LoadOptions& x = a.options;
  const LoadOptions& y = b.options;
  differ("mix", MixText(x), MixText(y));
  differ("target", x.target, y.target);
  differ("channel_target", a.channel_target, b.channel_target);
  differ("mode", x.rps > 0 ? "open" : "closed", y.rps > 0 ? "open" : "closed");
  if (x.rps > 0 && y.rps > 0) {  // Closed loop has no arrival process.
    differ("arrival", ArrivalName(x.arrival), ArrivalName(y.arrival));
  }
  differ("route_points", absl::StrCat(x.route_points), absl::StrCat(y.route_points));
  differ("chat_notes", absl::StrCat(x.chat_notes), absl::StrCat(y.chat_notes));
  differ("chat_locations", absl::StrCat(x.chat_locations), absl::StrCat(y.chat_locations));
  differ("batch_writes", x.batch_writes ? "true" : "false", y.batch_writes ? "true" : "false");
  differ("hit_ratio", absl::StrCat(x.hit_ratio), absl::StrCat(y.hit_ratio));
  differ("rect_degrees", absl::StrCat(x.rect_degrees), absl::StrCat(y.rect_degrees));
  differ("list_rect_e7", Rect(x.list_rect), Rect(y.list_rect));
  differ("deadline", absl::FormatDuration(x.deadline), absl::FormatDuration(y.deadline));
  return out;
}

absl::StatusOr<LoadReport> MergeReports(const std::vector<ReportFile>& files, bool force,
                                        std::vector<std::string>* notes) {
  if (files.empty()) return absl::InvalidArgumentError("no report to merge");
  for (const ReportFile& f : files) {
    if (!f.has_histograms()) {
      return absl::FailedPreconditionError(absl::StrCat(
          f.path,
          ": a routeguide.load.v1 report has percentiles but no histograms, and "
          "percentiles cannot be merged (not even with --force); run the load again "
          "with this client for a v2 report"));
    }
  }
  std::vector<std::string> differences;
  for (size_t i = 1; i < files.size(); ++i) {
    for (const std::string& d : SettingsDifferences(files[0].report, files[i].report)) {
      differences.push_back(absl::StrCat(files[0].path, " and ", files[i].path, ": ", d));
    }
  }
  if (!differences.empty() && !force) {
    return absl::FailedPreconditionError(absl::StrCat(
        "these runs differ, so their figures do not add up to one load (--force merges "
        "them anyway):\n  ",
        absl::StrJoin(differences, "\n  ")));
  }
  for (const std::string& d : differences) {
    notes->push_back(absl::StrCat("merged despite different settings: ", d));
  }

  absl::Time earliest = absl::InfiniteFuture();
  absl::Time latest_end = absl::InfinitePast();
  std::vector<std::pair<absl::Time, absl::Time>> windows;
  for (const ReportFile& f : files) {
    const absl::Time end = f.report.started_at + f.report.measured;
    earliest = std::min(earliest, f.report.started_at);
    latest_end = std::max(latest_end, end);
    windows.emplace_back(f.report.started_at, end);
  }
  // Reports read from files hold times from 1970 to 9999; others (made in
  // memory) are checked here, before any offset is cast to a size.
  if (!(latest_end - earliest >= absl::ZeroDuration())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the runs' times make no sense (first start ", absl::FormatTime(earliest),
        ", last end ", absl::FormatTime(latest_end), ")"));
  }
  if (latest_end - earliest > kMaxSpan) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the runs span ", absl::FormatDuration(latest_end - earliest),
        " from the first start to the last end: more than a week, so not runs made at "
        "the same time"));
  }

  LoadReport merged;
  merged.options = files[0].report.options;
  merged.channel_target = files[0].report.channel_target;
  LoadOptions& o = merged.options;
  o.threads = o.channels = o.concurrency = o.max_in_flight = 0;
  o.rps = 0;
  o.requests = 0;
  std::unordered_map<std::string, size_t> address_index;  // Into merged.by_address.
  for (const ReportFile& f : files) {
    const LoadReport& r = f.report;
    const LoadOptions& ro = r.options;
    // Each run's channels as written: 0 means one per thread.
    AddSaturating(o.channels, ro.channels > 0 ? ro.channels : ro.threads);
    AddSaturating(o.threads, ro.threads);
    AddSaturating(o.concurrency, ro.concurrency);
    AddSaturating(o.max_in_flight, ro.max_in_flight);
    AddSaturating(o.requests, ro.requests);
    o.rps += ro.rps;
    if (!std::isfinite(o.rps)) {
      return absl::InvalidArgumentError("the runs' rps add up past the largest number");
    }
    o.duration = std::max(o.duration, ro.duration);
    o.warmup = std::max(o.warmup, ro.warmup);
    for (int k = 0; k < kNumCallKinds; ++k) o.mix[k] = std::max(o.mix[k], ro.mix[k]);
    merged.features_known = std::max(merged.features_known, r.features_known);
    merged.interrupted = merged.interrupted || r.interrupted;
    uint64_t lag_count = merged.start_lag.count();
    bool fit = AddChecked(lag_count, r.start_lag.count()) &&
               AddChecked(merged.late_starts, r.late_starts);
    for (int k = 0; k < kNumCallKinds; ++k) fit = fit && MergeChecked(merged.kinds[k], r.kinds[k]);
    if (!fit) return Overflow(f.path);
    merged.start_lag.Merge(r.start_lag);
    for (const AddressCalls& a : r.by_address) {
      const auto [it, added] = address_index.try_emplace(a.address, merged.by_address.size());
      if (added) {
        merged.by_address.push_back(a);
      } else {
        AddressCalls& m = merged.by_address[it->second];
        AddSaturating(m.started, a.started);
        AddSaturating(m.succeeded, a.succeeded);
        AddSaturating(m.failed, a.failed);
      }
    }
  }
  for (const KindStats& kind : merged.kinds) {
    if (!MergeChecked(merged.total, kind)) return Overflow("all kinds together");
  }
  merged.started_at = earliest;
  merged.measured = UnionLength(windows);
  if (merged.measured < latest_end - earliest) {
    notes->push_back(absl::StrCat(
        "the runs' windows leave gaps: rates are over the ",
        absl::FormatDuration(absl::Trunc(merged.measured, absl::Milliseconds(1))),
        " during which at least one run was measuring"));
  }

  // Each run's seconds shifted by its whole-second offset from the
  // earliest start; the sub-second rest is dropped (see the header).
  std::vector<size_t> offsets;
  // The span's whole seconds (it is at most a week, checked above), or
  // more if a run's array reaches further.
  absl::Duration span_rest;
  size_t length = static_cast<size_t>(
      absl::IDivDuration(latest_end - earliest, absl::Seconds(1), &span_rest));
  for (const ReportFile& f : files) {
    absl::Duration rest;
    const int64_t offset =
        absl::IDivDuration(f.report.started_at - earliest, absl::Seconds(1), &rest);
    if (offset < 0 || offset > absl::ToInt64Seconds(kMaxSpan)) {
      return absl::InvalidArgumentError(
          absl::StrCat(f.path, ": its start is out of the runs' span"));
    }
    offsets.push_back(static_cast<size_t>(offset));
    length = std::max(length, offsets.back() + f.report.completions_per_second.size());
  }
  // Every merged report must read back (and merge again): the reader takes
  // at most a week of entries.
  if (length > kMaxReportSeconds) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the runs' completions_per_second would span ", length,
        " seconds when lined up: more than a week"));
  }
  merged.completions_per_second.assign(length, 0);
  for (size_t i = 0; i < files.size(); ++i) {
    const LoadReport& r = files[i].report;
    bool fit = true;
    for (size_t s = 0; s < r.completions_per_second.size(); ++s) {
      fit = fit && AddChecked(merged.completions_per_second[offsets[i] + s],
                              r.completions_per_second[s]);
    }
    const size_t after = offsets[i] + r.completions_per_second.size();
    uint64_t& partial = after < length ? merged.completions_per_second[after]
                                       : merged.partial_second_completions;
    if (!fit || !AddChecked(partial, r.partial_second_completions)) {
      return Overflow(files[i].path);
    }
  }
  return merged;
}

}  // namespace routeguide
