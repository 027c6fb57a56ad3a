// The routeguide-server binary stopped by SIGTERM under load: open RouteChat
// streams and GetFeature calls in flight end with a status, and the process
// exits 0 within the grace period.

#include <signal.h>
#include <stdlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "grpcpp/completion_queue.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "health.grpc.pb.h"
#include "route_guide.grpc.pb.h"
#include "server_process.h"
#include "server_process_calls.h"
#include "subprocess.h"
#include "test_util.h"

namespace routeguide {
namespace {


using testing::ServerPath;
using testing::ServerProcess;
using testing::StartServerProcess;
using testing::Subprocess;
using testing::kListeningLine;

TEST_CASE(
    "SIGTERM with 1000 open RouteChat streams and a running load: health "
    "flips, streams end with a status, the process exits 0 within the grace "
    "plus a second (3 s under ASan)",
    "[process][shutdown]") {
  constexpr int kStreams = 1000;
  constexpr int kChannels = 4;  // 250 streams each, under the per-connection cap.
  ServerProcess server =
      StartServerProcess({"--grace=3s", "--health_drain=1s"});

  // A load on connections of its own, running throughout.
  const char* client = std::getenv("ROUTEGUIDE_CLIENT");
  REQUIRE(client != nullptr);
  auto load = Subprocess::Start({client, "load", "--target=" + server.target(),
                                 "--duration=1h", "--concurrency=8",
                                 "--mix=get:1"});
  REQUIRE(load.ok());

  grpc::CompletionQueue cq;
  struct Stream {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientAsyncReaderWriter<RouteNote, RouteNote>> rpc;
    RouteNote incoming;
    grpc::Status status;
  };
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<RouteGuide::Stub>> stubs;
  for (int i = 0; i < kChannels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    channels.push_back(grpc::CreateCustomChannel(
        server.target(), grpc::InsecureChannelCredentials(), args));
    stubs.push_back(RouteGuide::NewStub(channels.back()));
  }
  // Tags: 2*i started, 2*i+1 finished (a read pending meanwhile is 3 kinds
  // of tag; reads use kStreams*2 + i).
  std::vector<std::unique_ptr<Stream>> streams(kStreams);
  auto tag = [](int64_t value) { return reinterpret_cast<void*>(value + 1); };
  for (int i = 0; i < kStreams; ++i) {
    streams[i] = std::make_unique<Stream>();
    SetDeadline(streams[i]->context, kRpcDeadline);
    streams[i]->rpc = stubs[i % kChannels]->AsyncRouteChat(
        &streams[i]->context, &cq, tag(4 * int64_t{i}));
  }
  auto next = [&](absl::Duration timeout) {
    void* got = nullptr;
    bool ok = false;
    const auto status = cq.AsyncNext(&got, &ok, absl::ToChronoTime(absl::Now() + timeout));
    REQUIRE(status == grpc::CompletionQueue::GOT_EVENT);
    return std::make_pair(reinterpret_cast<int64_t>(got) - 1, ok);
  };
  // Every stream started, then each posts a Read that stays pending.
  for (int started = 0; started < kStreams; ++started) {
    auto [value, ok] = next(absl::Seconds(30));
    REQUIRE(ok);
    REQUIRE(value % 4 == 0);
    const int i = static_cast<int>(value / 4);
    streams[i]->rpc->Read(&streams[i]->incoming, tag(4 * int64_t{i} + 1));
  }
  auto health = grpc::health::v1::Health::NewStub(channels[0]);
  auto check = [&] {
    grpc::ClientContext context;
    SetDeadline(context, kRpcDeadline);
    grpc::health::v1::HealthCheckResponse response;
    const grpc::Status status = health->Check(&context, {}, &response);
    return status.ok() ? response.status()
                       : grpc::health::v1::HealthCheckResponse::UNKNOWN;
  };
  REQUIRE(check() == grpc::health::v1::HealthCheckResponse::SERVING);

  const absl::Time signalled = absl::Now();
  REQUIRE(server.process->Signal(SIGTERM).ok());
  // Within the 1 s drain, health answers NOT_SERVING.
  bool saw_not_serving = false;
  while (!saw_not_serving && absl::Now() - signalled < absl::Seconds(1)) {
    saw_not_serving = check() == grpc::health::v1::HealthCheckResponse::NOT_SERVING;
  }
  CHECK(saw_not_serving);

  // Each stream's Read fails when the server ends it; then Finish says how.
  int finished = 0;
  int unavailable = 0;
  while (finished < kStreams) {
    auto [value, ok] = next(absl::Seconds(30));
    const int i = static_cast<int>(value / 4);
    if (value % 4 == 1) {
      REQUIRE(!ok);
      streams[i]->rpc->Finish(&streams[i]->status, tag(4 * int64_t{i} + 2));
    } else {
      REQUIRE(value % 4 == 2);
      ++finished;
      if (streams[i]->status.error_code() == grpc::StatusCode::UNAVAILABLE &&
          absl::StrContains(streams[i]->status.error_message(), "shutting down")) {
        ++unavailable;
      }
    }
  }
  CHECK(unavailable == kStreams);  // A status from the server, not a reset.
  health.reset();
  stubs.clear();
  channels.clear();

  const testing::ExitStatus exit = WaitForExit(*server.process);
  const absl::Duration took = absl::Now() - signalled;
  INFO("server stderr:\n" << server.process->stderr_text());
  CHECK(exit.Exited(0));
  CHECK(took < absl::Seconds(3) + kSanitizerSlowdown * absl::Seconds(1));

  // The load saw only calls that completed or were refused after the
  // server stopped accepting; it is stopped now.
  REQUIRE((*load)->Signal(SIGINT).ok());
  auto load_exit = (*load)->Wait(absl::Seconds(30));
  REQUIRE(load_exit.ok());
  CHECK(load_exit->exited);
  ShutdownAndDrain(cq);
}

TEST_CASE(
    "SIGTERM with 64 GetFeature calls kept in flight: calls end OK or "
    "refused (UNAVAILABLE, or CANCELLED by gRPC's shutdown race), none the "
    "server took is cut off, and the process exits 0 within the grace plus "
    "a second (3 s under ASan)",
    "[process][shutdown]") {
  // 0s: the server stops accepting as soon as it gets the signal; 300ms:
  // it keeps accepting (health NOT_SERVING) for a while first.
  const std::string drain = GENERATE(std::string("0s"), std::string("300ms"));
  CAPTURE(drain);
  constexpr absl::Duration kGrace = absl::Seconds(3);
  constexpr int kInFlight = 64;
  // Calls completed before the signal, so the server is busy when it comes.
  constexpr int kWarmUp = 2000;
  // Refusals seen after the signal before the client stops calling.
  constexpr int kEnoughRefused = 200;
  ServerProcess server = StartServerProcess(
      {"--grace=" + absl::FormatDuration(kGrace), "--health_drain=" + drain});

  grpc::ChannelArguments args;
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  auto channel = grpc::CreateCustomChannel(
      server.target(), grpc::InsecureChannelCredentials(), args);
  auto stub = RouteGuide::NewStub(channel);
  grpc::CompletionQueue cq;

  struct Call {
    grpc::ClientContext context;
    Feature feature;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<Feature>> rpc;
    bool started_after_signal = false;
  };
  // How the calls ended, by when they started (and, for OK, ended).
  struct Tally {
    int ok = 0;
    int unavailable = 0;
    int cancelled = 0;  // By gRPC's shutdown; see below.
    int other = 0;
    std::string other_example;  // "CODE: message" of the first other.
  };
  Tally started_before, started_after;
  int ok_finished_after_signal = 0;

  Point point;
  point.set_latitude(409146138);
  point.set_longitude(-746188906);
  std::vector<std::unique_ptr<Call>> calls(kInFlight);
  bool signalled = false;
  absl::Time signalled_at;
  auto start = [&](int slot) {
    calls[slot] = std::make_unique<Call>();
    Call& call = *calls[slot];
    SetDeadline(call.context, kRpcDeadline);
    call.started_after_signal = signalled;
    call.rpc = stub->AsyncGetFeature(&call.context, point, &cq);
    call.rpc->Finish(&call.feature, &call.status,
                     reinterpret_cast<void*>(static_cast<intptr_t>(slot) + 1));
  };
  for (int slot = 0; slot < kInFlight; ++slot) start(slot);

  // Every completion starts the next call in its slot, until enough have
  // been refused after the signal (or the grace is long over).
  int in_flight = kInFlight;
  int completed = 0;
  bool calling = true;
  while (in_flight > 0) {
    void* tag = nullptr;
    bool ok = false;
    // (No REQUIRE per completion: there are tens of thousands.)
    if (cq.AsyncNext(&tag, &ok,
                     absl::ToChronoTime(absl::Now() + kRpcDeadline + absl::Seconds(5))) !=
        grpc::CompletionQueue::GOT_EVENT) {
      FAIL("a call outlived its deadline");
    }
    if (!ok) FAIL("Finish completed without ok");
    --in_flight;
    ++completed;
    const int slot = static_cast<int>(reinterpret_cast<intptr_t>(tag) - 1);
    const Call& call = *calls[slot];
    Tally& tally = call.started_after_signal ? started_after : started_before;
    if (call.status.ok()) {
      ++tally.ok;
      if (signalled) ++ok_finished_after_signal;
    } else if (call.status.error_code() == grpc::StatusCode::UNAVAILABLE) {
      ++tally.unavailable;
    } else if (call.status.error_code() == grpc::StatusCode::CANCELLED &&
               call.status.error_message() == "CANCELLED") {
      ++tally.cancelled;
    } else if (tally.other++ == 0) {
      tally.other_example = absl::StrCat(call.status.error_code(), ": ",
                                         call.status.error_message());
    }

    if (!signalled && completed >= kWarmUp) {
      REQUIRE(server.process->Signal(SIGTERM).ok());
      signalled = true;
      signalled_at = absl::Now();
    }
    if (signalled && (started_after.unavailable >= kEnoughRefused ||
                      absl::Now() - signalled_at > kGrace + absl::Seconds(1))) {
      calling = false;
    }
    if (calling) {
      start(slot);
      ++in_flight;
    }
  }
  // Closing the connection lets the server finish without waiting for the
  // client to act on its GOAWAY.
  stub.reset();
  channel.reset();

  const testing::ExitStatus exit = WaitForExit(*server.process);
  const absl::Duration took = absl::Now() - signalled_at;
  const std::string& log = server.process->stderr_text();
  std::cout << "SIGTERM with calls in flight (drain " << drain << "): started "
            << "before the signal " << started_before.ok << " OK, "
            << started_before.unavailable << " UNAVAILABLE, "
            << started_before.cancelled << " CANCELLED, "
            << started_before.other << " other; after " << started_after.ok
            << " OK, " << started_after.unavailable << " UNAVAILABLE, "
            << started_after.cancelled << " CANCELLED, "
            << started_after.other << " other; " << ok_finished_after_signal
            << " OK finished after the signal; exit after "
            << absl::FormatDuration(took) << std::endl;
  INFO("server stderr:\n" << log);
  INFO("first other status, started before the signal: "
       << started_before.other_example);
  INFO("first other status, started after the signal: "
       << started_after.other_example);
  // Nothing but OK, UNAVAILABLE (refused: the server had stopped
  // accepting) and gRPC's own CANCELLED. gRPC 1.51 ends the calls that
  // reached the server but were not yet handed to the application when
  // Server::Shutdown runs (pending ones, and ones that arrive before the
  // client has read the GOAWAY) with CANCELLED, message "CANCELLED", rather
  // than UNAVAILABLE: grpc/grpc#41785, still open. The health drain is what
  // keeps them from a client that heeds health checks; this one does not.
  CHECK(started_before.other == 0);
  CHECK(started_after.other == 0);
  // Every call the application accepted ran to its end: none was cut off
  // when the grace ran out.
  CHECK(absl::StrContains(log, " finished, 0 cancelled)"));
  // Calls in flight when the signal came finished OK afterwards...
  CHECK(ok_finished_after_signal > 0);
  if (drain != "0s") {
    // ...all of them, when the server accepts for a while after the signal,
    CHECK(started_before.unavailable == 0);
    CHECK(started_before.cancelled == 0);
    // and so did calls made during the drain.
    CHECK(started_after.ok > 0);
  }
  CHECK(started_after.unavailable > 0);  // Refused once it stopped accepting.
  CHECK(exit.Exited(0));
  CHECK(took < kGrace + kSanitizerSlowdown * absl::Seconds(1));

  ShutdownAndDrain(cq);
}

}  // namespace
}  // namespace routeguide
