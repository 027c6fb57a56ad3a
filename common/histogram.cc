#include "histogram.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace routeguide {

Histogram::Histogram() : counts_(new uint64_t[kBuckets]()) {}

Histogram::Histogram(const Histogram& other) : Histogram() { *this = other; }

Histogram& Histogram::operator=(const Histogram& other) {
  if (this == &other) return *this;
  if (counts_ == nullptr) counts_.reset(new uint64_t[kBuckets]());
  std::copy(other.counts_.get(), other.counts_.get() + kBuckets, counts_.get());
  count_ = other.count_;
  sum_ = other.sum_;
  min_ = other.min_;
  max_ = other.max_;
  return *this;
}

void Histogram::Merge(const Histogram& other) {
  for (int i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void Histogram::Clear() { *this = Histogram(); }

uint64_t Histogram::BucketStart(int bucket) {
  if (bucket < kExactBelow) return static_cast<uint64_t>(bucket);
  const int top_bit = (bucket - kExactBelow) / kSubBuckets + 8;
  const uint64_t sub = static_cast<uint64_t>((bucket - kExactBelow) % kSubBuckets);
  return (static_cast<uint64_t>(kSubBuckets) + sub) << (top_bit - 7);
}

uint64_t Histogram::BucketWidth(int bucket) {
  if (bucket < kExactBelow) return 1;
  const int top_bit = (bucket - kExactBelow) / kSubBuckets + 8;
  return uint64_t{1} << (top_bit - 7);
}

uint64_t Histogram::RankOf(double percentile, uint64_t count) {
  const double clamped = std::min(100.0, std::max(0.0, percentile));
  // A count read from a file may be near 2^64, where the double rank
  // rounds up to 2^64 itself, which no uint64_t holds.
  const double exact_rank = std::ceil(clamped / 100.0 * static_cast<double>(count));
  return exact_rank >= 18446744073709551615.0
             ? count
             : std::max<uint64_t>(1, static_cast<uint64_t>(exact_rank));
}

uint64_t Histogram::ValueOfBucket(int bucket) const {
  const uint64_t middle = BucketStart(bucket) + (BucketWidth(bucket) - 1) / 2;
  return std::min(max_, std::max(min(), middle));
}

uint64_t Histogram::Percentile(double percentile) const {
  if (count_ == 0) return 0;
  const uint64_t rank = RankOf(percentile, count_);
  uint64_t seen = 0;
  for (int bucket = 0; bucket < kBuckets; ++bucket) {
    seen += counts_[bucket];
    if (seen >= rank) return ValueOfBucket(bucket);
  }
  return max_;
}

std::vector<std::pair<int, uint64_t>> Histogram::NonEmptyBuckets() const {
  std::vector<std::pair<int, uint64_t>> buckets;
  for (int bucket = 0; bucket < kBuckets; ++bucket) {
    if (counts_[bucket] > 0) buckets.emplace_back(bucket, counts_[bucket]);
  }
  return buckets;
}

absl::StatusOr<Histogram> Histogram::FromBuckets(
    const std::vector<std::pair<int, uint64_t>>& buckets, uint64_t count,
    double sum, uint64_t min, uint64_t max) {
  Histogram h;
  if (count == 0) {
    if (!buckets.empty() || sum != 0 || min != 0 || max != 0) {
      return absl::InvalidArgumentError(
          "an empty histogram (count 0) must have no buckets and a sum, min "
          "and max of 0");
    }
    return h;
  }
  uint64_t total = 0;
  int previous = -1;
  for (const auto& [bucket, n] : buckets) {
    if (bucket < 0 || bucket >= kBuckets) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bucket index ", bucket, " is out of range (0 to ", kBuckets - 1, ")"));
    }
    if (bucket <= previous) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bucket ", bucket, " comes after bucket ", previous,
          ": buckets must be listed once each, in ascending order"));
    }
    if (n == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("bucket ", bucket, " has count 0: list only non-empty buckets"));
    }
    if (n > UINT64_MAX - total) {
      return absl::InvalidArgumentError("bucket counts overflow 64 bits");
    }
    total += n;
    previous = bucket;
    h.counts_[bucket] = n;
  }
  if (total != count) {
    return absl::InvalidArgumentError(
        absl::StrCat("bucket counts add up to ", total, ", not to count ", count));
  }
  if (min > max) {
    return absl::InvalidArgumentError(absl::StrCat("min ", min, " is above max ", max));
  }
  if (count == 1 && min != max) {
    return absl::InvalidArgumentError(
        absl::StrCat("one value, yet min ", min, " and max ", max, " differ"));
  }
  // Record puts min in the lowest non-empty bucket and max in the highest.
  if (BucketOf(min) != buckets.front().first) {
    return absl::InvalidArgumentError(absl::StrCat(
        "min ", min, " is not in the lowest non-empty bucket ", buckets.front().first));
  }
  if (BucketOf(max) != buckets.back().first) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max ", max, " is not in the highest non-empty bucket ", buckets.back().first));
  }
  // Each value added to the sum lies in [min, max]; the relative slack
  // covers the rounding of a double sum over billions of values.
  const double low = static_cast<double>(count) * static_cast<double>(min);
  const double high = static_cast<double>(count) * static_cast<double>(max);
  if (!std::isfinite(sum) || sum < low * (1 - 1e-6) || sum > high * (1 + 1e-6)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sum ", sum, " cannot be the sum of ", count, " values from ", min, " to ", max));
  }
  h.count_ = count;
  h.sum_ = sum;
  h.min_ = min;
  h.max_ = max;
  return h;
}

bool operator==(const Histogram& a, const Histogram& b) {
  return a.count_ == b.count_ && a.sum_ == b.sum_ && a.min() == b.min() &&
         a.max_ == b.max_ &&
         std::equal(a.counts_.get(), a.counts_.get() + Histogram::kBuckets,
                    b.counts_.get());
}

}  // namespace routeguide
