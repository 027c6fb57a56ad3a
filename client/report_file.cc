#include "report_file.h"

#include <climits>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "load_report.h"
#include "nlohmann/json.hpp"
#include "report_merge.h"
#include "status_codes.h"

namespace routeguide {

LatencyFigures LatencyFigures::Of(const Histogram& h) {
  return {h.count(),          h.mean(),         h.Percentile(50), h.Percentile(90),
          h.Percentile(99),   h.Percentile(99.9), h.max()};
}

namespace {

using Json = nlohmann::json;

// Reads fields and keeps the first error, naming the field by its path
// ("kinds.get.latency_ns.buckets[3]"), so the parse below reads straight
// through and reports one clear message. After an error, reads return
// zero values and nothing more is recorded.
class Reader {
 public:
  explicit Reader(std::string name) : name_(std::move(name)) {}

  bool ok() const { return error_.empty(); }
  absl::Status status() const {
    return ok() ? absl::OkStatus()
                : absl::InvalidArgumentError(absl::StrCat(name_, ": ", error_));
  }
  void Fail(const std::string& field, absl::string_view what) {
    if (ok()) error_ = absl::StrCat(field.empty() ? "the top level" : field, ": ", what);
  }

  static std::string Path(const std::string& parent, absl::string_view key) {
    return parent.empty() ? std::string(key) : absl::StrCat(parent, ".", key);
  }

  // `key` of the object `obj` at `path`; null when it is missing, which is
  // an error unless `optional`.
  const Json* Get(const Json& obj, const std::string& path, absl::string_view key,
                  bool optional = false) {
    if (!obj.is_object()) {
      Fail(path, "must be an object");
      return nullptr;
    }
    const auto it = obj.find(std::string(key));
    if (it == obj.end()) {
      if (!optional) Fail(Path(path, key), "is missing");
      return nullptr;
    }
    return &*it;
  }
  const Json* Object(const Json& obj, const std::string& path, absl::string_view key) {
    const Json* j = Get(obj, path, key);
    if (j != nullptr && !j->is_object()) Fail(Path(path, key), "must be an object");
    return j != nullptr && j->is_object() ? j : nullptr;
  }
  uint64_t Uint(const Json& j, const std::string& path) {
    if (!j.is_number_unsigned()) {
      Fail(path, "must be a non-negative integer");
      return 0;
    }
    return j.get<uint64_t>();
  }
  uint64_t Uint(const Json& obj, const std::string& path, absl::string_view key,
                bool optional = false) {
    const Json* j = Get(obj, path, key, optional);
    return j == nullptr ? 0 : Uint(*j, Path(path, key));
  }
  int64_t Int64(const Json& obj, const std::string& path, absl::string_view key) {
    const uint64_t n = Uint(obj, path, key);
    if (n > INT64_MAX) Fail(Path(path, key), "is too large");
    return ok() ? static_cast<int64_t>(n) : 0;
  }
  int Int(const Json& obj, const std::string& path, absl::string_view key) {
    const uint64_t n = Uint(obj, path, key);
    if (n > INT_MAX) Fail(Path(path, key), "is too large");
    return ok() ? static_cast<int>(n) : 0;
  }
  double Number(const Json& obj, const std::string& path, absl::string_view key) {
    const Json* j = Get(obj, path, key);
    if (j == nullptr) return 0;
    if (!j->is_number() || !std::isfinite(j->get<double>())) {
      Fail(Path(path, key), "must be a finite number");
      return 0;
    }
    return j->get<double>();
  }
  // A number of seconds, as a duration of at most ten years.
  absl::Duration Seconds(const Json& obj, const std::string& path, absl::string_view key) {
    const double seconds = Number(obj, path, key);
    if (seconds < 0 || seconds > 3.2e8) {
      Fail(Path(path, key), "must be from 0 to 3.2e8 seconds");
    }
    return ok() ? absl::Seconds(seconds) : absl::ZeroDuration();
  }
  std::string String(const Json& obj, const std::string& path, absl::string_view key) {
    const Json* j = Get(obj, path, key);
    if (j != nullptr && !j->is_string()) Fail(Path(path, key), "must be a string");
    return j != nullptr && j->is_string() ? j->get<std::string>() : "";
  }
  bool Bool(const Json& obj, const std::string& path, absl::string_view key,
            bool optional = false) {
    const Json* j = Get(obj, path, key, optional);
    if (j != nullptr && !j->is_boolean()) Fail(Path(path, key), "must be true or false");
    return j != nullptr && j->is_boolean() && j->get<bool>();
  }
  // An array at `key`; empty (and an error unless optional) when missing.
  const Json& Array(const Json& obj, const std::string& path, absl::string_view key,
                    bool optional = false) {
    static const Json kEmpty = Json::array();
    const Json* j = Get(obj, path, key, optional);
    if (j == nullptr) return kEmpty;
    if (!j->is_array()) {
      Fail(Path(path, key), "must be an array");
      return kEmpty;
    }
    return *j;
  }

 private:
  const std::string name_;
  std::string error_;
};

// An RFC 3339 time of a real run: absl::ParseTime also takes
// "infinite-past" and "infinite-future", and years far outside any run's,
// which arithmetic on the time (a merge's span) cannot use.
bool ParseRunTime(const std::string& text, absl::Time* t) {
  std::string error;
  return absl::ParseTime(absl::RFC3339_full, text, t, &error) &&
         *t >= absl::UnixEpoch() &&
         *t < absl::FromCivil(absl::CivilSecond(10000, 1, 1), absl::UTCTimeZone());
}

// A latency object; its histogram too when the report has them.
void ReadLatency(Reader& in, const Json& j, const std::string& path, bool histograms,
                 LatencyFigures* figures, Histogram* histogram) {
  if (!j.is_object()) return in.Fail(path, "must be an object");
  figures->count = in.Uint(j, path, "count");
  figures->mean = in.Number(j, path, "mean");
  figures->p50 = in.Uint(j, path, "p50");
  figures->p90 = in.Uint(j, path, "p90");
  figures->p99 = in.Uint(j, path, "p99");
  figures->p99_9 = in.Uint(j, path, "p99_9");
  figures->max = in.Uint(j, path, "max");
  if (!histograms) return;
  if (const std::string layout = in.String(j, path, "layout");
      in.ok() && layout != kHistogramLayout) {
    return in.Fail(Reader::Path(path, "layout"),
                   absl::StrCat("is \"", layout, "\"; this client reads only \"",
                                kHistogramLayout, "\""));
  }
  const uint64_t min = in.Uint(j, path, "min");
  const double sum = in.Number(j, path, "sum");
  const std::string buckets_path = Reader::Path(path, "buckets");
  const Json& list = in.Array(j, path, "buckets");
  if (list.size() > static_cast<size_t>(Histogram::kBuckets)) {
    return in.Fail(buckets_path, "lists more buckets than there are");
  }
  std::vector<std::pair<int, uint64_t>> buckets;
  for (size_t i = 0; i < list.size() && in.ok(); ++i) {
    const std::string item = absl::StrCat(buckets_path, "[", i, "]");
    if (!list[i].is_array() || list[i].size() != 2) {
      return in.Fail(item, "must be a pair [bucket index, count]");
    }
    const uint64_t bucket = in.Uint(list[i][0], item + "[0]");
    const uint64_t count = in.Uint(list[i][1], item + "[1]");
    if (bucket >= static_cast<uint64_t>(Histogram::kBuckets)) {
      return in.Fail(item, absl::StrCat("bucket index ", bucket, " is out of range (0 to ",
                                        Histogram::kBuckets - 1, ")"));
    }
    buckets.emplace_back(static_cast<int>(bucket), count);
  }
  if (!in.ok()) return;
  absl::StatusOr<Histogram> h =
      Histogram::FromBuckets(buckets, figures->count, sum, min, figures->max);
  if (!h.ok()) return in.Fail(path, h.status().message());
  *histogram = *std::move(h);
}

void ReadKind(Reader& in, const Json& j, const std::string& path, bool histograms,
              KindStats* kind, LatencyFigures* latency) {
  if (!j.is_object()) return in.Fail(path, "must be an object");
  kind->started = in.Uint(j, path, "started");
  kind->ok = in.Uint(j, path, "ok");
  kind->wrong_answer = in.Uint(j, path, "wrong_answer");
  const Json* by_code = in.Object(j, path, "failed_by_code");
  if (by_code != nullptr) {
    const std::string codes_path = Reader::Path(path, "failed_by_code");
    for (const auto& [name, count] : by_code->items()) {
      int code = 1;
      while (code < kNumStatusCodes && name != kStatusCodeNames[code]) ++code;
      if (code == kNumStatusCodes) {
        return in.Fail(codes_path, absl::StrCat("\"", name,
                                                "\" is not the name of a gRPC error code"));
      }
      kind->failed_by_code[code] = in.Uint(count, Reader::Path(codes_path, name));
    }
  }
  if (in.ok() && !CountsFit(*kind)) return in.Fail(path, "its counts overflow 64 bits");
  if (in.Uint(j, path, "failed") != kind->failed() && in.ok()) {
    return in.Fail(Reader::Path(path, "failed"), "is not the sum of failed_by_code");
  }
  if (in.Uint(j, path, "completed") != kind->completed() && in.ok()) {
    return in.Fail(Reader::Path(path, "completed"),
                   "is not ok + wrong_answer + failed");
  }
  kind->messages_sent = in.Uint(j, path, "messages_sent");
  kind->messages_received = in.Uint(j, path, "messages_received");
  if (const Json* l = in.Get(j, path, "latency_ns")) {
    ReadLatency(in, *l, Reader::Path(path, "latency_ns"), histograms, latency,
                &kind->latency);
  }
  LatencyFigures unused;
  if (const Json* l = in.Get(j, path, "first_message_latency_ns", true)) {
    ReadLatency(in, *l, Reader::Path(path, "first_message_latency_ns"), histograms,
                &unused, &kind->first_message);
  }
  if (const Json* l = in.Get(j, path, "reply_latency_ns", true)) {
    ReadLatency(in, *l, Reader::Path(path, "reply_latency_ns"), histograms, &unused,
                &kind->reply);
  }
}

void ReadSettings(Reader& in, const Json& s, LoadReport* r) {
  const std::string p = "settings";
  LoadOptions& o = r->options;
  o.target = in.String(s, p, "target");
  r->channel_target = in.String(s, p, "channel_target");
  o.threads = in.Int(s, p, "threads");
  o.channels = in.Int(s, p, "channels");
  if (const Json* mix = in.Object(s, p, "mix")) {
    for (int k = 0; k < kNumCallKinds; ++k) {
      o.mix[k] = in.Number(*mix, "settings.mix", kCallKindNames[k]);
      if (o.mix[k] < 0) in.Fail(absl::StrCat("settings.mix.", kCallKindNames[k]), "is negative");
    }
  }
  const std::string mode = in.String(s, p, "mode");
  o.concurrency = in.Int(s, p, "concurrency");
  o.rps = in.Number(s, p, "rps");
  const std::string arrival = in.String(s, p, "arrival");
  if (in.ok() && (mode == "open") != (o.rps > 0)) {
    in.Fail("settings.mode", "must be \"open\" when rps > 0 and \"closed\" otherwise");
  }
  if (in.ok() && arrival != "uniform" && arrival != "poisson") {
    in.Fail("settings.arrival", "must be \"uniform\" or \"poisson\"");
  }
  o.arrival = o.rps <= 0 ? Arrival::kClosedLoop
              : arrival == "poisson" ? Arrival::kPoisson : Arrival::kUniform;
  o.max_in_flight = in.Int(s, p, "max_in_flight");
  o.duration = in.Seconds(s, p, "duration_seconds");
  o.requests = in.Int64(s, p, "requests");
  o.warmup = in.Seconds(s, p, "warmup_seconds");
  // Added in v2's life: optional.
  if (const Json* at = in.Get(s, p, "start_at", true); at && !at->is_null()) {
    absl::Time start_at;
    if (!at->is_string() || !ParseRunTime(at->get<std::string>(), &start_at)) {
      in.Fail("settings.start_at", "must be null or an RFC 3339 time from 1970 to 9999");
    } else {
      o.start_at = start_at;
    }
  }
  o.hit_ratio = in.Number(s, p, "hit_ratio");
  o.rect_degrees = in.Number(s, p, "rect_degrees");
  // Added during v1's life, like a few fields below: optional there.
  if (const Json* rect = in.Get(s, p, "list_rect_e7", true); rect && !rect->is_null()) {
    std::array<int32_t, 4> e7{};
    if (!rect->is_array() || rect->size() != 4) {
      in.Fail("settings.list_rect_e7", "must be null or [lo_lat, lo_lon, hi_lat, hi_lon]");
    }
    for (size_t i = 0; i < 4 && in.ok(); ++i) {
      if (!(*rect)[i].is_number_integer() || (*rect)[i].get<int64_t>() < INT32_MIN ||
          (*rect)[i].get<int64_t>() > INT32_MAX) {
        in.Fail("settings.list_rect_e7", "must hold four 32-bit integers");
      } else {
        e7[i] = static_cast<int32_t>((*rect)[i].get<int64_t>());
      }
    }
    if (in.ok()) o.list_rect = GeoRect::FromCorners({e7[0], e7[1]}, {e7[2], e7[3]});
  }
  o.route_points = in.Int(s, p, "route_points");
  o.chat_notes = in.Int(s, p, "chat_notes");
  o.chat_locations = in.Int(s, p, "chat_locations");
  // Reports written before the flag existed sent each message on its own.
  o.batch_writes = in.Bool(s, p, "batch_writes", /*optional=*/true);
  o.deadline = in.Seconds(s, p, "deadline_seconds");
  const Json& metadata = in.Array(s, p, "metadata");
  for (size_t i = 0; i < metadata.size() && in.ok(); ++i) {
    const std::string item = metadata[i].is_string() ? metadata[i].get<std::string>() : "";
    const size_t colon = item.find(':');
    if (colon == std::string::npos) {
      in.Fail(absl::StrCat("settings.metadata[", i, "]"), "must be a \"key:value\" string");
    } else {
      o.metadata.emplace_back(item.substr(0, colon), item.substr(colon + 1));
    }
  }
  o.seed = in.Uint(s, p, "seed");
  o.max_error_rate = in.Number(s, p, "max_error_rate");
}

}  // namespace

absl::StatusOr<ReportFile> ParseReport(absl::string_view json_text,
                                       const std::string& name) {
  Json root;
  try {
    root = Json::parse(json_text.begin(), json_text.end());
  } catch (const Json::exception& error) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": not JSON: ", error.what()));
  }
  Reader in(name);
  ReportFile file;
  file.path = name;
  const std::string schema = in.String(root, "", "schema");
  if (!in.ok()) return in.status();
  if (schema == kReportSchemaV1) {
    file.version = 1;
  } else if (schema != kReportSchema) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": schema: \"", schema, "\" is not a load report this client reads (",
                     kReportSchemaV1, " or ", kReportSchema, ")"));
  }
  const bool histograms = file.has_histograms();
  LoadReport& r = file.report;
  if (const Json* settings = in.Object(root, "", "settings")) ReadSettings(in, *settings, &r);
  const std::string started_at = in.String(root, "", "started_at");
  std::string time_error;
  if (in.ok() && !absl::ParseTime(absl::RFC3339_full, started_at, &r.started_at, &time_error)) {
    in.Fail("started_at", absl::StrCat("is not an RFC 3339 time: ", time_error));
  } else if (in.ok() && !ParseRunTime(started_at, &r.started_at)) {
    in.Fail("started_at", "must be a time from 1970 to 9999");
  }
  r.measured = in.Seconds(root, "", "measured_seconds");
  r.features_known = in.Uint(root, "", "features_known");
  r.interrupted = in.Bool(root, "", "interrupted", true);
  if (const Json* kinds = in.Object(root, "", "kinds")) {
    for (int k = 0; k < kNumCallKinds; ++k) {
      if (const Json* kind = in.Get(*kinds, "kinds", kCallKindNames[k])) {
        ReadKind(in, *kind, absl::StrCat("kinds.", kCallKindNames[k]), histograms,
                 &r.kinds[k], &file.latency[k]);
      }
    }
  }
  for (const KindStats& kind : r.kinds) {
    if (in.ok() && !MergeChecked(r.total, kind)) in.Fail("total", "its counts overflow 64 bits");
  }
  KindStats total;
  if (const Json* j = in.Get(root, "", "total")) {
    // Histograms left out: the kinds' merged are the total's.
    ReadKind(in, *j, "total", false, &total, &file.latency[kAllKinds]);
  }
  if (in.ok() && (total.started != r.total.started || total.ok != r.total.ok ||
                  total.wrong_answer != r.total.wrong_answer ||
                  total.failed_by_code != r.total.failed_by_code ||
                  total.messages_sent != r.total.messages_sent ||
                  total.messages_received != r.total.messages_received)) {
    in.Fail("total", "its counts are not the sums of the kinds' counts");
  }
  if (histograms && in.ok() && file.latency[kAllKinds].count != r.total.latency.count()) {
    in.Fail("total.latency_ns.count", "is not the sum of the kinds' latency counts");
  }
  const Json& per_second = in.Array(root, "", "completions_per_second");
  // One entry per whole second of the window, or for a merge of runs with
  // gaps between them, of the span from the first start to the last end,
  // which a merge keeps within a week (kMaxReportSeconds): that bounds it
  // for every report, merged or not, and with it the timelines a merge
  // lines up.
  if (in.ok() && per_second.size() > kMaxReportSeconds) {
    in.Fail("completions_per_second",
            absl::StrCat("has more than ", kMaxReportSeconds, " entries (a week of seconds)"));
  }
  for (size_t i = 0; i < per_second.size() && in.ok(); ++i) {
    r.completions_per_second.push_back(
        in.Uint(per_second[i], absl::StrCat("completions_per_second[", i, "]")));
  }
  r.partial_second_completions = in.Uint(root, "", "partial_second_completions", true);
  const Json& by_address = in.Array(root, "", "by_address", true);
  if (in.ok() && by_address.size() > kMaxReportAddresses) {
    in.Fail("by_address", absl::StrCat("has more than ", kMaxReportAddresses, " entries"));
  }
  std::unordered_set<std::string> addresses;
  for (size_t i = 0; i < by_address.size() && in.ok(); ++i) {
    const std::string path = absl::StrCat("by_address[", i, "]");
    AddressCalls& a = r.by_address.emplace_back();
    a.address = in.String(by_address[i], path, "address");
    if (in.ok() && !addresses.insert(a.address).second) {
      in.Fail(path + ".address", absl::StrCat("\"", a.address, "\" is listed twice"));
    }
    a.started = in.Int64(by_address[i], path, "started");
    a.succeeded = in.Int64(by_address[i], path, "succeeded");
    a.failed = in.Int64(by_address[i], path, "failed");
  }
  if (const Json* lag = in.Get(root, "", "start_lag_ns", true)) {
    LatencyFigures unused;
    ReadLatency(in, *lag, "start_lag_ns", histograms, &unused, &r.start_lag);
    r.late_starts = in.Uint(*lag, "start_lag_ns", "late_starts");
  }
  if (!in.ok()) return in.status();
  // v2's figures are its histograms': the same, computed alike.
  if (histograms) {
    for (int k = 0; k < kNumCallKinds; ++k) {
      file.latency[k] = LatencyFigures::Of(r.kinds[k].latency);
    }
    file.latency[kAllKinds] = LatencyFigures::Of(r.total.latency);
  }
  return file;
}

absl::StatusOr<ReportFile> ReadReportFile(const std::string& path) {
  constexpr std::streamoff kMaxBytes = std::streamoff{256} << 20;
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot be read"));
  std::ostringstream text;
  char buffer[1 << 16];
  std::streamoff total = 0;
  while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
    total += in.gcount();
    if (total > kMaxBytes) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": larger than 256 MiB"));
    }
    text.write(buffer, in.gcount());
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return ParseReport(text.str(), path);
}

}  // namespace routeguide
