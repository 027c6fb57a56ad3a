// The Redis notes store against a real redis-server: the note script
// (order, per-location bound, TTL, the stored form), connection set-up
// (Unix socket, AUTH, SELECT), failures (down at start, back again, a hung
// store, too many pending), and RouteChat calls whose note is at the store
// when they are cancelled or time out: every call object is freed and the
// late answer reaches nothing (run under ASan + UBSan too).
//
// The RouteChat calls (and the metrics of a server using the store) are in
// redis_notes_store_chat_test.cc; the helpers both use in
// redis_notes_store_fixture.h.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "catch2/catch.hpp"
#include "grpcpp/alarm.h"
#include "grpcpp/completion_queue.h"
#include "redis_notes_store.h"
#include "redis_notes_store_fixture.h"
#include "redis_server.h"
#include "test_util.h"

namespace routeguide {
namespace {

using testing::RespValue;

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
  ShutdownAndDrain(cq);
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
  ShutdownAndDrain(cq);
}

}  // namespace
}  // namespace routeguide
