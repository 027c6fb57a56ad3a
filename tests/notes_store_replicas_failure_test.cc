// RouteChat across replicas when the shared redis-server fails: killed or
// hung (SIGSTOP), RouteChat fails explicitly and in bounded time without
// slowing the other methods, and works again once Redis is back; past
// --notes_store_max_pending it is refused at once; and SIGTERM with streams
// waiting on a hung store. Helpers in notes_store_replicas_fixture.h.

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "grpcpp/client_context.h"
#include "nlohmann/json.hpp"
#include "notes_store_replicas_fixture.h"
#include "route_guide.grpc.pb.h"
#include "server_process.h"
#include "server_process_calls.h"
#include "subprocess.h"
#include "test_util.h"

namespace routeguide {
namespace {

using testing::ServerProcess;
using testing::Subprocess;

// Built with AddressSanitizer (the server alike): every process is several
// times slower, so timing bounds get more room.
constexpr bool kUnderAsan = !testing::kRssBoundsHold;
// Room for scheduling on two shared cores on top of a bound the server
// promises.
constexpr absl::Duration kTimingMargin =
    kUnderAsan ? absl::Milliseconds(400) : absl::Milliseconds(100);
// The same for a chat that waits out the store's timeout while a load runs.
constexpr absl::Duration kHungChatMargin =
    kUnderAsan ? absl::Milliseconds(400) : absl::Milliseconds(250);
// How long a replica may take to use a store that came back.
constexpr absl::Duration kRecoveryBound = absl::Seconds(5);

absl::Duration Percentile(std::vector<absl::Duration> samples, double percent) {
  REQUIRE(!samples.empty());
  std::sort(samples.begin(), samples.end());
  const size_t rank = static_cast<size_t>(
      std::ceil(percent / 100.0 * static_cast<double>(samples.size())));
  return samples[std::min(samples.size(), std::max<size_t>(rank, 1)) - 1];
}

// `count` GetFeature calls one after the other; every one must succeed.
// Returns the p99 latency.
absl::Duration GetFeatureP99(RouteGuide::Stub& stub, int count) {
  std::vector<absl::Duration> latencies;
  int failed = 0;
  std::string first_failure;
  for (int i = 0; i < count; ++i) {
    grpc::ClientContext context;
    SetDeadline(context);
    Feature feature;
    const absl::Time start = absl::Now();
    const grpc::Status status =
        stub.GetFeature(&context, MakePoint(409146138, -746188906), &feature);
    latencies.push_back(absl::Now() - start);
    if (!status.ok() || feature.name().empty()) {
      if (failed++ == 0) first_failure = StatusText(status);
    }
  }
  INFO("first failure: " << first_failure);
  CHECK(failed == 0);
  return Percentile(latencies, 99);
}

TEST_CASE(
    "Redis killed mid-run: RouteChat fails with UNAVAILABLE within the store "
    "timeout, GetFeature is unaffected, and RouteChat works again once "
    "Redis is back",
    "[redis][failure]") {
  constexpr absl::Duration kStoreTimeout = absl::Milliseconds(500);
  auto redis = StartRedis();
  ServerProcess replica = StartReplica(
      redis->url(), {absl::StrCat("--notes_store_timeout=",
                                  absl::ToInt64Milliseconds(kStoreTimeout), "ms")});
  auto stub = NewStub(replica.target());
  REQUIRE(AwaitChatWorks(*stub));
  GetFeatureP99(*stub, 50);  // Warm-up.
  const absl::Duration p99_before = GetFeatureP99(*stub, 300);

  // A stream open before the kill, known to be served.
  grpc::ClientContext context;
  SetDeadline(context);
  auto stream = OpenIdleChat(*stub, context);

  const absl::Time killed = absl::Now();
  RequireOk(redis->Kill());

  // Its next note ends it, in bounded time.
  REQUIRE(stream->Write(MakeNote("after the kill", 123456789, -123456789)));
  RouteNote reply;
  int replies = 0;
  while (stream->Read(&reply)) ++replies;
  const grpc::Status status = stream->Finish();
  const absl::Duration after_kill = absl::Now() - killed;
  CheckStoreUnavailable(status);
  CHECK(replies == 0);
  INFO("status after " << absl::FormatDuration(after_kill));
  CHECK(after_kill <= kStoreTimeout + kTimingMargin);

  // New chats fail alike, each within the bound; the other methods work,
  // no slower than before.
  for (int i = 0; i < 10; ++i) {
    const Point point = FreshPoint();
    const ChatOutcome outcome =
        Chat(*stub, {MakeNote("down", point.latitude(), point.longitude())});
    INFO("chat " << i << " after the kill: " << absl::FormatDuration(outcome.elapsed));
    CheckStoreUnavailable(outcome.status);
    CHECK(outcome.elapsed <= kStoreTimeout + kTimingMargin);
  }
  const absl::Duration p99_during = GetFeatureP99(*stub, 300);
  INFO("GetFeature p99 before " << absl::FormatDuration(p99_before) << ", during "
                                << absl::FormatDuration(p99_during));
  // A poller blocked on the dead store would add the timeout (500 ms);
  // the floor is for a busy machine's scheduling, not for the server:
  // four stalls of a few tens of ms in 300 calls move the p99 that far.
  CHECK(p99_during <= 3 * p99_before + absl::Milliseconds(100));

  // Back on the same port, empty: RouteChat works again without a restart.
  RequireOk(redis->Restart());
  const absl::Time restarted = absl::Now();
  CHECK(AwaitChatWorks(*stub, kRecoveryBound));
  INFO("recovered after " << absl::FormatDuration(absl::Now() - restarted));
  CHECK(absl::Now() - restarted <= kRecoveryBound);
  const Point point = FreshPoint();
  const ChatOutcome outcome =
      Chat(*stub, {MakeNote("back", point.latitude(), point.longitude())});
  CHECK(outcome.status.ok());
  CHECK(Describe(StoredNotes(*redis, point)) ==
        Describe(std::vector<RouteNote>{MakeNote("back", point.latitude(), point.longitude())}));

  // The outage was logged once as a warning, not per failed call (11 of
  // them) or per reconnection attempt.
  REQUIRE(testing::StillRunning(replica));
  int warnings = 0;
  for (absl::string_view line :
       absl::StrSplit(replica.process->stderr_text(), '\n')) {
    if (absl::StrContains(line, "notes store") && absl::StrContains(line, "warn")) {
      ++warnings;
    }
  }
  INFO("server log:\n" << replica.process->stderr_text());
  CHECK(warnings == 1);
}

TEST_CASE(
    "Redis hung by SIGSTOP: RouteChat times out with UNAVAILABLE while an "
    "open-loop GetFeature load keeps its p99, and recovers after SIGCONT",
    "[redis][failure]") {
  constexpr absl::Duration kStoreTimeout = absl::Milliseconds(300);
  constexpr absl::Duration kLoadDuration = absl::Seconds(2);
  // The bound for GetFeature while the store hangs; ASan-built
  // processes (the load client too) on two shared cores need more.
  const absl::Duration kGetP99Bound =
      kUnderAsan ? absl::Milliseconds(200) : absl::Milliseconds(20);
  auto redis = StartRedis();
  ServerProcess replica = StartReplica(
      redis->url(), {absl::StrCat("--notes_store_timeout=",
                                  absl::ToInt64Milliseconds(kStoreTimeout), "ms")});
  auto stub = NewStub(replica.target());
  REQUIRE(AwaitChatWorks(*stub));

  // One run of the load with the store hanging meanwhile; returns the
  // GetFeature p99 less the client's own start lag (see below).
  int attempt = 0;
  const auto run = [&]() -> absl::Duration {
    INFO("attempt " << attempt);
    // In Redis's scratch directory, removed with it.
    const std::string json_path = absl::StrCat(redis->directory(), "/get", attempt, ".json");
    auto load = Subprocess::Start(
        {ClientPath(), "load", "--target=" + replica.target(), "--mix=get:100",
         "--rps=200", "--warmup=100ms",
         absl::StrCat("--duration=", absl::ToInt64Milliseconds(kLoadDuration), "ms"),
         "--json=" + json_path});
    RequireOk(load.status());
    const absl::Time load_end = absl::Now() + kLoadDuration + absl::Milliseconds(200);

    // While the load runs, the store hangs again and again: SIGSTOP, two
    // chats whose notes wait on it until the timeout ends them, SIGCONT, and
    // RouteChat works again. Most of the time some store request hangs.
    int cycles = 0;
    while (absl::Now() < load_end) {
      INFO("cycle " << cycles);
      RequireOk(redis->Pause());
      std::vector<ChatOutcome> hung(2);
      {
        std::vector<std::thread> chatters;
        for (ChatOutcome& outcome : hung) {
          chatters.emplace_back([&stub, &outcome] {
            const Point point = FreshPoint();
            outcome = Chat(*stub, {MakeNote("hung", point.latitude(), point.longitude())});
          });
        }
        for (std::thread& chatter : chatters) chatter.join();
      }
      // Each ends UNAVAILABLE within the timeout (and the machine's
      // scheduling); the first to reach the store waits the timeout out. A
      // note that reaches it later than that finds the store counted as
      // not answering and fails at once.
      int timed_out = 0;
      for (const ChatOutcome& outcome : hung) {
        INFO("chat ended after " << absl::FormatDuration(outcome.elapsed) << ": "
                                 << StatusText(outcome.status));
        CheckStoreUnavailable(outcome.status);
        CHECK(outcome.replies.empty());
        CHECK(outcome.elapsed <= kStoreTimeout + kHungChatMargin);
        if (absl::StartsWith(outcome.status.error_message(), "notes store: timeout")) {
          ++timed_out;
          CHECK_THAT(outcome.status.error_message(),
                     Catch::Contains(absl::StrCat(absl::ToInt64Milliseconds(kStoreTimeout), "ms")));
          CHECK(outcome.elapsed >= kStoreTimeout - absl::Milliseconds(10));
        }
      }
      CHECK(timed_out >= 1);
      RequireOk(redis->Resume());
      const absl::Time resumed = absl::Now();
      REQUIRE(AwaitChatWorks(*stub, kRecoveryBound));
      INFO("recovered after " << absl::FormatDuration(absl::Now() - resumed));
      CHECK(absl::Now() - resumed <= kRecoveryBound);
      ++cycles;
    }
    CHECK(cycles >= 2);

    auto load_exit = (*load)->Wait(absl::Seconds(60));
    RequireOk(load_exit.status());
    INFO("load client: " << (*load)->stdout_text() << (*load)->stderr_text());
    CHECK(load_exit->Exited(0));
    const auto json = nlohmann::json::parse(ReadFile(json_path));
    const auto& get = json["kinds"]["get"];
    INFO(get.dump(2));
    CHECK(get["ok"].get<int64_t>() >= 300);
    CHECK(get["failed"].get<int64_t>() == 0);
    CHECK(get["wrong_answer"].get<int64_t>() == 0);
    // Latency counts from each call's scheduled start, so a client that
    // started calls late (its own lag on a busy machine, reported apart)
    // adds that lag to it; the server is held to the bound on top of it.
    // A poller blocked on the store would add the store timeout (300 ms).
    const absl::Duration p99 = absl::Nanoseconds(get["latency_ns"]["p99"].get<double>());
    const absl::Duration lag_p99 =
        absl::Nanoseconds(json["start_lag_ns"]["p99"].get<double>());
    INFO("GetFeature p99 " << absl::FormatDuration(p99) << ", the client's start lag p99 "
                           << absl::FormatDuration(lag_p99));
    return p99 - lag_p99;
  };
  // A poller blocked on the store would stall GetFeature for the store
  // timeout in every hang cycle of every run. A machine shared with other
  // work can stall any process for 100 ms and more once in a while, so a
  // run over the bound is tried once more; both must not be over it.
  absl::Duration p99 = run();
  if (p99 >= kGetP99Bound) {
    WARN("GetFeature p99 " << absl::FormatDuration(p99)
                           << " over the bound while the store hung; once more");
    ++attempt;
    p99 = run();
  }
  CHECK(p99 < kGetP99Bound);
}

TEST_CASE(
    "Past --notes_store_max_pending requests outstanding, RouteChat gets "
    "RESOURCE_EXHAUSTED at once",
    "[redis][failure]") {
  constexpr int kMaxPending = 2;
  constexpr int kChats = 6;
  constexpr absl::Duration kStoreTimeout = absl::Seconds(2);
  auto redis = StartRedis();
  ServerProcess replica = StartReplica(
      redis->url(), {absl::StrCat("--notes_store_max_pending=", kMaxPending),
                     "--notes_store_timeout=2s"});
  auto stub = NewStub(replica.target());
  REQUIRE(AwaitChatWorks(*stub));

  // A hung store: the first kMaxPending notes stay outstanding until their
  // timeout; the others find no room.
  RequireOk(redis->Pause());
  std::vector<ChatOutcome> outcomes(kChats);
  std::vector<std::thread> chatters;
  for (int i = 0; i < kChats; ++i) {
    chatters.emplace_back([&, i] {
      const Point point = FreshPoint();
      outcomes[i] = Chat(*stub, {MakeNote("pending", point.latitude(), point.longitude())});
    });
  }
  for (std::thread& chatter : chatters) chatter.join();
  int exhausted = 0;
  int timed_out = 0;
  for (const ChatOutcome& outcome : outcomes) {
    INFO(StatusText(outcome.status) << " after " << absl::FormatDuration(outcome.elapsed));
    if (outcome.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++exhausted;
      CHECK(outcome.elapsed < kStoreTimeout / 2);
    } else {
      ++timed_out;
      CheckStoreUnavailable(outcome.status);
      CHECK(outcome.elapsed >= kStoreTimeout - absl::Milliseconds(10));
    }
  }
  CHECK(timed_out == kMaxPending);
  CHECK(exhausted == kChats - kMaxPending);

  RequireOk(redis->Resume());
  CHECK(AwaitChatWorks(*stub, kRecoveryBound));
}

TEST_CASE(
    "SIGTERM with RouteChat streams waiting on a hung store: the server "
    "exits 0 within the grace plus a second",
    "[redis][shutdown]") {
  constexpr int kStreams = 8;
  constexpr absl::Duration kGrace = absl::Seconds(2);
  auto redis = StartRedis();
  // A store timeout well past the grace: the streams are still waiting on
  // the store when the grace period ends.
  ServerProcess replica =
      StartReplica(redis->url(), {"--grace=2s", "--notes_store_timeout=10s"});
  auto stub = NewStub(replica.target());
  REQUIRE(AwaitChatWorks(*stub));

  struct Waiting {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReaderWriter<RouteNote, RouteNote>> stream;
    std::thread reader;
    std::atomic<bool> ended{false};
    grpc::Status status;

    // A failed REQUIRE must not leave the reader blocked (or joinable).
    ~Waiting() {
      if (reader.joinable()) {
        context.TryCancel();
        reader.join();
      }
    }
  };
  std::vector<std::unique_ptr<Waiting>> streams;
  for (int i = 0; i < kStreams; ++i) {
    auto& waiting = streams.emplace_back(std::make_unique<Waiting>());
    SetDeadline(waiting->context);
    // Served, through the store, before it hangs.
    const Point point = FreshPoint();
    waiting->stream = stub->RouteChat(&waiting->context);
    REQUIRE(waiting->stream->Write(MakeNote("one", point.latitude(), point.longitude())));
    REQUIRE(waiting->stream->Write(MakeNote("two", point.latitude(), point.longitude())));
    RouteNote reply;
    REQUIRE(waiting->stream->Read(&reply));
    REQUIRE(reply.message() == "one");
  }
  RequireOk(redis->Pause());
  for (auto& waiting : streams) {
    const Point point = FreshPoint();
    REQUIRE(waiting->stream->Write(MakeNote("stuck", point.latitude(), point.longitude())));
    waiting->reader = std::thread([w = waiting.get()] {
      RouteNote reply;
      while (w->stream->Read(&reply)) {
      }
      w->status = w->stream->Finish();
      w->ended.store(true);
    });
  }
  // They wait on the store: none ends by itself.
  const auto any_ended = [&] {
    return std::any_of(streams.begin(), streams.end(),
                       [](const auto& w) { return w->ended.load(); });
  };
  CHECK_FALSE(WaitFor(any_ended, absl::Milliseconds(300)));

  const absl::Time signalled = absl::Now();
  RequireOk(replica.process->Signal(SIGTERM));
  const testing::ExitStatus exit = WaitForExit(*replica.process);
  const absl::Duration took = absl::Now() - signalled;
  INFO("server log:\n" << replica.process->stderr_text());
  CHECK(exit.Exited(0));
  INFO("exited after " << absl::FormatDuration(took));
  CHECK(took <= kGrace + absl::Seconds(1) + (kUnderAsan ? kTimingMargin : absl::ZeroDuration()));

  // Every stream ended with a status.
  const auto all_ended = [&] {
    return std::all_of(streams.begin(), streams.end(),
                       [](const auto& w) { return w->ended.load(); });
  };
  CHECK(WaitFor(all_ended, absl::Seconds(5)));
  for (auto& waiting : streams) {
    if (!waiting->ended.load()) waiting->context.TryCancel();
    waiting->reader.join();
    INFO(StatusText(waiting->status));
    // Ended by the server as it shut down, not reset by gRPC.
    CHECK(waiting->status.error_code() == grpc::StatusCode::UNAVAILABLE);
  }
  RequireOk(redis->Resume());
}

}  // namespace
}  // namespace routeguide
