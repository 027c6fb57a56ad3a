#ifndef ROUTEGUIDE_CLIENT_CLIENT_CALLS_H_
#define ROUTEGUIDE_CLIENT_CLIENT_CALLS_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/impl/call_op_set.h"
#include "route_guide.grpc.pb.h"

namespace routeguide {

// Cancels one call from another thread, whenever: before the call has
// started (it is then cancelled as it starts), while it runs, or after it
// has ended (nothing to do). The call attaches its context while it lives.
class CallCanceller {
 public:
  void Cancel() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  // For the call: from after it starts until before its context goes away.
  void Attach(grpc::ClientContext* context) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    context_ = context;
    if (cancelled_) context_->TryCancel();
  }
  void Detach() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    context_ = nullptr;
  }

 private:
  absl::Mutex mu_;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

// Settings every client call applies to its ClientContext.
struct CallOptions {
  absl::Duration deadline = absl::Seconds(10);
  std::vector<std::pair<std::string, std::string>> metadata;
  // ListFeatures only: lets its starter cancel it (the load generator's
  // first call, on SIGINT/SIGTERM). Null: not cancellable from outside.
  std::shared_ptr<CallCanceller> canceller;
  // RecordRoute and RouteChat: write every message with gRPC's buffer hint,
  // so that gRPC holds them (each Write completes at once) until WritesDone
  // or until its per-stream write buffer (64 KiB) is full, and sends them,
  // with the half-close, in a few sends instead of one system call each.
  // For a client that has the messages at hand; one that sends each as it
  // comes must not wait.
  bool batch_writes = false;

  void ApplyTo(grpc::ClientContext& context) const {
    context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
    for (const auto& [key, value] : metadata) context.AddMetadata(key, value);
  }
};

// The options of a stream's Writes under CallOptions::batch_writes.
inline grpc::WriteOptions StreamWriteOptions(bool batch_writes) {
  grpc::WriteOptions write_options;
  if (batch_writes) write_options.set_buffer_hint();
  return write_options;
}

// Each Start* launches one call as a state machine on `cq` and returns at
// once; its callbacks run on that queue's poller threads, one at a time per
// call, and must not block. `on_done` is the call's last callback. The
// stub and the queue must outlive the call.

void StartGetFeature(
    RouteGuide::Stub& stub, grpc::CompletionQueue& cq,
    const CallOptions& options, const Point& point,
    std::function<void(const grpc::Status&, const Feature&)> on_done);

// on_feature runs for each feature received, in order.
void StartListFeatures(
    RouteGuide::Stub& stub, grpc::CompletionQueue& cq,
    const CallOptions& options, const Rectangle& rectangle,
    std::function<void(const Feature&)> on_feature,
    std::function<void(const grpc::Status&)> on_done);

// StartListFeatures whose on_feature returns whether to go on reading:
// false cancels the call, which then ends with CANCELLED.
void StartListFeaturesWhile(
    RouteGuide::Stub& stub, grpc::CompletionQueue& cq,
    const CallOptions& options, const Rectangle& rectangle,
    std::function<bool(const Feature&)> on_feature,
    std::function<void(const grpc::Status&)> on_done);

// Sends `points` one write at a time (held for WritesDone when
// options.batch_writes), then half-closes; on_point runs as each point is
// handed to gRPC.
void StartRecordRoute(
    RouteGuide::Stub& stub, grpc::CompletionQueue& cq,
    const CallOptions& options, std::vector<Point> points,
    std::function<void(const Point&)> on_point,
    std::function<void(const grpc::Status&, const RouteSummary&)> on_done);

// Sends `notes` one write at a time (held for WritesDone when
// options.batch_writes) while reading replies independently; half-closes
// after the last note and ends when the server does.
void StartRouteChat(RouteGuide::Stub& stub, grpc::CompletionQueue& cq,
                    const CallOptions& options, std::vector<RouteNote> notes,
                    std::function<void(const RouteNote&)> on_send,
                    std::function<void(const RouteNote&)> on_receive,
                    std::function<void(const grpc::Status&)> on_done);

}  // namespace routeguide

#endif  // ROUTEGUIDE_CLIENT_CLIENT_CALLS_H_
