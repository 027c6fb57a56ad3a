#ifndef ROUTEGUIDE_SERVER_METRICS_EXPORTER_H_
#define ROUTEGUIDE_SERVER_METRICS_EXPORTER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "feature_store.h"
#include "route_guide_server.h"

namespace prometheus {
class Exposer;
}

namespace routeguide {

// Serves Prometheus metrics at http://ADDRESS/metrics (prometheus-cpp):
// calls started and finished by method and status code, latency histograms
// by method, calls in flight, messages in and out, notes stored, features
// loaded. The figures are read from the server's lock-free counters when
// scraped, so serving calls costs nothing extra. `server` and `store` must
// outlive the exporter.
class MetricsExporter {
 public:
  static absl::StatusOr<std::unique_ptr<MetricsExporter>> Start(
      const std::string& address, const RouteGuideServer& server,
      const FeatureStore& store);
  ~MetricsExporter();

  int port() const { return port_; }

 private:
  MetricsExporter() = default;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<void> collectable_;
  int port_ = 0;
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_METRICS_EXPORTER_H_
