#ifndef ROUTEGUIDE_SERVER_METRICS_SNAPSHOT_H_
#define ROUTEGUIDE_SERVER_METRICS_SNAPSHOT_H_

// What crosses between the server and its metrics module
// (routeguide-metrics.so, metrics_module.cc), which the server opens only
// when --metrics_address is set: prometheus-cpp and civetweb are four
// shared libraries whose loading cost every start-up 0.3-0.4 ms
// (docs/benchmarks.md, levers). The module needs none of the server's
// symbols: the server fills a snapshot of plain standard types when
// Prometheus scrapes, and the module turns it into Prometheus's text.
// Both sides are built together, by one compiler, with one libstdc++.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace routeguide {

struct MetricSample {
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;  // Counters and gauges.
  // Histograms: (upper bound, cumulative count) per bucket, +Inf last.
  std::vector<std::pair<double, uint64_t>> buckets;
  double sum = 0;
};

struct MetricFamilySnapshot {
  enum class Type { kCounter, kGauge, kHistogram };
  std::string name;
  std::string help;
  Type type = Type::kCounter;
  std::vector<MetricSample> samples;
};

using MetricsSnapshot = std::vector<MetricFamilySnapshot>;

}  // namespace routeguide

extern "C" {

// The module's build of this header: a module from another build (an older
// install) is refused rather than handed structs it would misread.
// Bump kMetricsModuleAbi when the types above or below change.
inline constexpr int kMetricsModuleAbi = 1;
inline constexpr uint64_t MetricsModuleAbiTag() {
  return (static_cast<uint64_t>(kMetricsModuleAbi) << 48) |
         (sizeof(routeguide::MetricSample) << 32) |
         (sizeof(routeguide::MetricFamilySnapshot) << 16) |
         sizeof(routeguide::MetricsSnapshot);
}
typedef uint64_t (*RouteguideMetricsAbiFn)();

// Fills `out` with the figures of the moment; `context` is the server's.
typedef void (*RouteguideMetricsSnapshotFn)(void* context,
                                            routeguide::MetricsSnapshot* out);

// The module's entry points, found with dlsym by these names:
// routeguide_metrics_abi (MetricsModuleAbiTag() as the module was built),
// routeguide_metrics_start and routeguide_metrics_stop.
//
// Serves http://`address`/metrics, calling `snapshot` at each scrape from
// the module's own threads. Returns a handle, and the port listened on in
// *port; or null, with why in *error.
typedef void* (*RouteguideMetricsStartFn)(const char* address,
                                          RouteguideMetricsSnapshotFn snapshot,
                                          void* context, int* port,
                                          std::string* error);
// Stops serving (no snapshot is taken after it returns) and frees `handle`.
typedef void (*RouteguideMetricsStopFn)(void* handle);
}

#endif  // ROUTEGUIDE_SERVER_METRICS_SNAPSHOT_H_
