// `routeguide-client report merge`: one report of several load runs made
// at the same time (from several machines, say), with exact histograms.
#ifndef ROUTEGUIDE_CLIENT_REPORT_MERGE_H_
#define ROUTEGUIDE_CLIENT_REPORT_MERGE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "load_generator.h"
#include "report_file.h"

namespace routeguide {

// a += b, or false (a unchanged) when the sum overflows 64 bits: reports
// read from files may hold any count, and sums must not wrap silently.
inline bool AddChecked(uint64_t& a, uint64_t b) {
  uint64_t sum;
  if (__builtin_add_overflow(a, b, &sum)) return false;
  a = sum;
  return true;
}

// The sum of the counts of failed_by_code, and ok + wrong_answer + failed:
// false when either overflows 64 bits.
bool CountsFit(const KindStats& s);

// into.Merge(from), or false (into unchanged) when a count or histogram
// count would overflow 64 bits, or the result's CountsFit would not.
bool MergeChecked(KindStats& into, const KindStats& from);

// How two runs differ in what makes their figures comparable: the mix,
// target, channel target, open or closed loop, the arrival process (of
// two open-loop runs: uniform or poisson), and the calls' shapes
// (route_points, chat_notes, chat_locations, batch_writes, hit_ratio,
// rect_degrees, list_rect, deadline). One line per difference; empty when they can be
// merged. Load size (threads, channels, concurrency, rps, duration) may
// differ: merging adds it up.
std::vector<std::string> SettingsDifferences(const LoadReport& a, const LoadReport& b);

// Merges `files` (at least one): counts and messages add up, histograms
// merge exactly, by_address sums by address. The window is the union of
// the runs' windows by wall clock: started_at is the earliest start,
// `measured` the time during which at least one run was measuring (the
// span from first start to last end when they overlap), and rates are
// over it. completions_per_second is lined up by wall clock over the
// whole seconds from the first start to the last end: each run's array is
// shifted by the whole seconds between its start and the earliest
// (sub-second offsets are truncated, so an entry may mix up to two
// adjacent wall-clock seconds); a run's partial second goes into the entry
// after its last whole one, or into partial_second_completions when no
// merged entry is there.
//
// Settings: the first report's, with threads, channels, concurrency, rps,
// max_in_flight and requests added up, duration and warm-up the longest.
//
// FAILED_PRECONDITION (with a message naming the files and what differs)
// for a v1 report (no histograms: even with `force`), runs spanning more
// than a week from the first start to the last end, and runs whose SettingsDifferences are not empty unless
// `force`; forced, each kind's mix weight is the largest any run had, and
// `notes` gets a line per difference.
absl::StatusOr<LoadReport> MergeReports(const std::vector<ReportFile>& files, bool force,
                                        std::vector<std::string>* notes);

}  // namespace routeguide

#endif  // ROUTEGUIDE_CLIENT_REPORT_MERGE_H_
