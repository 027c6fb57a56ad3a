#ifndef ROUTEGUIDE_TESTS_TEST_UTIL_H_
#define ROUTEGUIDE_TESTS_TEST_UTIL_H_

// Small helpers the tests share: messages, deadlines, waiting on a
// condition. Starting a server in-process is test_server.h; as a child
// process, server_process.h.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/support/byte_buffer.h"
#include "route_guide.pb.h"
#include "sanitizers.h"

namespace routeguide {

// Long enough for any call of a test on a loaded machine; a call that
// hangs still fails the test well before meson's timeout.
inline constexpr absl::Duration kTestRpcDeadline = absl::Seconds(20);

// How many times the time a step may take is stretched under
// AddressSanitizer, where everything runs 2-5 times slower and CI runs
// another test on the other core. Only for bounds that must not be hit
// (and deadlines that expire anyway, whose call never ends by itself);
// a bound that must be hit, such as a lower bound showing that something
// came late enough, stays as it is.
inline constexpr int kSanitizerSlowdown = ROUTEGUIDE_ASAN ? 3 : 1;

inline void SetDeadline(grpc::ClientContext& context,
                        absl::Duration timeout = kTestRpcDeadline) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

// Shuts `cq` down and takes every completion left, so that it can be
// destroyed (gRPC requires both).
inline void ShutdownAndDrain(grpc::CompletionQueue& cq) {
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
}

// The bytes of a raw message (empty if it cannot be read).
inline std::string ByteBufferToString(const grpc::ByteBuffer& bytes) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!bytes.Dump(&slices).ok()) return out;
  for (const grpc::Slice& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

inline Point MakePoint(int32_t latitude, int32_t longitude) {
  Point point;
  point.set_latitude(latitude);
  point.set_longitude(longitude);
  return point;
}

inline RouteNote MakeNote(const std::string& message, int32_t latitude,
                          int32_t longitude) {
  RouteNote note;
  note.set_message(message);
  *note.mutable_location() = MakePoint(latitude, longitude);
  return note;
}

inline Rectangle MakeRectangle(const Point& lo, const Point& hi) {
  Rectangle rectangle;
  *rectangle.mutable_lo() = lo;
  *rectangle.mutable_hi() = hi;
  return rectangle;
}

// Polls `condition` until it holds (true) or `timeout` passes (false).
// Negated, it checks that something does not happen within `timeout`.
inline bool WaitFor(const std::function<bool()>& condition,
                    absl::Duration timeout = kTestRpcDeadline,
                    absl::Duration poll_interval = absl::Milliseconds(1)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(poll_interval);
  }
  return true;
}

}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_TEST_UTIL_H_
