#include "histogram.h"

#include <algorithm>
#include <cmath>

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

uint64_t Histogram::Percentile(double percentile) const {
  if (count_ == 0) return 0;
  const double clamped = std::min(100.0, std::max(0.0, percentile));
  const auto rank = std::max<uint64_t>(
      1, static_cast<uint64_t>(std::ceil(clamped / 100.0 * count_)));
  uint64_t seen = 0;
  for (int bucket = 0; bucket < kBuckets; ++bucket) {
    seen += counts_[bucket];
    if (seen >= rank) {
      const uint64_t middle = BucketStart(bucket) + (BucketWidth(bucket) - 1) / 2;
      return std::min(max_, std::max(min(), middle));
    }
  }
  return max_;
}

}  // namespace routeguide
