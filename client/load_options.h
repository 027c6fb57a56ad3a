#ifndef ROUTEGUIDE_CLIENT_LOAD_OPTIONS_H_
#define ROUTEGUIDE_CLIENT_LOAD_OPTIONS_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "geo.h"
#include "grpcpp/security/credentials.h"

namespace routeguide {

// The four RPC kinds, in the order reports list them.
enum class CallKind { kGetFeature, kListFeatures, kRecordRoute, kRouteChat };
inline constexpr int kNumCallKinds = 4;
inline constexpr std::array<const char*, kNumCallKinds> kCallKindNames = {
    "get", "list", "record", "chat"};

enum class Arrival { kClosedLoop, kUniform, kPoisson };

struct LoadOptions {
  std::string target = "localhost:50051";
  int threads = 1;   // Completion queues, one poller thread each.
  int channels = 0;  // Separate HTTP/2 connections; 0 for one per thread.
  // Relative weights of the kinds; a kind at 0 is not sent.
  std::array<double, kNumCallKinds> mix = {70, 10, 10, 10};

  // Closed loop: this many calls in flight, each replaced when it ends.
  int concurrency = 64;
  // Open loop when > 0: call starts per second, on `arrival`'s schedule.
  double rps = 0;
  Arrival arrival = Arrival::kClosedLoop;
  // Open loop: starts wait (and so show up late) above this many in flight.
  int max_in_flight = 10000;

  absl::Duration duration = absl::Seconds(30);
  int64_t requests = 0;  // When > 0, ends the run after this many calls.
  absl::Duration warmup = absl::ZeroDuration();
  // When set, the warm-up (and so the measurement after it) waits for this
  // wall-clock time, so generators started apart begin together. Connecting
  // and learning the server's features happen before the wait.
  std::optional<absl::Time> start_at;

  // Shapes of the work.
  double hit_ratio = 0.9;            // GetFeature/RecordRoute: stored points.
  double rect_degrees = 0.5;         // ListFeatures: side of the rectangle.
  // ListFeatures: when set, every call asks for this rectangle instead.
  std::optional<GeoRect> list_rect;
  int route_points = 10;             // RecordRoute: points per call.
  int chat_notes = 10;               // RouteChat: notes per call...
  int chat_locations = 5;            // ...spread over this many locations.
  // RecordRoute and RouteChat: let gRPC gather each call's messages into a
  // few sends (CallOptions::batch_writes) instead of one send each.
  bool batch_writes = false;

  // Insecure when null; tls_server_name overrides the name the server's
  // certificate is checked against.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::string tls_server_name;

  absl::Duration deadline = absl::Seconds(10);
  std::vector<std::pair<std::string, std::string>> metadata;
  absl::Duration connect_timeout = absl::Seconds(5);
  // The first call, a ListFeatures over the world that learns the server's
  // features: its deadline, and how many features it may bring before the
  // server is taken for unusable (one that streams without end would
  // otherwise grow the client's memory and never let the run begin).
  absl::Duration learn_deadline = absl::Seconds(30);
  int64_t max_features_learnt = 1000000;
  uint64_t seed = 1;
  double max_error_rate = 0;
  std::string json_path;
  std::string html_path;
  std::string hgrm_prefix;  // --hgrm: PREFIX.<kind>.hgrm files.
  bool progress = false;  // One live line on stderr, about once a second.
};

// "get:70,list:10,record:10,chat:10"; kinds left out weigh 0.
absl::StatusOr<std::array<double, kNumCallKinds>> ParseMix(
    absl::string_view text);

// "key:value", checked as gRPC checks metadata: a lowercase key of
// a-z 0-9 - _ . not reserved by gRPC (grpc-*), and, unless the key ends in
// -bin, a value of printable ASCII.
absl::StatusOr<std::pair<std::string, std::string>> ParseMetadata(
    absl::string_view text);

// "uniform" or "poisson".
absl::StatusOr<Arrival> ParseArrival(absl::string_view text);

// The inverse of ParseArrival, for reports: "poisson" or "uniform" (also
// for closed loop, which has no arrival process).
const char* ArrivalName(Arrival arrival);

// "LO_LAT,LO_LON,HI_LAT,HI_LON" in degrees (corners in any order), each
// within the valid range.
absl::StatusOr<GeoRect> ParseRect(absl::string_view text);

// --start_at: an RFC 3339 time ("2026-12-02T15:04:05Z", fractional
// seconds and a +hh:mm offset allowed) after `now` and at most
// kMaxStartAhead after it; INVALID_ARGUMENT otherwise.
inline constexpr absl::Duration kMaxStartAhead = absl::Hours(1);
absl::StatusOr<absl::Time> ParseStartAt(absl::string_view text, absl::Time now);

// `time` as RFC 3339 in UTC with fractional seconds, as reports and
// messages give times ("2026-12-02T15:04:05.25+00:00").
std::string FormatRfc3339Utc(absl::Time time);

// Checks ranges and combinations; INVALID_ARGUMENT says which flag is wrong.
absl::Status ValidateLoadOptions(const LoadOptions& options);

// The gRPC target for --target: one address or URI as given; a comma list
// of IP literals (localhost counts as 127.0.0.1) as an ipv4:/ipv6: URI that
// gRPC's round_robin policy spreads calls over.
absl::StatusOr<std::string> ChannelTarget(absl::string_view target);

}  // namespace routeguide

#endif  // ROUTEGUIDE_CLIENT_LOAD_OPTIONS_H_
