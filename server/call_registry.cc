#include "call_registry.h"

#include <algorithm>

#include "spdlog/spdlog.h"

namespace routeguide {

void CallRegistry::Membership::Activate(Method method,
                                        const grpc::ServerContext& context) {
  active_ = true;
  method_ = method;
  start_ = absl::Now();
  if (spdlog::should_log(spdlog::level::debug)) {
    peer_ = registry_.peers_ != nullptr ? registry_.peers_->Resolve(context.peer())
                                        : context.peer();
  }
  registry_.active_.fetch_add(1, std::memory_order_relaxed);
  registry_.accepted_.fetch_add(1, std::memory_order_relaxed);
  registry_.stats_.Started(method);
}

CallRegistry::Membership::~Membership() {
  if (active_) {
    // The wall clock can step back; a call never takes negative time.
    const absl::Duration latency = std::max(absl::ZeroDuration(), absl::Now() - start_);
    const int code = static_cast<int>(code_);
    registry_.stats_.Finished(method_, code, latency, messages_in_,
                              messages_out_);
    // One structured line per call, off the hot path unless debug is on.
    if (spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug(
        "access method={} peer={} status={} duration_us={} messages_in={} "
        "messages_out={}",
        kMethodNames[static_cast<int>(method_)], peer_,
        code >= 0 && code < kNumStatusCodes ? kStatusCodeNames[code] : "?",
        absl::ToInt64Microseconds(latency), messages_in_, messages_out_);
    }
  }
  registry_.Leave(active_);
}

}  // namespace routeguide
