#include "metrics_exporter.h"

#include <dlfcn.h>
#include <unistd.h>

#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "config.h"

namespace routeguide {
namespace {

using Type = MetricFamilySnapshot::Type;
using Labels = std::vector<std::pair<std::string, std::string>>;

constexpr char kModuleName[] = "routeguide-metrics.so";

MetricSample ValueOf(double value, Labels labels = {}) {
  MetricSample sample;
  sample.labels = std::move(labels);
  sample.value = value;
  return sample;
}

MetricSample HistogramOf(const LatencyBuckets& latency, Labels labels = {}) {
  MetricSample sample;
  sample.labels = std::move(labels);
  uint64_t cumulative = 0;
  for (size_t b = 0; b <= kLatencyBucketSeconds.size(); ++b) {
    cumulative += latency.counts[b].load();
    sample.buckets.emplace_back(b < kLatencyBucketSeconds.size()
                                    ? kLatencyBucketSeconds[b]
                                    : std::numeric_limits<double>::infinity(),
                                cumulative);
  }
  sample.sum = latency.sum_ns.load() / 1e9;
  return sample;
}

// The directory of the running binary, with a trailing slash; empty if
// unknown.
std::string BinaryDirectory() {
  std::string path(4096, '\0');
  const ssize_t length = readlink("/proc/self/exe", path.data(), path.size());
  if (length <= 0 || static_cast<size_t>(length) >= path.size()) return "";
  path.resize(static_cast<size_t>(length));
  return path.substr(0, path.rfind('/') + 1);
}

}  // namespace

MetricsSnapshot MetricsExporter::Snapshot(const RouteGuideServer& server,
                                          const FeatureStore& store) {
  const CallStats& stats = server.calls().stats();
  MetricFamilySnapshot started{"routeguide_calls_started_total",
                               "Calls accepted, by method", Type::kCounter, {}};
  MetricFamilySnapshot finished{"routeguide_calls_finished_total",
                                "Calls finished, by method and status code",
                                Type::kCounter, {}};
  MetricFamilySnapshot latency{"routeguide_call_duration_seconds",
                               "Call duration from request to the end, by method",
                               Type::kHistogram, {}};
  MetricFamilySnapshot received{"routeguide_messages_received_total",
                                "Messages received, by method", Type::kCounter, {}};
  MetricFamilySnapshot sent{"routeguide_messages_sent_total",
                            "Messages sent, by method", Type::kCounter, {}};
  for (int m = 0; m < kNumMethods; ++m) {
    const CallStats::MethodStats& s = stats.of(static_cast<Method>(m));
    const std::pair<std::string, std::string> method{"method", kMethodNames[m]};
    started.samples.push_back(ValueOf(s.started.load(), {method}));
    received.samples.push_back(ValueOf(s.messages_in.load(), {method}));
    sent.samples.push_back(ValueOf(s.messages_out.load(), {method}));
    latency.samples.push_back(HistogramOf(s.latency, {method}));
    for (int c = 0; c < kNumStatusCodes; ++c) {
      const uint64_t n = s.finished[c].load();
      if (n > 0) {
        finished.samples.push_back(
            ValueOf(n, {{"code", kStatusCodeNames[c]}, method}));
      }
    }
  }
  MetricsSnapshot families = {
      std::move(started), std::move(finished), std::move(latency),
      std::move(received), std::move(sent),
      {"routeguide_calls_in_flight", "Calls in flight", Type::kGauge,
       {ValueOf(server.calls().active())}},
      {"routeguide_notes_stored", "RouteChat notes kept", Type::kGauge,
       {ValueOf(store.note_count())}},
      {"routeguide_features_loaded", "Features in the store", Type::kGauge,
       {ValueOf(store.feature_count())}}};
  if (const RedisNotesStore* shared = server.shared_notes(); shared != nullptr) {
    families.push_back({"routeguide_notes_store_up",
                        "1 while the shared notes store (Redis) is connected "
                        "and answering in time",
                        Type::kGauge,
                        {ValueOf(shared->up() ? 1 : 0)}});
    families.push_back({"routeguide_notes_store_latency_seconds",
                        "Shared notes store requests, from sending a note "
                        "to Redis's answer",
                        Type::kHistogram,
                        {HistogramOf(shared->stats().latency)}});
    families.push_back({"routeguide_notes_store_pending",
                        "Notes sent to the shared store and not yet answered",
                        Type::kGauge,
                        {ValueOf(static_cast<double>(shared->pending()))}});
    families.push_back({"routeguide_notes_store_failures_total",
                        "Notes the shared store refused, failed or lost",
                        Type::kCounter,
                        {ValueOf(static_cast<double>(shared->stats().failures.load() +
                                                     shared->stats().refused.load()))}});
  }
  return families;
}

absl::StatusOr<std::unique_ptr<MetricsExporter>> MetricsExporter::Start(
    const std::string& address, const RouteGuideServer& server,
    const FeatureStore& store) {
  const std::string beside = BinaryDirectory() + kModuleName;
  const std::string installed =
      absl::StrCat(ROUTEGUIDE_METRICS_MODULE_DIR, "/", kModuleName);
  if (access(beside.c_str(), R_OK) == 0) {
    return Start(address, server, store, beside);
  }
  if (access(installed.c_str(), R_OK) == 0) {
    return Start(address, server, store, installed);
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "no metrics module: neither ", beside, " nor ", installed,
      " exists (building server/routeguide-server builds it beside the "
      "binary; meson install puts it in the second place)"));
}

absl::StatusOr<std::unique_ptr<MetricsExporter>> MetricsExporter::Start(
    const std::string& address, const RouteGuideServer& server,
    const FeatureStore& store, const std::string& module_path) {
  // Never unloaded: civetweb's threads are gone once the endpoint stops,
  // but a module's code is not worth the risk of unmapping for a few
  // hundred kilobytes.
  void* module = dlopen(module_path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (module == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot load the metrics module: ", dlerror()));
  }
  auto abi = reinterpret_cast<RouteguideMetricsAbiFn>(
      dlsym(module, "routeguide_metrics_abi"));
  auto start = reinterpret_cast<RouteguideMetricsStartFn>(
      dlsym(module, "routeguide_metrics_start"));
  auto stop = reinterpret_cast<RouteguideMetricsStopFn>(
      dlsym(module, "routeguide_metrics_stop"));
  if (abi == nullptr || start == nullptr || stop == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        module_path, " is not a routeguide metrics module (no "
                     "routeguide_metrics_abi/start/stop)"));
  }
  if (abi() != MetricsModuleAbiTag()) {
    return absl::FailedPreconditionError(absl::StrCat(
        module_path, " was built for another version of the server (ABI tag ",
        abi(), ", this server's ", MetricsModuleAbiTag(), ")"));
  }
  std::unique_ptr<MetricsExporter> self(new MetricsExporter(server, store));
  std::string error;
  self->endpoint_ = start(
      address.c_str(),
      [](void* context, MetricsSnapshot* out) {
        const auto* exporter = static_cast<const MetricsExporter*>(context);
        *out = Snapshot(exporter->server_, exporter->store_);
      },
      self.get(), &self->port_, &error);
  if (self->endpoint_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address, ": ", error));
  }
  self->stop_ = stop;
  return self;
}

MetricsExporter::~MetricsExporter() {
  if (endpoint_ != nullptr) stop_(endpoint_);
}

}  // namespace routeguide
