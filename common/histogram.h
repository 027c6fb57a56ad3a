#ifndef ROUTEGUIDE_COMMON_HISTOGRAM_H_
#define ROUTEGUIDE_COMMON_HISTOGRAM_H_

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace routeguide {

// A log-linear histogram of non-negative integers (latencies in
// nanoseconds), in the manner of HdrHistogram: values below 256 are counted
// exactly; each power-of-two range above is split into 128 equal buckets, so
// a bucket is at most 1/128 of its values wide and a reported percentile
// (the middle of its bucket, clamped to the recorded min and max) is within
// 0.4% of a recorded value.
//
// Record is O(1) and never allocates or locks: keep one histogram per
// thread and Merge them at the end. Not thread-safe.
class Histogram {
 public:
  Histogram();
  Histogram(const Histogram& other);
  Histogram& operator=(const Histogram& other);
  Histogram(Histogram&&) noexcept = default;
  Histogram& operator=(Histogram&&) noexcept = default;

  void Record(uint64_t value) {
    ++counts_[BucketOf(value)];
    ++count_;
    sum_ += static_cast<double>(value);
    if (value < min_) min_ = value;
    if (value > max_) max_ = value;
  }
  void Merge(const Histogram& other);
  void Clear();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0 : sum_ / count_; }
  double sum() const { return sum_; }

  // The value at `percentile` (0 to 100) by nearest rank; 0 when empty.
  uint64_t Percentile(double percentile) const;

  // The rank (1 to count, count being at least 1) Percentile looks for at
  // `percentile` (clamped to 0 to 100) among `count` values: one near 2^64,
  // whose double rank rounds up to 2^64, gives count.
  static uint64_t RankOf(double percentile, uint64_t count);
  // The value Percentile reports for a rank in `bucket`: the middle of the
  // bucket, clamped to min() and max().
  uint64_t ValueOfBucket(int bucket) const;

  // (bucket, count) of every non-empty bucket, lowest bucket first: with
  // count(), sum(), min() and max() all it takes to rebuild the histogram
  // exactly (FromBuckets), so reports written out can be merged later.
  std::vector<std::pair<int, uint64_t>> NonEmptyBuckets() const;

  // The inverse of NonEmptyBuckets, for histograms read back from a file,
  // which may be hostile: INVALID_ARGUMENT unless the buckets are in range
  // and strictly ascending with non-zero counts, the counts add up to
  // `count` (without overflow), `min` lies in the lowest bucket and `max`
  // in the highest, min <= max (equal when count is 1), and `sum` is finite and between count*min and
  // count*max (give or take rounding). An empty histogram has no buckets
  // and zero count, sum, min and max.
  static absl::StatusOr<Histogram> FromBuckets(
      const std::vector<std::pair<int, uint64_t>>& buckets, uint64_t count,
      double sum, uint64_t min, uint64_t max);

  // Same counts in every bucket, count, sum, min and max: the same
  // percentiles, and the same result of any later Merge.
  friend bool operator==(const Histogram& a, const Histogram& b);
  friend bool operator!=(const Histogram& a, const Histogram& b) { return !(a == b); }

  static constexpr int kExactBelow = 256;
  static constexpr int kSubBuckets = 128;
  static constexpr int kBuckets = kExactBelow + (64 - 8) * kSubBuckets;

  static int BucketOf(uint64_t value) {
    if (value < kExactBelow) return static_cast<int>(value);
    const int top_bit = 63 - __builtin_clzll(value);  // >= 8
    const int sub = static_cast<int>((value >> (top_bit - 7)) & (kSubBuckets - 1));
    return kExactBelow + (top_bit - 8) * kSubBuckets + sub;
  }
  // The smallest value of `bucket`, and how many values it holds.
  static uint64_t BucketStart(int bucket);
  static uint64_t BucketWidth(int bucket);

 private:
  std::unique_ptr<uint64_t[]> counts_;
  uint64_t count_ = 0;
  double sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_COMMON_HISTOGRAM_H_
