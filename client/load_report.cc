#include "load_report.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "svg_chart.h"

namespace routeguide {
namespace {


// The percentiles every latency is reported at.
constexpr std::array<double, 4> kPercentiles = {50, 90, 99, 99.9};

std::string Latency(uint64_t nanos) { return FormatLatencyNs(nanos); }

double PerSecond(uint64_t n, const LoadReport& r) {
  const double seconds = absl::ToDoubleSeconds(r.measured);
  return seconds <= 0 ? 0 : static_cast<double>(n) / seconds;
}

std::string LoadShape(const LoadOptions& o) {
  if (o.rps > 0) {
    return absl::StrFormat("open loop %.0f calls/s (%s)", o.rps,
                           ArrivalName(o.arrival));
  }
  return absl::StrFormat("closed loop, %d in flight", o.concurrency);
}

std::string PercentileRow(const Histogram& h) {
  std::string row;
  for (double p : kPercentiles) {
    absl::StrAppendFormat(&row, " %9s", Latency(h.Percentile(p)));
  }
  absl::StrAppendFormat(&row, " %9s", Latency(h.max()));
  return row;
}

nlohmann::json LatencyJson(const Histogram& h) {
  nlohmann::json j;
  j["count"] = h.count();
  j["mean"] = h.mean();
  j["p50"] = h.Percentile(50);
  j["p90"] = h.Percentile(90);
  j["p99"] = h.Percentile(99);
  j["p99_9"] = h.Percentile(99.9);
  j["max"] = h.max();
  // The histogram itself, so that reports can be merged exactly later:
  // with count and max above, enough for Histogram::FromBuckets. The sum is
  // a double of integer nanoseconds, which JSON numbers carry exactly.
  j["min"] = h.min();
  j["sum"] = h.sum();
  j["layout"] = kHistogramLayout;
  nlohmann::json buckets = nlohmann::json::array();
  for (const auto& [bucket, count] : h.NonEmptyBuckets()) {
    buckets.push_back({bucket, count});
  }
  j["buckets"] = std::move(buckets);
  return j;
}

// dump(2) puts each array element on a line of its own, so a histogram's
// [bucket, count] pairs would take four lines each. This puts every array
// that holds no array or object on one line: "[1411, 3]".
std::string InlineScalarArrays(const std::string& text) {
  struct Open {
    size_t at;  // Offset of the bracket in `out`.
    bool holds_container;
  };
  std::string out;
  out.reserve(text.size());
  std::vector<Open> open;
  bool in_string = false, escaped = false;
  for (char c : text) {
    out += c;
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (!open.empty()) open.back().holds_container = true;
      open.push_back({out.size() - 1, false});
    } else if ((c == ']' || c == '}') && !open.empty()) {
      const Open closed = open.back();
      open.pop_back();
      if (c == '}' || closed.holds_container) continue;
      // Only scalars inside: drop the layout whitespace, outside strings.
      const std::string inside = out.substr(closed.at + 1, out.size() - closed.at - 2);
      out.resize(closed.at + 1);
      bool quoted = false, escape = false;
      for (char d : inside) {
        if (quoted) {
          out += d;
          if (escape) {
            escape = false;
          } else if (d == '\\') {
            escape = true;
          } else if (d == '"') {
            quoted = false;
          }
        } else if (d == '"') {
          quoted = true;
          out += d;
        } else if (d == ',') {
          out += ", ";
        } else if (d != ' ' && d != '\n') {
          out += d;
        }
      }
      out += ']';
    }
  }
  return out;
}

nlohmann::json KindJson(const KindStats& s, const LoadReport& r) {
  nlohmann::json j;
  j["started"] = s.started;
  j["completed"] = s.completed();
  j["ok"] = s.ok;
  j["wrong_answer"] = s.wrong_answer;
  j["failed"] = s.failed();
  nlohmann::json by_code = nlohmann::json::object();
  for (int c = 1; c < kNumStatusCodes; ++c) {
    if (s.failed_by_code[c] > 0) by_code[kStatusCodeNames[c]] = s.failed_by_code[c];
  }
  j["failed_by_code"] = by_code;
  j["calls_per_second"] = PerSecond(s.completed(), r);
  j["messages_sent"] = s.messages_sent;
  j["messages_received"] = s.messages_received;
  j["messages_sent_per_second"] = PerSecond(s.messages_sent, r);
  j["messages_received_per_second"] = PerSecond(s.messages_received, r);
  j["latency_ns"] = LatencyJson(s.latency);
  if (s.first_message.count() > 0) {
    j["first_message_latency_ns"] = LatencyJson(s.first_message);
  }
  if (s.reply.count() > 0) j["reply_latency_ns"] = LatencyJson(s.reply);
  return j;
}

}  // namespace

std::string MixText(const LoadOptions& o) {
  std::vector<std::string> parts;
  for (int k = 0; k < kNumCallKinds; ++k) {
    parts.push_back(absl::StrCat(kCallKindNames[k], ":", o.mix[k]));
  }
  return absl::StrJoin(parts, ",");
}

std::string FormatLatencyNs(uint64_t nanos) {
  if (nanos < 1000) return absl::StrFormat("%dns", nanos);
  if (nanos < 1000000) return absl::StrFormat("%.1fus", nanos / 1e3);
  if (nanos < 1000000000) return absl::StrFormat("%.2fms", nanos / 1e6);
  return absl::StrFormat("%.2fs", nanos / 1e9);
}

std::string FormatReportTable(const LoadReport& r) {
  const LoadOptions& o = r.options;
  std::string out = absl::StrFormat(
      "target %s (%s), %d threads, %d channels, %s, mix %s\n"
      "measured %s%s; %d features known to the server%s\n\n",
      o.target, r.channel_target, o.threads, o.channels > 0 ? o.channels : o.threads,
      LoadShape(o), MixText(o), absl::FormatDuration(absl::Trunc(r.measured, absl::Milliseconds(1))),
      o.warmup > absl::ZeroDuration()
          ? absl::StrCat(" after ", absl::FormatDuration(o.warmup), " of warm-up")
          : "",
      r.features_known, r.interrupted ? "; interrupted (SIGINT or SIGTERM)" : "");
  absl::StrAppendFormat(&out, "%-7s %9s %9s %6s %7s %10s %10s %10s %9s %9s %9s %9s %9s\n",
                        "kind", "started", "ok", "wrong", "failed", "calls/s",
                        "sent/s", "recv/s", "p50", "p90", "p99", "p99.9", "max");
  auto row = [&](const char* name, const KindStats& s) {
    absl::StrAppendFormat(&out, "%-7s %9d %9d %6d %7d %10.1f %10.1f %10.1f%s\n", name,
                          s.started, s.ok, s.wrong_answer, s.failed(),
                          PerSecond(s.completed(), r), PerSecond(s.messages_sent, r),
                          PerSecond(s.messages_received, r), PercentileRow(s.latency));
  };
  for (int k = 0; k < kNumCallKinds; ++k) {
    if (o.mix[k] > 0) row(kCallKindNames[k], r.kinds[k]);
  }
  row("all", r.total);

  const KindStats& list = r.kinds[static_cast<int>(CallKind::kListFeatures)];
  const KindStats& chat = r.kinds[static_cast<int>(CallKind::kRouteChat)];
  if (list.first_message.count() > 0 || chat.reply.count() > 0) {
    absl::StrAppendFormat(&out, "\n%-44s %9s %9s %9s %9s %9s\n", "", "p50", "p90",
                          "p99", "p99.9", "max");
  }
  if (list.first_message.count() > 0) {
    absl::StrAppendFormat(&out, "%-44s%s\n", "list: call start to first feature",
                          PercentileRow(list.first_message));
  }
  if (chat.reply.count() > 0) {
    absl::StrAppendFormat(&out, "%-44s%s\n", "chat: note sent to the reply it triggers",
                          PercentileRow(chat.reply));
  }
  std::vector<std::string> failures;
  for (int k = 0; k < kNumCallKinds; ++k) {
    for (int c = 1; c < kNumStatusCodes; ++c) {
      if (r.kinds[k].failed_by_code[c] > 0) {
        failures.push_back(absl::StrCat(kCallKindNames[k], " ", kStatusCodeNames[c], " ",
                                        r.kinds[k].failed_by_code[c]));
      }
    }
  }
  if (!failures.empty()) {
    absl::StrAppend(&out, "\nfailed: ", absl::StrJoin(failures, ", "), "\n");
  }
  if (r.total.wrong_answer > 0) {
    absl::StrAppendFormat(&out, "wrong answers: %d (calls that succeeded with a wrong result)\n",
                          r.total.wrong_answer);
  }
  if (o.rps > 0) {
    absl::StrAppendFormat(&out, "\nstart lag against the schedule: p50 %s, p99 %s, max %s\n",
                          Latency(r.start_lag.Percentile(50)),
                          Latency(r.start_lag.Percentile(99)), Latency(r.start_lag.max()));
    if (r.late_starts > 0) {
      absl::StrAppendFormat(
          &out,
          "WARNING: %d calls started more than 1ms late: the client could not keep "
          "its schedule (latencies still count from the scheduled start)\n",
          r.late_starts);
    }
  }
  if (!r.by_address.empty()) {
    // An address round_robin could not connect to gets no calls: shown
    // here as 0, rather than hidden in the totals.
    absl::StrAppendFormat(&out, "\n%-44s %9s %9s %7s\n",
                          "calls by address (warm-up included)", "started", "ok",
                          "failed");
    for (const AddressCalls& a : r.by_address) {
      absl::StrAppendFormat(&out, "%-44s %9d %9d %7d\n", a.address, a.started,
                            a.succeeded, a.failed);
    }
  }
  absl::StrAppendFormat(&out, "\nerror rate %.4f%% (limit %.4f%%)\n", r.error_rate() * 100,
                        o.max_error_rate * 100);
  return out;
}

std::string FormatReportJson(const LoadReport& r) {
  const LoadOptions& o = r.options;
  nlohmann::json j;
  j["schema"] = kReportSchema;
  nlohmann::json settings;
  settings["target"] = o.target;
  settings["channel_target"] = r.channel_target;
  settings["threads"] = o.threads;
  settings["channels"] = o.channels > 0 ? o.channels : o.threads;
  nlohmann::json mix;
  for (int k = 0; k < kNumCallKinds; ++k) mix[kCallKindNames[k]] = o.mix[k];
  settings["mix"] = mix;
  settings["mode"] = o.rps > 0 ? "open" : "closed";
  settings["concurrency"] = o.concurrency;
  settings["rps"] = o.rps;
  settings["arrival"] = ArrivalName(o.arrival);
  settings["max_in_flight"] = o.max_in_flight;
  settings["duration_seconds"] = absl::ToDoubleSeconds(o.duration);
  settings["requests"] = o.requests;
  settings["warmup_seconds"] = absl::ToDoubleSeconds(o.warmup);
  if (o.start_at.has_value()) {
    settings["start_at"] = FormatRfc3339Utc(*o.start_at);
  } else {
    settings["start_at"] = nullptr;
  }
  settings["hit_ratio"] = o.hit_ratio;
  settings["rect_degrees"] = o.rect_degrees;
  if (o.list_rect.has_value()) {
    settings["list_rect_e7"] = {o.list_rect->lo.latitude, o.list_rect->lo.longitude,
                                o.list_rect->hi.latitude, o.list_rect->hi.longitude};
  } else {
    settings["list_rect_e7"] = nullptr;
  }
  settings["route_points"] = o.route_points;
  settings["chat_notes"] = o.chat_notes;
  settings["chat_locations"] = o.chat_locations;
  settings["batch_writes"] = o.batch_writes;
  settings["deadline_seconds"] = absl::ToDoubleSeconds(o.deadline);
  nlohmann::json metadata = nlohmann::json::array();
  for (const auto& [key, value] : o.metadata) {
    // Credentials stay out of reports.
    metadata.push_back(key + ":" + (key == "authorization" ? "<redacted>" : value));
  }
  settings["metadata"] = metadata;
  settings["seed"] = o.seed;
  settings["max_error_rate"] = o.max_error_rate;
  j["settings"] = settings;
  j["started_at"] = FormatRfc3339Utc(r.started_at);
  j["measured_seconds"] = absl::ToDoubleSeconds(r.measured);
  j["features_known"] = r.features_known;
  j["interrupted"] = r.interrupted;
  nlohmann::json kinds;
  for (int k = 0; k < kNumCallKinds; ++k) kinds[kCallKindNames[k]] = KindJson(r.kinds[k], r);
  j["kinds"] = kinds;
  j["total"] = KindJson(r.total, r);
  j["error_rate"] = r.error_rate();
  j["completions_per_second"] = r.completions_per_second;
  j["partial_second_completions"] = r.partial_second_completions;
  if (!r.by_address.empty()) {
    nlohmann::json by_address = nlohmann::json::array();
    for (const AddressCalls& a : r.by_address) {
      by_address.push_back({{"address", a.address},
                            {"started", a.started},
                            {"succeeded", a.succeeded},
                            {"failed", a.failed}});
    }
    j["by_address"] = by_address;
  }
  if (o.rps > 0) {
    nlohmann::json lag = LatencyJson(r.start_lag);
    lag["late_starts"] = r.late_starts;
    j["start_lag_ns"] = lag;
  }
  return InlineScalarArrays(j.dump(2)) + "\n";
}

std::string FormatReportHtml(const LoadReport& r) {
  static constexpr std::array<const char*, kNumCallKinds + 1> kColors = {
      "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#444444"};
  // Percentile curve: x is "nines", -log10(1 - p/100), so 90, 99, 99.9 and
  // 99.99 are evenly spaced.
  std::vector<Series> curves;
  for (int k = 0; k < kNumCallKinds; ++k) {
    if (r.options.mix[k] > 0) {
      curves.push_back(PercentileCurve(kCallKindNames[k], kColors[k], r.kinds[k].latency));
    }
  }
  curves.push_back(PercentileCurve("all", kColors[kNumCallKinds], r.total.latency));

  Series rate{"calls/s", kColors[0], {}};
  for (size_t s = 0; s < r.completions_per_second.size(); ++s) {
    rate.points.emplace_back(static_cast<double>(s) + 0.5,
                             static_cast<double>(r.completions_per_second[s]));
  }
  std::vector<std::pair<double, std::string>> time_ticks;
  const size_t seconds = r.completions_per_second.size();
  const size_t step = std::max<size_t>(1, seconds / 10);
  for (size_t s = 0; s <= seconds; s += step) {
    time_ticks.emplace_back(static_cast<double>(s), absl::StrCat(s, "s"));
  }

  std::string html =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
      "<title>routeguide load report</title>\n<style>body{font-family:sans-serif;"
      "margin:2em}pre{background:#f6f6f6;padding:1em;overflow-x:auto}</style>"
      "</head><body>\n<h1>routeguide load report</h1>\n";
  absl::StrAppend(&html, "<pre>", EscapeHtml(FormatReportTable(r)), "</pre>\n");
  absl::StrAppend(&html, SvgChart("Latency by percentile", "percentile",
                                  "latency (ms)", curves, NinesTicks()));
  absl::StrAppend(&html, "<br>\n",
                  SvgChart("Completed calls per second", "time since measuring began",
                           "calls/s", {rate}, time_ticks));
  html += "</body></html>\n";
  return html;
}

int LoadExitCode(const LoadReport& report, double max_error_rate) {
  if (report.total.completed() > 0 && report.error_rate() > max_error_rate) return 1;
  if (report.interrupted) return kExitInterrupted;
  return report.total.completed() == 0 ? 1 : 0;
}

}  // namespace routeguide
