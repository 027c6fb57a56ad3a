#ifndef ROUTEGUIDE_SERVER_CALL_STATS_H_
#define ROUTEGUIDE_SERVER_CALL_STATS_H_

#include <array>
#include <atomic>
#include <cstdint>

#include "absl/time/time.h"
#include "status_codes.h"

namespace routeguide {

// The server's methods, for per-method figures.
enum class Method : uint8_t {
  kGetFeature,
  kListFeatures,
  kRecordRoute,
  kRouteChat,
  kHealthCheck,
  kCount
};
inline constexpr int kNumMethods = static_cast<int>(Method::kCount);
inline constexpr std::array<const char*, kNumMethods> kMethodNames = {
    "GetFeature", "ListFeatures", "RecordRoute", "RouteChat", "Check"};

// Upper bounds of the latency buckets, in seconds (the last is +Inf).
inline constexpr std::array<double, 14> kLatencyBucketSeconds = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,  0.05,    0.1,    0.25,  1,      10,    60};

// Counts per method: calls started and finished by status code, messages
// in and out, and a latency histogram. Lock-free (relaxed atomics, one
// cache line's worth of contention per method), so every call can record.
class CallStats {
 public:
  struct MethodStats {
    std::atomic<uint64_t> started{0};
    std::array<std::atomic<uint64_t>, kNumStatusCodes> finished{};
    std::atomic<uint64_t> messages_in{0};
    std::atomic<uint64_t> messages_out{0};
    std::array<std::atomic<uint64_t>, kLatencyBucketSeconds.size() + 1> buckets{};
    std::atomic<uint64_t> latency_sum_ns{0};
  };

  void Started(Method method) {
    At(method).started.fetch_add(1, std::memory_order_relaxed);
  }
  void Finished(Method method, int code, absl::Duration latency,
                uint64_t messages_in, uint64_t messages_out) {
    MethodStats& stats = At(method);
    stats.finished[code >= 0 && code < kNumStatusCodes ? code : 2].fetch_add(
        1, std::memory_order_relaxed);
    stats.messages_in.fetch_add(messages_in, std::memory_order_relaxed);
    stats.messages_out.fetch_add(messages_out, std::memory_order_relaxed);
    const double seconds = absl::ToDoubleSeconds(latency);
    size_t bucket = 0;
    while (bucket < kLatencyBucketSeconds.size() &&
           seconds > kLatencyBucketSeconds[bucket]) {
      ++bucket;
    }
    stats.buckets[bucket].fetch_add(1, std::memory_order_relaxed);
    stats.latency_sum_ns.fetch_add(
        static_cast<uint64_t>(absl::ToInt64Nanoseconds(latency)),
        std::memory_order_relaxed);
  }
  const MethodStats& of(Method method) const {
    return methods_[static_cast<int>(method)];
  }

 private:
  MethodStats& At(Method method) { return methods_[static_cast<int>(method)]; }
  std::array<MethodStats, kNumMethods> methods_;
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_CALL_STATS_H_
