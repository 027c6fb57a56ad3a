// RouteChat across replicas: routeguide-server child processes sharing one
// real redis-server (tests/redis_server.h) through --notes_store. Notes
// posted through one replica come back through another, the per-location
// bound holds across them, concurrent chats each see exactly the notes
// stored before theirs, and a store that dies or hangs fails RouteChat
// explicitly and in bounded time without slowing the other methods. Also:
// the notes script itself on a real Redis, /DB addresses, AUTH, max
// pending, streams ending while their note waits on the store, SIGTERM,
// and the load generator's checked chats across two replicas.
//
// The failure cases (a store killed, hung, full of pending requests, and
// SIGTERM while it hangs) are in notes_store_replicas_failure_test.cc, the
// concurrent chats and the load generator in
// notes_store_replicas_concurrency_test.cc; the helpers they share in
// notes_store_replicas_fixture.h.

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "geo.h"
#include "notes_store_replicas_fixture.h"
#include "redis_notes_store.h"
#include "redis_server.h"
#include "route_guide.grpc.pb.h"
#include "server_process.h"
#include "server_process_calls.h"
#include "test_util.h"

namespace routeguide {
namespace {

using testing::RedisServer;
using testing::RespValue;
using testing::ServerProcess;

TEST_CASE(
    "The redis-server fixture answers over TCP, hangs on Pause, comes back "
    "empty on the same port after Restart, and is gone after Kill",
    "[redis][fixture]") {
  auto redis = StartRedis();
  const int port = redis->port();
  REQUIRE(port > 0);
  CHECK(redis->Ping());
  auto reply = redis->Command({"RPUSH", "k", std::string("a\0\r\nb", 5), "c"});
  REQUIRE(reply.ok());
  CHECK(reply->integer == 2);
  reply = redis->Command({"LRANGE", "k", "0", "-1"});
  REQUIRE(reply.ok());
  REQUIRE(reply->elements.size() == 2);
  CHECK(reply->elements[0].text == std::string("a\0\r\nb", 5));
  reply = redis->Command({"GET", "missing"});
  REQUIRE(reply.ok());
  CHECK(reply->type == RespValue::Type::kNil);
  reply = redis->Command({"NOSUCHCOMMAND"});
  REQUIRE(reply.ok());
  CHECK(reply->IsError());

  // Hung: a command times out, and works again after Resume.
  RequireOk(redis->Pause());
  auto hung = redis->Command({"PING"}, absl::Milliseconds(200));
  CHECK(hung.status().code() == absl::StatusCode::kDeadlineExceeded);
  RequireOk(redis->Resume());
  CHECK(redis->Ping());

  RequireOk(redis->Restart());
  CHECK(redis->port() == port);
  CHECK(IntegerReply(*redis, {"DBSIZE"}) == 0);

  RequireOk(redis->Kill());
  CHECK_FALSE(redis->Ping(absl::Milliseconds(200)));
  RequireOk(redis->Restart());
  CHECK(redis->Ping());
}

TEST_CASE(
    "The notes script on a real Redis: the earlier notes oldest first, the "
    "per-location bound, the TTL set on every note",
    "[redis][script]") {
  auto redis = StartRedis();
  CHECK(NotesKey(GeoPoint{409146138, -746188906}) ==
        "routeguide:notes:409146138:-746188906");
  const std::string key = NotesKey(GeoPoint{1, -2});
  // Runs the script as the store does; returns the notes it answered.
  const auto add = [&](const std::string& note, int bound, int64_t ttl_ms) {
    auto reply = redis->Command({"EVAL", kAddNoteScript, "1", key, note,
                                 absl::StrCat(bound), absl::StrCat(ttl_ms)});
    INFO(reply.status().ToString());
    REQUIRE(reply.ok());
    INFO(reply->ToString());
    REQUIRE(reply->type == RespValue::Type::kArray);
    std::vector<std::string> earlier;
    for (const RespValue& element : reply->elements) earlier.push_back(element.text);
    return earlier;
  };
  const auto stored = [&] {
    auto reply = redis->Command({"LRANGE", key, "0", "-1"});
    REQUIRE(reply.ok());
    std::vector<std::string> notes;
    for (const RespValue& element : reply->elements) notes.push_back(element.text);
    return notes;
  };

  // Notes are bytes: NUL, CR LF and high bytes survive.
  std::vector<std::string> sent;
  for (int i = 0; i < 6; ++i) {
    const std::string note = absl::StrCat("n", i, std::string("\0\r\n\xff", 4));
    const size_t keep = std::min<size_t>(sent.size(), 3);
    CHECK(add(note, 3, 60000) ==
          std::vector<std::string>(sent.end() - static_cast<long>(keep), sent.end()));
    sent.push_back(note);
  }
  CHECK(stored() == std::vector<std::string>(sent.end() - 3, sent.end()));
  int64_t ttl_ms = IntegerReply(*redis, {"PTTL", key});
  CHECK(ttl_ms > 50000);
  CHECK(ttl_ms <= 60000);
  // Each note sets the TTL again.
  add("later", 3, 120000);
  ttl_ms = IntegerReply(*redis, {"PTTL", key});
  CHECK(ttl_ms > 110000);
  CHECK(ttl_ms <= 120000);
  // A smaller bound trims to it at once.
  CHECK(add("one", 1, 60000) == std::vector<std::string>{sent[4], sent[5], "later"});
  CHECK(stored() == std::vector<std::string>{"one"});
  // A note expires with its location.
  add("gone", 1, 1);
  CHECK(WaitFor([&] { return IntegerReply(*redis, {"EXISTS", key}) == 0; },
                absl::Seconds(5)));
}

TEST_CASE(
    "Replicas on redis://HOST:PORT/DB share notes within that database only",
    "[redis][replicas]") {
  auto redis = StartRedis();
  ServerProcess in_db3 = StartReplica(redis->url() + "/3");
  ServerProcess also_db3 = StartReplica(redis->url() + "/3");
  ServerProcess in_db0 = StartReplica(redis->url());
  auto stub3 = NewStub(in_db3.target());
  auto stub3b = NewStub(also_db3.target());
  auto stub0 = NewStub(in_db0.target());
  REQUIRE(AwaitChatWorks(*stub3));
  REQUIRE(AwaitChatWorks(*stub3b));
  REQUIRE(AwaitChatWorks(*stub0));

  const Point point = MakePoint(409146138, -746188906);
  const RouteNote note = MakeNote("in db 3", point.latitude(), point.longitude());
  REQUIRE(Chat(*stub3, {note}).status.ok());
  const ChatOutcome same_db =
      Chat(*stub3b, {MakeNote("also db 3", point.latitude(), point.longitude())});
  REQUIRE(same_db.status.ok());
  CHECK(Describe(same_db.replies) == Describe(std::vector<RouteNote>{note}));
  const ChatOutcome other_db =
      Chat(*stub0, {MakeNote("db 0", point.latitude(), point.longitude())});
  REQUIRE(other_db.status.ok());
  CHECK(other_db.replies.empty());

  auto connection = testing::RedisConnection::Connect(redis->port());
  RequireOk(connection.status());
  auto selected = (*connection)->Command({"SELECT", "3"});
  RequireOk(selected.status());
  auto length = (*connection)->Command({"LLEN", NotesKey(point)});
  RequireOk(length.status());
  CHECK(length->integer == 2);
  CHECK(IntegerReply(*redis, {"LLEN", NotesKey(point)}) == 1);  // Database 0.
}

TEST_CASE(
    "A Redis that requires a password: the replica with "
    "--notes_store_password_file shares notes, one without gets UNAVAILABLE, "
    "and the password is never logged",
    "[redis][auth]") {
  const std::string password = "s3cret-notes-pw";
  auto started = RedisServer::Start(absl::Seconds(10), password);
  INFO(started.status().ToString());
  REQUIRE(started.ok());
  std::unique_ptr<RedisServer> redis = *std::move(started);
  const std::string password_file = redis->directory() + "/password";
  {
    std::ofstream out(password_file);
    out << password << "\n";
  }
  ServerProcess with = StartReplica(
      redis->url(), {"--notes_store_password_file=" + password_file});
  ServerProcess without = StartReplica(redis->url());
  auto stub_with = NewStub(with.target());
  auto stub_without = NewStub(without.target());
  REQUIRE(AwaitChatWorks(*stub_with));

  const Point point = MakePoint(409146138, -746188906);
  REQUIRE(Chat(*stub_with, {MakeNote("authenticated", point.latitude(),
                                     point.longitude())})
              .status.ok());
  CHECK(Describe(StoredNotes(*redis, point)) ==
        Describe(std::vector<RouteNote>{
            MakeNote("authenticated", point.latitude(), point.longitude())}));
  const ChatOutcome refused =
      Chat(*stub_without, {MakeNote("anonymous", point.latitude(), point.longitude())});
  CheckStoreUnavailable(refused.status);
  CHECK(StoredNotes(*redis, point).size() == 1);

  for (ServerProcess* replica : {&with, &without}) {
    REQUIRE(testing::StillRunning(*replica));
    CHECK_THAT(replica->process->stderr_text(), !Catch::Contains(password));
  }
}

TEST_CASE(
    "A note posted through one replica comes back through the other, in "
    "both directions",
    "[redis][replicas]") {
  auto redis = StartRedis();
  ServerProcess replica1 = StartReplica(redis->url());
  std::string second_store = redis->url();
  SECTION("both replicas over TCP") {}
  SECTION("the second replica over the unix socket") {
    second_store = redis->unix_url();
  }
  ServerProcess replica2 = StartReplica(second_store);
  auto stub1 = NewStub(replica1.target());
  auto stub2 = NewStub(replica2.target());
  REQUIRE(AwaitChatWorks(*stub1));
  REQUIRE(AwaitChatWorks(*stub2));

  for (const bool forward : {true, false}) {
    RouteGuide::Stub& first = forward ? *stub1 : *stub2;
    RouteGuide::Stub& second = forward ? *stub2 : *stub1;
    const std::string tag = forward ? "1to2-" : "2to1-";
    INFO((forward ? "replica 1, then replica 2" : "replica 2, then replica 1"));
    // Each direction at a point of its own.
    const Point point = forward ? MakePoint(409146138, -746188906)
                                : MakePoint(413628156, -749015468);
    const Point elsewhere = FreshPoint();
    auto at = [&](const std::string& message, const Point& p) {
      return MakeNote(tag + message, p.latitude(), p.longitude());
    };

    // Through the first replica: its own earlier notes, as today.
    const ChatOutcome a = Chat(first, {at("a1", point), at("a2", point), at("a3", point)});
    INFO(StatusText(a.status));
    REQUIRE(a.status.ok());
    CHECK(Describe(a.replies) ==
          Describe(std::vector<RouteNote>{at("a1", point), at("a1", point), at("a2", point)}));

    // Through the second replica: exactly the first's notes at that point,
    // none at another.
    const ChatOutcome b = Chat(second, {at("b1", point), at("b2", elsewhere)});
    INFO(StatusText(b.status));
    REQUIRE(b.status.ok());
    CHECK(Describe(b.replies) ==
          Describe(std::vector<RouteNote>{at("a1", point), at("a2", point), at("a3", point)}));

    // And back through the first: the second's note too.
    const ChatOutcome c = Chat(first, {at("a4", point)});
    REQUIRE(c.status.ok());
    CHECK(Describe(c.replies) == Describe(std::vector<RouteNote>{at("a1", point), at("a2", point),
                                           at("a3", point), at("b1", point)}));

    // Redis holds the point's notes under its key, in that order, with the
    // default TTL of 24 h set.
    CHECK(Describe(StoredNotes(*redis, point)) ==
          Describe(std::vector<RouteNote>{at("a1", point), at("a2", point), at("a3", point),
                    at("b1", point), at("a4", point)}));
    CHECK(Describe(StoredNotes(*redis, elsewhere)) ==
          Describe(std::vector<RouteNote>{at("b2", elsewhere)}));
    const int64_t ttl_ms = IntegerReply(*redis, {"PTTL", NotesKey(point)});
    CHECK(ttl_ms > absl::ToInt64Milliseconds(absl::Hours(23)));
    CHECK(ttl_ms <= absl::ToInt64Milliseconds(absl::Hours(24)));
  }
}

TEST_CASE("The per-location bound holds across replicas", "[redis][replicas]") {
  constexpr int kBound = 3;
  auto redis = StartRedis();
  const std::vector<std::string> flags = {
      absl::StrCat("--max_notes_per_location=", kBound)};
  TwoReplicas replicas = StartTwoReplicas(*redis, flags);
  RouteGuide::Stub& stub1 = *replicas.stub1;
  RouteGuide::Stub& stub2 = *replicas.stub2;

  const Point point = MakePoint(409146138, -746188906);
  std::vector<RouteNote> sent;
  // Each note on a stream of its own, through replica 1, 2, 1, 2, ...: the
  // replies are the newest kBound notes sent before it, wherever sent.
  for (int i = 0; i < 8; ++i) {
    const RouteNote note =
        MakeNote(absl::StrCat("note-", i), point.latitude(), point.longitude());
    INFO("note " << i << " through replica " << (i % 2 + 1));
    const ChatOutcome outcome = Chat(i % 2 == 0 ? stub1 : stub2, {note});
    INFO(StatusText(outcome.status));
    REQUIRE(outcome.status.ok());
    const size_t keep = std::min<size_t>(sent.size(), kBound);
    const std::vector<RouteNote> expected(sent.end() - static_cast<long>(keep),
                                          sent.end());
    CHECK(Describe(outcome.replies) == Describe(expected));
    sent.push_back(note);
  }
  // Both again in one stream each, several notes: still bounded.
  const ChatOutcome last = Chat(stub2, {MakeNote("x", point.latitude(), point.longitude()),
                                         MakeNote("y", point.latitude(), point.longitude())});
  REQUIRE(last.status.ok());
  CHECK(Describe(last.replies) ==
        Describe(std::vector<RouteNote>{sent[5], sent[6], sent[7], sent[6], sent[7],
                  MakeNote("x", point.latitude(), point.longitude())}));

  CHECK(IntegerReply(*redis, {"LLEN", NotesKey(point)}) == kBound);
  CHECK(Describe(StoredNotes(*redis, point)) ==
        Describe(std::vector<RouteNote>{sent[7], MakeNote("x", point.latitude(), point.longitude()),
                  MakeNote("y", point.latitude(), point.longitude())}));
}

}  // namespace
}  // namespace routeguide
