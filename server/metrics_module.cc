// routeguide-metrics.so: Prometheus's HTTP endpoint (prometheus-cpp) for
// the server, opened with dlopen only when --metrics_address is set (see
// metrics_snapshot.h). Only the three functions at the bottom are exported
// (and, by prometheus-cpp's own attributes, some of its type information).
#include <exception>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "metrics_snapshot.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"
#include "prometheus/metric_family.h"

namespace routeguide {
namespace {

prometheus::MetricType ToPrometheus(MetricFamilySnapshot::Type type) {
  switch (type) {
    case MetricFamilySnapshot::Type::kGauge:
      return prometheus::MetricType::Gauge;
    case MetricFamilySnapshot::Type::kHistogram:
      return prometheus::MetricType::Histogram;
    case MetricFamilySnapshot::Type::kCounter:
      break;
  }
  return prometheus::MetricType::Counter;
}

prometheus::ClientMetric ToPrometheus(const MetricSample& sample,
                                      MetricFamilySnapshot::Type type) {
  prometheus::ClientMetric metric;
  for (const auto& [name, value] : sample.labels) metric.label.push_back({name, value});
  switch (type) {
    case MetricFamilySnapshot::Type::kCounter:
      metric.counter.value = sample.value;
      break;
    case MetricFamilySnapshot::Type::kGauge:
      metric.gauge.value = sample.value;
      break;
    case MetricFamilySnapshot::Type::kHistogram:
      for (const auto& [bound, cumulative] : sample.buckets) {
        metric.histogram.bucket.push_back({cumulative, bound});
      }
      metric.histogram.sample_count =
          sample.buckets.empty() ? 0 : sample.buckets.back().second;
      metric.histogram.sample_sum = sample.sum;
      break;
  }
  return metric;
}

class SnapshotCollectable final : public prometheus::Collectable {
 public:
  SnapshotCollectable(RouteguideMetricsSnapshotFn snapshot, void* context)
      : snapshot_(snapshot), context_(context) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    MetricsSnapshot figures;
    snapshot_(context_, &figures);
    std::vector<prometheus::MetricFamily> families;
    families.reserve(figures.size());
    for (const MetricFamilySnapshot& family : figures) {
      prometheus::MetricFamily out{family.name, family.help,
                                   ToPrometheus(family.type), {}};
      for (const MetricSample& sample : family.samples) {
        out.metric.push_back(ToPrometheus(sample, family.type));
      }
      families.push_back(std::move(out));
    }
    return families;
  }

 private:
  const RouteguideMetricsSnapshotFn snapshot_;
  void* const context_;
};

struct Endpoint {
  std::unique_ptr<prometheus::Exposer> exposer;
  std::shared_ptr<SnapshotCollectable> collectable;
};

}  // namespace
}  // namespace routeguide

extern "C" __attribute__((visibility("default"))) uint64_t routeguide_metrics_abi() {
  return MetricsModuleAbiTag();
}

// No exception leaves: the caller is C as far as the ABI goes.
extern "C" __attribute__((visibility("default"))) void* routeguide_metrics_start(
    const char* address, RouteguideMetricsSnapshotFn snapshot, void* context,
    int* port, std::string* error) {
  try {
    auto endpoint = std::make_unique<routeguide::Endpoint>();
    endpoint->exposer = std::make_unique<prometheus::Exposer>(address);
    endpoint->collectable =
        std::make_shared<routeguide::SnapshotCollectable>(snapshot, context);
    endpoint->exposer->RegisterCollectable(endpoint->collectable);
    const std::vector<int> ports = endpoint->exposer->GetListeningPorts();
    *port = ports.empty() ? 0 : ports.front();
    return endpoint.release();
  } catch (const std::exception& failure) {
    *error = failure.what();
  } catch (...) {
    *error = "unknown error";
  }
  return nullptr;
}

extern "C" __attribute__((visibility("default"))) void routeguide_metrics_stop(
    void* handle) {
  // The exposer's destructor stops its HTTP server and joins its threads,
  // so no scrape runs after this.
  delete static_cast<routeguide::Endpoint*>(handle);
}

// The types the server casts dlsym's results to.
static_assert(std::is_same_v<decltype(&routeguide_metrics_abi),
                             RouteguideMetricsAbiFn>);
static_assert(std::is_same_v<decltype(&routeguide_metrics_start),
                             RouteguideMetricsStartFn>);
static_assert(std::is_same_v<decltype(&routeguide_metrics_stop),
                             RouteguideMetricsStopFn>);
