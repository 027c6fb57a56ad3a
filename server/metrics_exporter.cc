#include "metrics_exporter.h"

#include <exception>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"
#include "prometheus/metric_family.h"

namespace routeguide {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

ClientMetric WithLabels(std::vector<ClientMetric::Label> labels) {
  ClientMetric metric;
  metric.label = std::move(labels);
  return metric;
}

ClientMetric CounterOf(double value, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric metric = WithLabels(std::move(labels));
  metric.counter.value = value;
  return metric;
}

ClientMetric GaugeOf(double value) {
  ClientMetric metric;
  metric.gauge.value = value;
  return metric;
}

ClientMetric HistogramOf(const LatencyBuckets& latency,
                         std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric histogram = WithLabels(std::move(labels));
  uint64_t cumulative = 0;
  for (size_t b = 0; b <= kLatencyBucketSeconds.size(); ++b) {
    cumulative += latency.counts[b].load();
    histogram.histogram.bucket.push_back(
        {cumulative, b < kLatencyBucketSeconds.size()
                         ? kLatencyBucketSeconds[b]
                         : std::numeric_limits<double>::infinity()});
  }
  histogram.histogram.sample_count = cumulative;
  histogram.histogram.sample_sum = latency.sum_ns.load() / 1e9;
  return histogram;
}

class ServerCollectable final : public prometheus::Collectable {
 public:
  ServerCollectable(const RouteGuideServer& server, const FeatureStore& store)
      : server_(server), store_(store) {}

  std::vector<MetricFamily> Collect() const override {
    const CallStats& stats = server_.calls().stats();
    MetricFamily started{"routeguide_calls_started_total",
                         "Calls accepted, by method", MetricType::Counter, {}};
    MetricFamily finished{"routeguide_calls_finished_total",
                          "Calls finished, by method and status code",
                          MetricType::Counter, {}};
    MetricFamily latency{"routeguide_call_duration_seconds",
                         "Call duration from request to the end, by method",
                         MetricType::Histogram, {}};
    MetricFamily received{"routeguide_messages_received_total",
                          "Messages received, by method", MetricType::Counter, {}};
    MetricFamily sent{"routeguide_messages_sent_total",
                      "Messages sent, by method", MetricType::Counter, {}};
    for (int m = 0; m < kNumMethods; ++m) {
      const CallStats::MethodStats& s = stats.of(static_cast<Method>(m));
      const ClientMetric::Label method{"method", kMethodNames[m]};
      started.metric.push_back(CounterOf(s.started.load(), {method}));
      received.metric.push_back(CounterOf(s.messages_in.load(), {method}));
      sent.metric.push_back(CounterOf(s.messages_out.load(), {method}));
      ClientMetric histogram = HistogramOf(s.latency, {method});
      latency.metric.push_back(std::move(histogram));
      for (int c = 0; c < kNumStatusCodes; ++c) {
        const uint64_t n = s.finished[c].load();
        if (n > 0) {
          finished.metric.push_back(
              CounterOf(n, {{"code", kStatusCodeNames[c]}, method}));
        }
      }
    }
    MetricFamily in_flight{"routeguide_calls_in_flight", "Calls in flight",
                           MetricType::Gauge,
                           {GaugeOf(server_.calls().active())}};
    MetricFamily notes{"routeguide_notes_stored", "RouteChat notes kept",
                       MetricType::Gauge, {GaugeOf(store_.note_count())}};
    MetricFamily features{"routeguide_features_loaded", "Features in the store",
                          MetricType::Gauge, {GaugeOf(store_.feature_count())}};
    std::vector<MetricFamily> families = {started,   finished, latency, received,
                                          sent,      in_flight, notes,  features};
    if (const RedisNotesStore* shared = server_.shared_notes(); shared != nullptr) {
      families.push_back({"routeguide_notes_store_up",
                          "1 while the shared notes store (Redis) is connected "
                          "and answering in time",
                          MetricType::Gauge,
                          {GaugeOf(shared->up() ? 1 : 0)}});
      families.push_back({"routeguide_notes_store_latency_seconds",
                          "Shared notes store requests, from sending a note "
                          "to Redis's answer",
                          MetricType::Histogram,
                          {HistogramOf(shared->stats().latency)}});
      families.push_back({"routeguide_notes_store_pending",
                          "Notes sent to the shared store and not yet answered",
                          MetricType::Gauge,
                          {GaugeOf(static_cast<double>(shared->pending()))}});
      families.push_back({"routeguide_notes_store_failures_total",
                          "Notes the shared store refused, failed or lost",
                          MetricType::Counter,
                          {CounterOf(static_cast<double>(shared->stats().failures.load() +
                                                         shared->stats().refused.load()))}});
    }
    return families;
  }

 private:
  const RouteGuideServer& server_;
  const FeatureStore& store_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsExporter>> MetricsExporter::Start(
    const std::string& address, const RouteGuideServer& server,
    const FeatureStore& store) {
  std::unique_ptr<MetricsExporter> self(new MetricsExporter());
  try {
    self->exposer_ = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception& error) {
    return absl::UnavailableError(absl::StrCat(
        "cannot serve metrics on ", address, ": ", error.what()));
  }
  auto collectable = std::make_shared<ServerCollectable>(server, store);
  self->exposer_->RegisterCollectable(collectable);
  self->collectable_ = collectable;
  const std::vector<int> ports = self->exposer_->GetListeningPorts();
  self->port_ = ports.empty() ? 0 : ports.front();
  return self;
}

MetricsExporter::~MetricsExporter() = default;

}  // namespace routeguide
