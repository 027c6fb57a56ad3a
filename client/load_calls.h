#ifndef ROUTEGUIDE_CLIENT_LOAD_CALLS_H_
#define ROUTEGUIDE_CLIENT_LOAD_CALLS_H_

#include <chrono>
#include <cstdint>
#include <functional>

#include "client_calls.h"
#include "expected_answers.h"
#include "grpcpp/completion_queue.h"
#include "load_options.h"
#include "load_schedule.h"
#include "load_stats.h"
#include "route_guide.grpc.pb.h"

namespace routeguide {

using LoadClock = std::chrono::steady_clock;

// Nanoseconds in `d`; 0 for a negative duration.
uint64_t Nanos(LoadClock::duration d);

// How a generated call ended, as a load run counts it.
struct CallResult {
  Outcome outcome = Outcome::kFailed;
  grpc::StatusCode code = grpc::StatusCode::OK;
  uint64_t sent = 0;      // Messages sent.
  uint64_t received = 0;  // Messages received.
};

// The calls of a load run, one kind at a time: each draws its request as
// the options shape it (points, rectangles, routes, chats), starts it on a
// completion queue, and when it ends checks the answer against the one the
// server's own features (KnownFeatures) call for. A call whose answer is
// not that one ends as Outcome::kWrongAnswer.
//
// Thread-safe: after construction it only reads, and `known` must be
// sealed before the first call and outlive the last.
class LoadCalls {
 public:
  using OnEnd = std::function<void(const CallResult&)>;

  LoadCalls(const LoadOptions& options, const KnownFeatures& known);

  // Starts one call of `kind` on `stub` and `cq`, its choices drawn from
  // `random`. `measured` takes the latencies inside the call (ListFeatures:
  // from `scheduled` to the first feature; RouteChat: from each note to its
  // first reply), or is null for a call that is not counted; only `cq`'s
  // poller writes to it. `on_end` runs once, on that poller, last.
  void Start(CallKind kind, RouteGuide::Stub& stub, grpc::CompletionQueue& cq,
             FastRandom& random, LoadClock::time_point scheduled,
             KindStats* measured, OnEnd on_end) const;

 private:
  Point RandomPoint(FastRandom& random) const;
  // A stored feature with probability --hit_ratio, else a random point.
  Point PointToVisit(FastRandom& random) const;

  void StartGetFeature(RouteGuide::Stub& stub, grpc::CompletionQueue& cq,
                       FastRandom& random, OnEnd on_end) const;
  void StartListFeatures(RouteGuide::Stub& stub, grpc::CompletionQueue& cq,
                         FastRandom& random, LoadClock::time_point scheduled,
                         KindStats* measured, OnEnd on_end) const;
  void StartRecordRoute(RouteGuide::Stub& stub, grpc::CompletionQueue& cq,
                        FastRandom& random, OnEnd on_end) const;
  void StartRouteChat(RouteGuide::Stub& stub, grpc::CompletionQueue& cq,
                      FastRandom& random, KindStats* measured,
                      OnEnd on_end) const;

  const LoadOptions& options_;
  const KnownFeatures& known_;
  CallOptions call_options_;
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_CLIENT_LOAD_CALLS_H_
