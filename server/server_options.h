#ifndef ROUTEGUIDE_SERVER_SERVER_OPTIONS_H_
#define ROUTEGUIDE_SERVER_SERVER_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/security/server_credentials.h"
#include "spin_window.h"

namespace routeguide {

// Everything RouteGuideServer can be told. The defaults here are the
// server binary's flag defaults too (server_flags.cc).
struct ServerOptions {
  std::string address = "[::]:50051";
  // Share the port with other server processes (SO_REUSEPORT). Off, a port
  // already in use is a start-up error.
  bool reuse_port = false;
  // A connection must finish its handshake (TLS, and HTTP/2's preface)
  // within this long or it is closed. With the HTTP/2 guard, a plaintext
  // client must also acknowledge the server's SETTINGS within this long of
  // sending the preface.
  absl::Duration handshake_timeout = absl::Seconds(10);
  // Plaintext only: relay every connection through the HTTP/2 guard
  // (http2_guard.h), which closes clients that reset streams faster than
  // the server completes them (HTTP/2 rapid reset, CVE-2023-44487, which
  // gRPC 1.51 cannot withstand) or that do not acknowledge SETTINGS in
  // time. Off: connections go to gRPC directly.
  bool http2_guard = true;
  // The guard closes a connection whose client reset more than this many
  // streams within a second, and more than the server completed on it in
  // that second; for 10 s after such a close, a hundredth of this (see
  // Http2GuardOptions::max_client_resets).
  int64_t max_client_resets = 1000;
  // How much nicer the guard thread runs than the server's, 0 to 19
  // (Http2GuardOptions::thread_nice).
  int http2_guard_nice = 10;
  // The longest the guard's thread keeps polling, once idle, before it
  // sleeps, 0 to kMaxGuardSpin (Http2GuardOptions::spin); within it, as
  // long as the recent gaps between events say pays.
  absl::Duration http2_guard_spin = kDefaultGuardSpin;
  // Poller threads in all, spread round-robin over `completion_queues`.
  int threads = 1;
  int completion_queues = 1;
  // Requests kept posted per method per completion queue. Few: Debian's
  // gRPC is built with its tag checks on, which scan every tag pending on
  // the queue at each completion, and an operation that completes at once
  // (a buffered Write, a Read of a point already received) is the last
  // tag, so it pays for all of them: with 64 streams in flight the scan
  // was a tenth of ListFeatures, and 8 posted rather than 2 cost it 2.5%
  // more instructions. Calls arriving in a burst wait in gRPC's own queue for
  // a request, which each started call posts again.
  int calls_per_method_per_queue = 2;
  // How long in-flight calls may take to finish once shutdown starts.
  absl::Duration grace = absl::Seconds(5);
  // A RecordRoute, RouteChat or reflection stream whose client makes no
  // progress for this long is ended with DEADLINE_EXCEEDED (infinite:
  // never).
  absl::Duration stream_idle_timeout = absl::Minutes(10);
  // The first part of the grace period, during which health checks answer
  // NOT_SERVING but calls are still accepted (capped at `grace`).
  absl::Duration health_drain = absl::Seconds(1);

  // Serve gRPC server reflection (grpc.reflection.v1alpha), so generic
  // tools can list and call the service.
  bool reflection = true;

  // Who gets in. Insecure when null.
  std::shared_ptr<grpc::ServerCredentials> credentials;
  // When not empty, every RouteGuide call must carry "authorization:
  // Bearer <token>" (health checks are exempt).
  std::string auth_token;

  // Bounds. A message bigger than max_message_bytes gets
  // RESOURCE_EXHAUSTED; a RouteChat note longer than max_note_bytes ends
  // the call with INVALID_ARGUMENT.
  int max_message_bytes = 4 * 1024 * 1024;
  // A call whose metadata (headers) is bigger is refused.
  int max_metadata_bytes = 16 * 1024;
  size_t max_note_bytes = 4096;
  // A server reflection request bigger than this ends its call with
  // INVALID_ARGUMENT. Real ones name a file or a symbol; every answer
  // echoes the request, and one a client leaves unread is held until the
  // idle timeout.
  size_t max_reflection_request_bytes = 4096;
  // RouteChat: replies one call may queue before it stops reading notes
  // until they are sent (backpressure on a client that does not read).
  size_t max_queued_replies = 256;
  int max_concurrent_streams = 1000;  // Per connection.
  // Keepalive enforcement: pings closer together than this (without data)
  // count as strikes; two strikes close the connection.
  absl::Duration min_ping_interval = absl::Seconds(10);
  // gRPC's bandwidth-delay-product probing, which pings the client as data
  // arrives and widens the receive window to what the pings measure.
  bool http2_bdp_probe = true;
  // Connections idle this long, or this old, are closed (gracefully).
  // Never, by default, as in gRPC: a finite limit puts gRPC 1.51's max_age
  // filter on every call, about 8% of a GetFeature's instructions
  // (docs/benchmarks.md), while dead peers are found anyway (keepalive,
  // and the HTTP/2 guard's and handshake's timeouts for new ones).
  absl::Duration max_connection_idle = absl::InfiniteDuration();
  absl::Duration max_connection_age = absl::InfiniteDuration();
  // After the age, how long open calls may go on before the connection is
  // closed under them.
  absl::Duration max_connection_age_grace = absl::InfiniteDuration();
  // gRPC's ResourceQuota for the server's buffers; 0 leaves it unbounded.
  // Near it gRPC sheds load: it closes connections and resets busy streams
  // (RESOURCE_EXHAUSTED) rather than refusing new ones.
  int64_t max_memory_bytes = 1024 * 1024 * 1024;
};

// The smallest max_memory_bytes that still serves: below about 256 KiB
// gRPC sends every new connection a GOAWAY.
inline constexpr int64_t kMinMemoryQuotaBytes = 1024 * 1024;
// The largest message gRPC 1.51 takes by default, and our ceiling.
inline constexpr int kMaxMessageBytesLimit = 4 * 1024 * 1024;

// OK when RouteGuideServer can start with `options`; otherwise
// InvalidArgument naming the first bad field by its server flag (--threads),
// the value, and what it must be. The address is parsed as the server will
// bind it, so gRPC never sees one it would misread.
absl::Status ValidateServerOptions(const ServerOptions& options);

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_SERVER_OPTIONS_H_
