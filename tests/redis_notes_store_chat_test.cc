// RouteChat calls against a server in-process whose notes store is a real
// redis-server: calls whose note is at the store when they are cancelled
// or time out are freed and the late answer reaches nothing (run under
// ASan + UBSan too), and the metrics show the store. The store itself is
// tested in redis_notes_store_test.cc.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "catch2/catch.hpp"
#include "config.h"
#include "redis_notes_store.h"
#include "redis_notes_store_fixture.h"
#include "redis_server.h"
#include "test_server.h"
#include "test_util.h"
#if ROUTEGUIDE_WITH_METRICS
#include "metrics_exporter.h"
#include "metrics_scrape.h"
#endif

namespace routeguide {
namespace {

using testing::RedisServer;

// A server in-process whose RouteChat notes go to `redis`.
struct RedisTestServer {
  explicit RedisTestServer(const RedisServer& redis,
                           absl::Duration timeout = absl::Seconds(10)) {
    RedisNotesStoreOptions options = OptionsFor(redis.url());
    options.timeout = timeout;
    notes = StartStoreOrFail(options);
    REQUIRE(AwaitUp(*notes));
    auto started =
        RouteGuideServer::Start(TestServer::DefaultOptions(), features, notes);
    INFO(started.status().ToString());
    REQUIRE(started.ok());
    server = *std::move(started);
    stub = RouteGuide::NewStub(OwnChannel(server->port()));
  }

  std::shared_ptr<FeatureStore> features = DefaultTestStore();
  std::shared_ptr<RedisNotesStore> notes;
  std::unique_ptr<RouteGuideServer> server;
  std::unique_ptr<RouteGuide::Stub> stub;
};

struct OpenChat {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<RouteNote, RouteNote>> stream;
};

TEST_CASE("1000 RouteChats cancelled while their note is at the store are freed at once",
          "[redis][lifecycle]") {
  auto redis = StartRedisOrFail();
  // The store's timeout outlasts every wait below: only the cancellation
  // can free the calls in time.
  RedisTestServer test(*redis, absl::Minutes(1));
  const int64_t objects_before = test.server->calls().objects();
  constexpr int kRounds = 10;
  constexpr int kChatsPerRound = 100;
  for (int round = 0; round < kRounds; ++round) {
    REQUIRE(redis->Pause().ok());
    // A connection per round: a thousand resets in a second on one would
    // be HTTP/2 rapid reset to the server's guard.
    auto stub = RouteGuide::NewStub(OwnChannel(test.server->port()));
    std::vector<std::unique_ptr<OpenChat>> chats;
    for (int i = 0; i < kChatsPerRound; ++i) {
      auto chat = std::make_unique<OpenChat>();
      SetDeadline(chat->context);
      chat->stream = stub->RouteChat(&chat->context);
      REQUIRE(chat->stream->Write(MakeNote(absl::StrCat(round, ".", i), round, i)));
      chats.push_back(std::move(chat));
    }
    // Every call waits on the store...
    INFO("round " << round << ", pending " << test.notes->pending());
    REQUIRE(WaitFor([&] { return test.notes->pending() == kChatsPerRound; }));
    const int64_t cancelled_before = test.server->calls().cancelled();
    for (auto& chat : chats) chat->context.TryCancel();
    // ...sees its cancellation and is freed at once, while its note is
    // still at the (hung) store...
    REQUIRE(WaitFor([&] {
      return test.server->calls().cancelled() - cancelled_before == kChatsPerRound;
    }));
    REQUIRE(WaitFor([&] { return test.server->calls().objects() == objects_before; }));
    CHECK(test.server->calls().active() == 0);
    CHECK(test.notes->pending() == kChatsPerRound);
    // ...whose answers, when they come, reach nothing.
    REQUIRE(redis->Resume().ok());
    REQUIRE(WaitFor([&] { return test.notes->pending() == 0; }));
  }
  // The server and the store work on.
  grpc::ClientContext context;
  SetDeadline(context);
  auto stream = test.stub->RouteChat(&context);
  REQUIRE(stream->Write(MakeNote("after", 0, 0)));
  RouteNote reply;
  REQUIRE(stream->Read(&reply));
  CHECK(reply.message() == "0.0");
}

TEST_CASE("A RouteChat whose store does not answer in time ends UNAVAILABLE",
          "[redis][lifecycle]") {
  auto redis = StartRedisOrFail();
  RedisTestServer test(*redis, absl::Milliseconds(200));
  const int64_t objects_before = test.server->calls().objects();
  REQUIRE(redis->Pause().ok());
  constexpr int kChats = 20;
  std::vector<std::unique_ptr<OpenChat>> chats;
  const absl::Time start = absl::Now();
  for (int i = 0; i < kChats; ++i) {
    auto chat = std::make_unique<OpenChat>();
    SetDeadline(chat->context);
    chat->stream = test.stub->RouteChat(&chat->context);
    REQUIRE(chat->stream->Write(MakeNote(absl::StrCat(i), 3, i)));
    chats.push_back(std::move(chat));
  }
  for (auto& chat : chats) {
    RouteNote reply;
    CHECK_FALSE(chat->stream->Read(&reply));
    const grpc::Status status = chat->stream->Finish();
    CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(absl::StartsWith(status.error_message(), "notes store: "));
  }
  // About the timeout, not the 20 s deadline.
  CHECK(absl::Now() - start < absl::Seconds(3));
  // The answers come later, to calls that are gone.
  REQUIRE(redis->Resume().ok());
  CHECK(WaitFor([&] { return test.notes->pending() == 0; }));
  CHECK(WaitFor([&] { return test.server->calls().objects() == objects_before; }));
  // And Redis holds every note the store sent (stored, only late). Notes
  // that came once the store counted as not answering were refused unsent.
  const int64_t sent = static_cast<int64_t>(test.notes->stats().requests.load() -
                                            test.notes->stats().refused.load());
  CHECK(sent >= 1);
  int64_t stored = 0;
  for (int i = 0; i < kChats; ++i) {
    stored += Integer(redis->Command({"LLEN", NotesKey(GeoPoint{3, i})}));
  }
  CHECK(stored == sent);
}

#if ROUTEGUIDE_WITH_METRICS
TEST_CASE("Metrics show whether the notes store is up, and its latency",
          "[redis][metrics]") {
  auto redis = StartRedisOrFail();
  RedisTestServer test(*redis, absl::Milliseconds(300));
  auto exporter = MetricsExporter::Start("127.0.0.1:0", *test.server, *test.features,
                                         kTestMetricsModule);
  INFO(exporter.status().ToString());
  REQUIRE(exporter.ok());
  grpc::ClientContext context;
  SetDeadline(context);
  auto stream = test.stub->RouteChat(&context);
  for (int i = 0; i < 3; ++i) REQUIRE(stream->Write(MakeNote(absl::StrCat(i), 9, 9)));
  REQUIRE(stream->WritesDone());
  RouteNote reply;
  int replies = 0;
  while (stream->Read(&reply)) ++replies;
  REQUIRE(stream->Finish().ok());
  CHECK(replies == 3);  // 0 + 1 + 2 earlier notes.

  std::string metrics = Scrape((*exporter)->port());
  INFO(metrics);
  CHECK(absl::StrContains(metrics, "\nrouteguide_notes_store_up 1\n"));
  CHECK(absl::StrContains(metrics, "\nrouteguide_notes_store_latency_seconds_count 3\n"));
  CHECK(absl::StrContains(metrics, "\nrouteguide_notes_store_pending 0\n"));

  REQUIRE(redis->Kill().ok());
  REQUIRE(WaitFor([&] { return !test.notes->up(); }, absl::Seconds(5)));
  metrics = Scrape((*exporter)->port());
  CHECK(absl::StrContains(metrics, "\nrouteguide_notes_store_up 0\n"));
}
#endif

}  // namespace
}  // namespace routeguide
