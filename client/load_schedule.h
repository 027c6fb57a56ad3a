#ifndef ROUTEGUIDE_CLIENT_LOAD_SCHEDULE_H_
#define ROUTEGUIDE_CLIENT_LOAD_SCHEDULE_H_

#include <array>
#include <cstdint>
#include <random>

#include "load_options.h"

namespace routeguide {

// A small, fast generator (splitmix64) for the load's random choices: each
// closed-loop slot has one, so it must be cheap to keep by the hundred
// thousand (std::mt19937_64 is 2.5 KB).
class FastRandom {
 public:
  using result_type = uint64_t;
  explicit FastRandom(uint64_t seed = 1) : state_(seed) {}
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return UINT64_MAX; }
  result_type operator()() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

// Draws call kinds in proportion to the mix's weights; a kind weighing 0 is
// never drawn. The mix must have a positive weight.
class KindPicker {
 public:
  explicit KindPicker(const std::array<double, kNumCallKinds>& mix) : mix_(mix) {
    double sum = 0;
    for (int k = 0; k < kNumCallKinds; ++k) {
      sum += mix[k];
      cumulative_[k] = sum;
    }
  }

  template <typename Random>
  CallKind Pick(Random& random) const {
    std::uniform_real_distribution<double> draw(0, cumulative_.back());
    const double x = draw(random);
    for (int k = 0; k < kNumCallKinds; ++k) {
      if (x < cumulative_[k] && mix_[k] > 0) return static_cast<CallKind>(k);
    }
    // x can only reach the sum by rounding: the last kind with weight.
    for (int k = kNumCallKinds - 1; k > 0; --k) {
      if (mix_[k] > 0) return static_cast<CallKind>(k);
    }
    return CallKind::kGetFeature;
  }

 private:
  std::array<double, kNumCallKinds> mix_;
  std::array<double, kNumCallKinds> cumulative_{};
};

// The open loop's start times, in seconds from the run's start: evenly
// spaced at 1/rps, or a Poisson process of rate rps (exponential gaps).
class ArrivalSchedule {
 public:
  ArrivalSchedule(Arrival arrival, double rps, uint64_t seed)
      : poisson_(arrival == Arrival::kPoisson), rps_(rps), gap_(rps), random_(seed) {}

  // The start time of the next call.
  double Next() {
    const double at = poisson_ ? offset_ : static_cast<double>(index_) / rps_;
    ++index_;
    if (poisson_) offset_ += gap_(random_);
    return at;
  }

 private:
  const bool poisson_;
  const double rps_;
  std::exponential_distribution<double> gap_;
  std::mt19937_64 random_;
  uint64_t index_ = 0;
  double offset_ = 0;
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_CLIENT_LOAD_SCHEDULE_H_
