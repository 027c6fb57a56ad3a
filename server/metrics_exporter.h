#ifndef ROUTEGUIDE_SERVER_METRICS_EXPORTER_H_
#define ROUTEGUIDE_SERVER_METRICS_EXPORTER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "feature_store.h"
#include "metrics_snapshot.h"
#include "route_guide_server.h"

namespace routeguide {

// Serves Prometheus metrics at http://ADDRESS/metrics: calls started and
// finished by method and status code, latency histograms by method, calls
// in flight, messages in and out, notes stored, features loaded, and the
// shared notes store's health. The figures are read from the server's
// lock-free counters when scraped, so serving calls costs nothing extra.
// `server` and `store` must outlive the exporter.
//
// The HTTP side is prometheus-cpp, in a module of its own
// (routeguide-metrics.so, metrics_snapshot.h) opened here, so that a server
// without --metrics_address never loads it.
class MetricsExporter {
 public:
  // The module from the server binary's directory, else from where it is
  // installed (ROUTEGUIDE_METRICS_MODULE_DIR); when neither has it, the
  // error names both.
  static absl::StatusOr<std::unique_ptr<MetricsExporter>> Start(
      const std::string& address, const RouteGuideServer& server,
      const FeatureStore& store);
  // The module at `module_path`.
  static absl::StatusOr<std::unique_ptr<MetricsExporter>> Start(
      const std::string& address, const RouteGuideServer& server,
      const FeatureStore& store, const std::string& module_path);
  ~MetricsExporter();
  MetricsExporter(const MetricsExporter&) = delete;
  MetricsExporter& operator=(const MetricsExporter&) = delete;

  int port() const { return port_; }

  // The figures of the moment, as scrapes get them.
  static MetricsSnapshot Snapshot(const RouteGuideServer& server,
                                  const FeatureStore& store);

 private:
  MetricsExporter(const RouteGuideServer& server, const FeatureStore& store)
      : server_(server), store_(store) {}

  const RouteGuideServer& server_;
  const FeatureStore& store_;
  RouteguideMetricsStopFn stop_ = nullptr;
  void* endpoint_ = nullptr;
  int port_ = 0;
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_METRICS_EXPORTER_H_
