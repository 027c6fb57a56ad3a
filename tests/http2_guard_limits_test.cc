// The HTTP/2 guard: a client that never acknowledges SETTINGS is closed;
// honest clients that cancel are not taken for a rapid reset, while one that
// resets more than it completes is; with the guard off connections go to
// gRPC directly; shutdown lets a relayed call finish.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "http2_guard.h"
#include "raw_http2.h"
#include "route_guide.grpc.pb.h"
#include "route_guide_server.h"
#include "test_server.h"
#include "test_util.h"


namespace routeguide {
namespace {

TEST_CASE("A client that does not acknowledge SETTINGS in time is closed",
          "[guard]") {
  ServerOptions options;
  options.handshake_timeout = absl::Milliseconds(500);
  auto server = StartTestServer(options);

  SECTION("no acknowledgement: GOAWAY SETTINGS_TIMEOUT after the timeout") {
    RawClient client(server->port());
    const absl::Time start = absl::Now();
    client.Handshake(/*ack=*/false);
    const Ending ending = client.AwaitEnd(absl::Seconds(5));
    const absl::Duration waited = absl::Now() - start;
    CHECK(ending.closed);
    CHECK(ending.goaway_error == kSettingsTimeout);
    CHECK(waited >= absl::Milliseconds(400));
    CHECK(waited < absl::Seconds(3));
    CHECK(server->guard_stats().settings_timeouts == 1);
  }
  SECTION("acknowledged: the connection stays") {
    RawClient client(server->port());
    client.Handshake(/*ack=*/true);
    bool timed_out = false;
    while (!timed_out) {  // Whatever else the server sends, it does not close.
      const auto frame = client.Read(absl::Milliseconds(1500), &timed_out);
      if (!timed_out) REQUIRE(frame.has_value());
    }
    CHECK(server->guard_stats().settings_timeouts == 0);
  }
}

// How the cancelled calls of a load end.
enum class Cancelling { kDeadline, kClient };

// `cancelled` calls cancelled the `how` way, each after
// `normal_per_cancelled` GetFeature calls, from 8 threads; how many of
// either kind failed otherwise.
int CancellingLoad(RouteGuide::Stub& stub, Cancelling how, int cancelled,
                   int normal_per_cancelled) {
  constexpr int kThreads = 8;
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < cancelled / kThreads; ++i) {
        for (int n = 0; n < normal_per_cancelled; ++n) {
          if (!GetKnownFeature(stub)) failed.fetch_add(1);
        }
        const bool as_expected =
            how == Cancelling::kDeadline
                ? RecordRouteCancelledByDeadline(stub, absl::Milliseconds(1)) ==
                      grpc::StatusCode::DEADLINE_EXCEEDED
                : RecordRouteCancelledByClient(stub) == grpc::StatusCode::CANCELLED;
        if (!as_expected) failed.fetch_add(1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  return failed.load();
}

TEST_CASE("Honest clients that cancel calls are not taken for a rapid reset",
          "[guard]") {
  ServerOptions options;
  Cancelling how = Cancelling::kDeadline;
  SECTION("200 calls with a 1 ms deadline among 2000 completed, default limit") {}
  SECTION("200 calls with a 1 ms deadline among 2000 completed, limit 50") {
    options.max_client_resets = 50;
  }
  SECTION("200 calls cancelled by the client among 2000 completed, limit 50") {
    // Cancelled before the server answers, so only the calls completed
    // alongside keep this connection under the rule.
    options.max_client_resets = 50;
    how = Cancelling::kClient;
  }
  auto server = StartTestServer(options);
  auto stub = RouteGuide::NewStub(OwnChannel(server->port()));
  REQUIRE(GetKnownFeature(*stub));

  CHECK(CancellingLoad(*stub, how, 200, 10) == 0);
  CHECK(GetKnownFeature(*stub));
  const Http2GuardStats stats = server->guard_stats();
  INFO("opened " << stats.streams_opened << ", reset " << stats.client_resets);
  // Nearly every cancellation was a reset (a call whose trailers arrive
  // just before its deadline may need none): the limit was passed.
  CHECK(stats.client_resets >= 150);
  CHECK(stats.rapid_reset_closes == 0);
  CHECK(stats.strict_periods == 0);
  CHECK(stats.relayed == 1);  // Never reconnected.
  CHECK(stats.active == 1);
}

TEST_CASE("A client that resets more calls than it completes, past the "
          "limit, is closed even through a well-behaved HTTP/2 stack",
          "[guard]") {
  ServerOptions options;
  options.max_client_resets = 50;
  auto server = StartTestServer(options);
  auto stub = RouteGuide::NewStub(OwnChannel(server->port()));
  REQUIRE(GetKnownFeature(*stub));
  // Calls fail once the connection is closed under them; which ones is
  // up to timing. Enough of them that even a slow machine resets more
  // than 50 within some second.
  CancellingLoad(*stub, Cancelling::kClient, 1000, 0);
  // A cancelled call returns as soon as the client has queued its reset,
  // so the guard (nice 10, behind any busy thread on its core) may still
  // be reading them.
  WaitFor([&] { return server->guard_stats().rapid_reset_closes >= 1; },
          absl::Seconds(10));
  const Http2GuardStats stats = server->guard_stats();
  INFO("opened " << stats.streams_opened << ", reset " << stats.client_resets);
  CHECK(stats.rapid_reset_closes >= 1);
  // gRPC reconnects, and calls that complete are served.
  CHECK(GetKnownFeature(*stub));
}

TEST_CASE("With the guard off, connections go to gRPC directly", "[guard]") {
  ServerOptions options;
  options.http2_guard = false;
  auto server = StartTestServer(options);
  auto stub = RouteGuide::NewStub(OwnChannel(server->port()));
  CHECK(GetKnownFeature(*stub));
  CHECK(server->guard_stats().relayed == 0);
  CHECK(server->acceptor_stats().handed_over == 1);
}

TEST_CASE("Shutdown lets a relayed call finish during the grace period",
          "[guard]") {
  ServerOptions options;
  options.grace = absl::Seconds(5);
  auto server = StartTestServer(options);
  auto stub = RouteGuide::NewStub(OwnChannel(server->port()));
  REQUIRE(GetKnownFeature(*stub));

  grpc::ClientContext context;
  SetDeadline(context, absl::Seconds(10));
  RouteSummary summary;
  auto writer = stub->RecordRoute(&context, &summary);
  REQUIRE(writer->Write(MakePoint(1, 1)));
  // A written message may still sit in the client's buffers: wait until the
  // server has taken the call, or Shutdown rightly sees nothing in flight.
  REQUIRE(WaitFor([&] { return server->calls().active() != 0; }, absl::Seconds(5)));
  REQUIRE(server->calls().active() == 1);
  std::thread stopper([&] { server->Shutdown(); });
  // Shutdown has begun: the call, already relayed, still goes on.
  WaitFor([&] { return server->shutdown_started(); }, absl::Seconds(5));
  absl::SleepFor(absl::Milliseconds(200));
  CHECK(writer->Write(MakePoint(2, 2)));
  writer->WritesDone();
  const grpc::Status status = writer->Finish();
  INFO(status.error_message());
  CHECK(status.ok());
  CHECK(summary.point_count() == 2);
  stopper.join();
  CHECK(server->guard_stats().active == 0);
}

TEST_CASE("DATA left inside a message on more streams than the limit closes the "
          "connection, even on streams gRPC never opened",
          "[guard]") {
  ServerOptions options;
  options.max_concurrent_streams = 5;  // The guard's bound: 10 streams.
  auto server = StartTestServer(options);
  RawClient client(server->port());
  client.Handshake(/*ack=*/true);
  // Each frame starts a message (the first byte of its prefix) on a stream
  // no HEADERS opened: gRPC skips such DATA, the guard would keep a few
  // bytes for each, without end.
  std::string frames;
  for (uint32_t stream = 1; stream <= 19; stream += 2) {
    frames += Frame(kData, 0, stream, std::string(1, '\0'));
  }
  REQUIRE(client.Send(frames));
  bool timed_out = false;
  while (!timed_out) {  // Ten are allowed: still open.
    const auto frame = client.Read(absl::Milliseconds(300), &timed_out);
    if (!timed_out) REQUIRE(frame.has_value());
  }
  CHECK(server->guard_stats().unfinished_message_closes == 0);
  REQUIRE(client.Send(Frame(kData, 0, 21, std::string(1, '\0'))));
  const Ending ending = client.AwaitEnd(absl::Seconds(5));
  CHECK(ending.closed);
  CHECK(ending.goaway_error == kEnhanceYourCalm);
  CHECK(server->guard_stats().unfinished_message_closes == 1);
  CHECK(server->guard_stats().rapid_reset_closes == 0);
  // The server still serves.
  auto stub = RouteGuide::NewStub(OwnChannel(server->port()));
  CHECK(GetKnownFeature(*stub));
}

}  // namespace
}  // namespace routeguide
