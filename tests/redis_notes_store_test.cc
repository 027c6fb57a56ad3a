// The Redis notes store against a real redis-server: the note script
// (order, per-location bound, TTL, the stored form), connection set-up
// (Unix socket, AUTH, SELECT), failures (down at start, back again, a hung
// store, too many pending), and RouteChat calls whose note is at the store
// when they are cancelled or time out: every call object is freed and the
// late answer reaches nothing (run under ASan + UBSan too).
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "catch2/catch.hpp"
#include "config.h"
#include "grpcpp/alarm.h"
#include "grpcpp/completion_queue.h"
#include "redis_notes_store.h"
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
using testing::RespValue;

std::unique_ptr<RedisServer> StartRedisOrFail() {
  auto redis = RedisServer::Start();
  INFO(redis.status().ToString());
  REQUIRE(redis.ok());
  return *std::move(redis);
}

RedisNotesStoreOptions OptionsFor(const std::string& url) {
  auto address = ParseNotesStore(url);
  INFO(address.status().ToString());
  REQUIRE(address.ok());
  REQUIRE(address->has_value());
  RedisNotesStoreOptions options;
  options.address = **address;
  return options;
}

std::unique_ptr<RedisNotesStore> StartStoreOrFail(RedisNotesStoreOptions options) {
  auto store = RedisNotesStore::Start(std::move(options));
  INFO(store.status().ToString());
  REQUIRE(store.ok());
  return *std::move(store);
}

// Start waits for the first connection only up to the store's timeout,
// which a loaded machine may pass: tests that need the store up wait here.
bool AwaitUp(const RedisNotesStore& store) {
  return WaitFor([&] { return store.up(); }, absl::Seconds(5));
}

// What a RouteChat call does with the store, on a queue of the test's own:
// set the alarm to the deadline, hand the ticket over, wait for the tag.
// nullopt: no answer before the deadline.
std::optional<NotesTicket::Answer> AddNoteAndWait(
    RedisNotesStore& store, const GeoPoint& point, const std::string& message,
    absl::Duration deadline = absl::Seconds(5)) {
  grpc::CompletionQueue cq;
  grpc::Alarm alarm;
  auto ticket = std::make_shared<NotesTicket>(&alarm);
  int tag = 0;
  alarm.Set(&cq, absl::ToChronoTime(absl::Now() + deadline), &tag);
  store.AddNote(point,
                MakeNote(message, point.latitude, point.longitude).SerializeAsString(),
                ticket);
  void* got = nullptr;
  bool ok = false;
  REQUIRE(cq.Next(&got, &ok));
  REQUIRE(got == &tag);
  std::optional<NotesTicket::Answer> answer = ticket->Collect();
  cq.Shutdown();
  while (cq.Next(&got, &ok)) {
  }
  return answer;
}

// The messages of the notes in an answer, which must be RouteNotes at
// `point`.
std::vector<std::string> Messages(const NotesTicket::Answer& answer,
                                  const GeoPoint& point) {
  INFO(answer.status().ToString());
  REQUIRE(answer.ok());
  std::vector<std::string> messages;
  for (const std::string& bytes : *answer) {
    RouteNote note;
    REQUIRE(note.ParseFromString(bytes));
    CHECK(note.location().latitude() == point.latitude);
    CHECK(note.location().longitude() == point.longitude);
    messages.push_back(note.message());
  }
  return messages;
}

std::vector<std::string> AnswerMessages(RedisNotesStore& store, const GeoPoint& point,
                                        const std::string& message) {
  auto answer = AddNoteAndWait(store, point, message);
  REQUIRE(answer.has_value());
  return Messages(*answer, point);
}

int64_t Integer(const absl::StatusOr<RespValue>& reply) {
  INFO(reply.status().ToString());
  REQUIRE(reply.ok());
  INFO(reply->ToString());
  REQUIRE(reply->type == RespValue::Type::kInteger);
  return reply->integer;
}

TEST_CASE("The note script answers the earlier notes in order, then stores the note",
          "[redis][store]") {
  auto redis = StartRedisOrFail();
  RedisNotesStoreOptions options = OptionsFor(redis->url());
  options.max_notes_per_location = 3;
  options.ttl = absl::Hours(1);
  auto store = StartStoreOrFail(options);
  REQUIRE(AwaitUp(*store));
  const GeoPoint here{407838351, -746143763};
  const GeoPoint elsewhere{407838351, -746143764};

  SECTION("order, and other locations are apart") {
    CHECK(AnswerMessages(*store, here, "a").empty());
    CHECK(AnswerMessages(*store, here, "b") == std::vector<std::string>{"a"});
    CHECK(AnswerMessages(*store, elsewhere, "x").empty());
    CHECK(AnswerMessages(*store, here, "c") == std::vector<std::string>{"a", "b"});
  }
  SECTION("the per-location bound keeps the newest") {
    for (const char* message : {"1", "2", "3", "4", "5"}) {
      AnswerMessages(*store, here, message);
    }
    CHECK(AnswerMessages(*store, here, "6") == std::vector<std::string>{"3", "4", "5"});
    CHECK(Integer(redis->Command({"LLEN", NotesKey(here)})) == 3);
  }
  SECTION("the list expires the TTL after its last note") {
    AnswerMessages(*store, here, "a");
    const int64_t ttl_ms = Integer(redis->Command({"PTTL", NotesKey(here)}));
    CHECK(ttl_ms > absl::ToInt64Milliseconds(absl::Hours(1) - absl::Minutes(1)));
    CHECK(ttl_ms <= absl::ToInt64Milliseconds(absl::Hours(1)));
    // A later note refreshes it: shorten it by hand, add, look again.
    REQUIRE(Integer(redis->Command({"PEXPIRE", NotesKey(here), "5000"})) == 1);
    AnswerMessages(*store, here, "b");
    CHECK(Integer(redis->Command({"PTTL", NotesKey(here)})) > 5000);
  }
  SECTION("notes are stored as RouteNote bytes, one list per location") {
    AnswerMessages(*store, here, "stored");
    auto stored = redis->Command({"LRANGE", NotesKey(here), "0", "-1"});
    REQUIRE(stored.ok());
    REQUIRE(stored->type == RespValue::Type::kArray);
    REQUIRE(stored->elements.size() == 1);
    RouteNote note;
    REQUIRE(note.ParseFromString(stored->elements[0].text));
    CHECK(note.message() == "stored");
    CHECK(note.location().latitude() == here.latitude);
    CHECK(note.location().longitude() == here.longitude);
  }
}

TEST_CASE("The store connects over a Unix socket, with AUTH, to a chosen database",
          "[redis][store]") {
  auto redis = StartRedisOrFail();
  const GeoPoint point{1, 2};
  SECTION("unix://") {
    auto store = StartStoreOrFail(OptionsFor(redis->unix_url()));
    CHECK(AwaitUp(*store));
    CHECK(AnswerMessages(*store, point, "over the socket").empty());
    CHECK(Integer(redis->Command({"LLEN", NotesKey(point)})) == 1);
  }
  SECTION("redis://.../5 selects database 5") {
    auto store = StartStoreOrFail(OptionsFor(redis->url() + "/5"));
    CHECK(AwaitUp(*store));
    AnswerMessages(*store, point, "in five");
    CHECK(Integer(redis->Command({"EXISTS", NotesKey(point)})) == 0);  // Not in 0.
    auto connection = testing::RedisConnection::Connect(redis->port());
    REQUIRE(connection.ok());
    REQUIRE((*connection)->Command({"SELECT", "5"}).ok());
    CHECK(Integer((*connection)->Command({"LLEN", NotesKey(point)})) == 1);
  }
  SECTION("a password") {
    REQUIRE(redis->Command({"CONFIG", "SET", "requirepass", "s3cret"}).ok());
    RedisNotesStoreOptions options = OptionsFor(redis->url());
    options.timeout = absl::Milliseconds(300);
    SECTION("the right one") {
      options.password = "s3cret";
      auto store = StartStoreOrFail(options);
      CHECK(AwaitUp(*store));
      CHECK(AnswerMessages(*store, point, "authenticated").empty());
    }
    SECTION("a wrong one: down, and RouteChat is told so, until Redis takes it") {
      options.password = "wrong";
      // With a database too, the AUTH error has a SELECT and a PING behind it.
      auto address = ParseNotesStore(redis->url() + "/2");
      REQUIRE(address.ok());
      options.address = **address;
      auto store = StartStoreOrFail(options);
      CHECK_FALSE(store->up());
      auto answer = AddNoteAndWait(*store, point, "refused");
      REQUIRE(answer.has_value());
      CHECK(answer->status().code() == absl::StatusCode::kUnavailable);
      CHECK(absl::StartsWith(answer->status().message(), "notes store: "));
      // Retrying all along: once the password is the one it has, it is up.
      auto connection = testing::RedisConnection::Connect(redis->port());
      REQUIRE(connection.ok());
      REQUIRE((*connection)->Command({"AUTH", "s3cret"}).ok());
      REQUIRE((*connection)->Command({"CONFIG", "SET", "requirepass", "wrong"}).ok());
      CHECK(WaitFor([&] { return store->up(); }, absl::Seconds(5)));
      CHECK(AnswerMessages(*store, point, "in the end").empty());
    }
  }
}

TEST_CASE("A full Redis (maxmemory, noeviction) is RESOURCE_EXHAUSTED, not an outage",
          "[redis][store]") {
  auto redis = StartRedisOrFail();
  auto store = StartStoreOrFail(OptionsFor(redis->url()));
  const GeoPoint point{8, 8};
  CHECK(AnswerMessages(*store, point, "before").empty());
  // A limit below what Redis already uses: every write is refused.
  REQUIRE(redis->Command({"CONFIG", "SET", "maxmemory-policy", "noeviction"}).ok());
  REQUIRE(redis->Command({"CONFIG", "SET", "maxmemory", "1"}).ok());
  auto refused = AddNoteAndWait(*store, point, "no room");
  REQUIRE(refused.has_value());
  CHECK(refused->status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(absl::StartsWith(refused->status().message(), "notes store: Redis is full: OOM"));
  CHECK(store->up());  // Connected and answering: only full.
  REQUIRE(redis->Command({"CONFIG", "SET", "maxmemory", "0"}).ok());
  CHECK(AnswerMessages(*store, point, "after") == std::vector<std::string>{"before"});
}

TEST_CASE("A store that is down at start comes up once Redis does, without a restart",
          "[redis][store]") {
  auto redis = StartRedisOrFail();
  REQUIRE(redis->Kill().ok());
  RedisNotesStoreOptions options = OptionsFor(redis->url());
  options.timeout = absl::Milliseconds(200);
  auto store = StartStoreOrFail(options);
  CHECK_FALSE(store->up());
  const GeoPoint point{5, 5};
  auto refused = AddNoteAndWait(*store, point, "too early");
  REQUIRE(refused.has_value());
  CHECK(refused->status().code() == absl::StatusCode::kUnavailable);

  REQUIRE(redis->Restart().ok());
  CHECK(WaitFor([&] { return store->up(); }, absl::Seconds(5)));
  CHECK(AnswerMessages(*store, point, "now").empty());

  SECTION("and again after Redis dies under it") {
    REQUIRE(redis->Kill().ok());
    CHECK(WaitFor([&] { return !store->up(); }, absl::Seconds(5)));
    auto lost = AddNoteAndWait(*store, point, "lost");
    REQUIRE(lost.has_value());
    CHECK(lost->status().code() == absl::StatusCode::kUnavailable);
    REQUIRE(redis->Restart().ok());
    CHECK(WaitFor([&] { return store->up(); }, absl::Seconds(5)));
    // A restarted Redis is empty.
    CHECK(AnswerMessages(*store, point, "after").empty());
  }
}

TEST_CASE("A Redis at maxclients refuses the store until a client leaves",
          "[redis][store]") {
  auto redis = StartRedisOrFail();
  // The one client Redis will take. The store's connection is then
  // refused with an error reply and closed, while a SELECT and a PING of
  // its set-up still wait for replies.
  auto only_client = testing::RedisConnection::Connect(redis->port());
  REQUIRE(only_client.ok());
  REQUIRE((*only_client)->Command({"CONFIG", "SET", "maxclients", "1"}).ok());
  RedisNotesStoreOptions options = OptionsFor(redis->url() + "/1");
  options.timeout = absl::Milliseconds(200);
  auto store = StartStoreOrFail(options);
  CHECK_FALSE(store->up());
  only_client->reset();
  CHECK(WaitFor([&] { return store->up(); }, absl::Seconds(5)));
  CHECK(AnswerMessages(*store, GeoPoint{4, 4}, "let in").empty());
}

TEST_CASE("A connection that stays hung is dropped and made again",
          "[redis][store]") {
  auto redis = StartRedisOrFail();
  RedisNotesStoreOptions options = OptionsFor(redis->url());
  options.timeout = absl::Milliseconds(200);  // Dropped after 2 s.
  auto store = StartStoreOrFail(options);
  REQUIRE(AwaitUp(*store));
  const GeoPoint point{6, 6};
  REQUIRE(redis->Pause().ok());
  auto timed_out = AddNoteAndWait(*store, point, "into the void", options.timeout);
  CHECK_FALSE(timed_out.has_value());
  CHECK(store->pending() == 1);
  CHECK(WaitFor([&] { return !store->up(); }, absl::Seconds(1)));
  // Still hung: the request fails with the dropped connection, not when
  // (if ever) Redis answers.
  CHECK(WaitFor([&] { return store->pending() == 0; }, absl::Seconds(5)));
  REQUIRE(redis->Resume().ok());
  CHECK(WaitFor([&] { return store->up(); }, absl::Seconds(5)));
  // The note whose connection was dropped may or may not have reached
  // Redis before it hung.
  const std::vector<std::string> earlier = AnswerMessages(*store, point, "later");
  CHECK((earlier.empty() || earlier == std::vector<std::string>{"into the void"}));
}

TEST_CASE("A hung store: pending requests are bounded, late answers are dropped",
          "[redis][store]") {
  auto redis = StartRedisOrFail();
  RedisNotesStoreOptions options = OptionsFor(redis->url());
  options.timeout = absl::Seconds(10);  // Longer than the test: no "not answering".
  options.max_pending = 2;
  auto store = StartStoreOrFail(options);
  REQUIRE(AwaitUp(*store));
  const GeoPoint point{7, 7};
  REQUIRE(redis->Pause().ok());

  // Two requests wait at the store; the third is refused at once.
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<grpc::Alarm>> alarms;
  std::vector<std::shared_ptr<NotesTicket>> tickets;
  std::vector<int> tags(2);
  for (int i = 0; i < 2; ++i) {
    alarms.push_back(std::make_unique<grpc::Alarm>());
    tickets.push_back(std::make_shared<NotesTicket>(alarms.back().get()));
    alarms.back()->Set(&cq, absl::ToChronoTime(absl::Now() + absl::Seconds(30)), &tags[i]);
    store->AddNote(point, MakeNote(absl::StrCat(i), 7, 7).SerializeAsString(),
                   tickets.back());
  }
  CHECK(WaitFor([&] { return store->pending() == 2; }, absl::Seconds(5)));
  auto refused = AddNoteAndWait(*store, point, "third");
  REQUIRE(refused.has_value());
  CHECK(refused->status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(absl::StrContains(refused->status().message(), "--notes_store_max_pending"));

  SECTION("answered once Redis goes on") {
    REQUIRE(redis->Resume().ok());
    for (int i = 0; i < 2; ++i) {
      void* tag = nullptr;
      bool ok = true;
      REQUIRE(cq.Next(&tag, &ok));
      CHECK_FALSE(ok);  // Woken early by the answer.
    }
    CHECK(Messages(*tickets[0]->Collect().value(), point).empty());
    CHECK(Messages(*tickets[1]->Collect().value(), point) == std::vector<std::string>{"0"});
    CHECK(store->pending() == 0);
  }
  SECTION("given up on: the answer that comes later touches no alarm") {
    // The calls give up (their alarms go), then Redis answers.
    for (auto& ticket : tickets) CHECK_FALSE(ticket->Collect().has_value());
    alarms.clear();  // Cancels them; under ASan a late touch would be caught.
    REQUIRE(redis->Resume().ok());
    CHECK(WaitFor([&] { return store->pending() == 0; }, absl::Seconds(5)));
    // The store works on.
    CHECK(AnswerMessages(*store, point, "after") == std::vector<std::string>{"0", "1"});
  }
  REQUIRE(redis->Resume().ok());
  alarms.clear();
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
}

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
  auto exporter = MetricsExporter::Start("127.0.0.1:0", *test.server, *test.features);
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
