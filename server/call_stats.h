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
  kServerReflectionInfo,
  kCount
};
inline constexpr int kNumMethods = static_cast<int>(Method::kCount);
inline constexpr std::array<const char*, kNumMethods> kMethodNames = {
    "GetFeature", "ListFeatures", "RecordRoute", "RouteChat", "Check",
    "ServerReflectionInfo"};

// Upper bounds of the latency buckets, in seconds (the last is +Inf).
inline constexpr std::array<double, 14> kLatencyBucketSeconds = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,  0.05,    0.1,    0.25,  1,      10,    60};

// A latency histogram over kLatencyBucketSeconds (the last bucket is
// +Inf), lock-free (relaxed atomics) so that anything can record.
struct LatencyBuckets {
  std::array<std::atomic<uint64_t>, kLatencyBucketSeconds.size() + 1> counts{};
  std::atomic<uint64_t> sum_ns{0};

  void Record(absl::Duration latency) {
    const double seconds = absl::ToDoubleSeconds(latency);
    size_t bucket = 0;
    while (bucket < kLatencyBucketSeconds.size() &&
           seconds > kLatencyBucketSeconds[bucket]) {
      ++bucket;
    }
    counts[bucket].fetch_add(1, std::memory_order_relaxed);
    sum_ns.fetch_add(static_cast<uint64_t>(absl::ToInt64Nanoseconds(latency)),
                     std::memory_order_relaxed);
  }
};

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
    LatencyBuckets latency;
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
    stats.latency.Record(latency);
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
