// RouteChat across replicas: routeguide-server child processes sharing one
// real redis-server (tests/redis_server.h) through --notes_store. Notes
// posted through one replica come back through another, the per-location
// bound holds across them, concurrent chats each see exactly the notes
// stored before theirs, and a store that dies or hangs fails RouteChat
// explicitly and in bounded time without slowing the other methods. Also:
// the notes script itself on a real Redis, /DB addresses, AUTH, max
// pending, streams ending while their note waits on the store, SIGTERM,
// and the load generator's checked chats across two replicas.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "geo.h"
#include "grpcpp/client_context.h"
#include "nlohmann/json.hpp"
#include "redis_notes_store.h"
#include "redis_server.h"
#include "route_guide.grpc.pb.h"
#include "server_process.h"
#include "server_process_calls.h"
#include "subprocess.h"
#include "test_util.h"

namespace routeguide {
namespace {

using testing::RedisServer;
using testing::RespValue;
using testing::ServerProcess;
using testing::StartServerProcess;
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

void RequireOk(const absl::Status& status) {
  INFO(status.ToString());
  REQUIRE(status.ok());
}

std::unique_ptr<RedisServer> StartRedis() {
  auto redis = RedisServer::Start();
  INFO(redis.status().ToString());
  REQUIRE(redis.ok());
  return *std::move(redis);
}

// A replica on 127.0.0.1:0 using `store` for its notes. Its store timeout
// is 5 s unless `flags` say otherwise (the last one counts): tests that are
// not about the timeout must not fail on a slow machine's slow answer.
ServerProcess StartReplica(const std::string& store,
                           std::vector<std::string> flags = {}) {
  flags.insert(flags.begin(), {"--notes_store=" + store, "--notes_store_timeout=5s"});
  return StartServerProcess(flags);
}

std::string NotesKey(const Point& point) {
  return absl::StrCat("routeguide:notes:", point.latitude(), ":", point.longitude());
}

// "message@lat,lon", to compare notes and print them.
std::string Describe(const RouteNote& note) {
  return absl::StrCat(note.message(), "@", note.location().latitude(), ",",
                      note.location().longitude());
}

std::vector<std::string> Describe(const std::vector<RouteNote>& notes) {
  std::vector<std::string> out;
  out.reserve(notes.size());
  for (const RouteNote& note : notes) out.push_back(Describe(note));
  return out;
}

// The notes Redis holds for `point`, oldest first, decoded.
std::vector<RouteNote> StoredNotes(const RedisServer& redis, const Point& point) {
  auto reply = redis.Command({"LRANGE", NotesKey(point), "0", "-1"});
  INFO(reply.status().ToString());
  REQUIRE(reply.ok());
  INFO(reply->ToString());
  REQUIRE(reply->type == RespValue::Type::kArray);
  std::vector<RouteNote> notes;
  for (const RespValue& element : reply->elements) {
    REQUIRE(element.type == RespValue::Type::kBulkString);
    RouteNote& note = notes.emplace_back();
    REQUIRE(note.ParseFromString(element.text));
  }
  return notes;
}

int64_t IntegerReply(const RedisServer& redis, const std::vector<std::string>& args) {
  auto reply = redis.Command(args);
  INFO(absl::StrJoin(args, " ") << ": " << reply.status().ToString());
  REQUIRE(reply.ok());
  INFO(reply->ToString());
  REQUIRE(reply->type == RespValue::Type::kInteger);
  return reply->integer;
}

// What one RouteChat stream got.
struct ChatOutcome {
  grpc::Status status;
  std::vector<RouteNote> replies;  // All of them, in order.
  absl::Time started;              // When the stream was opened.
  absl::Duration elapsed;          // From then to its status.
};

// One RouteChat stream: writes `notes` while a thread of its own reads
// every reply, half-closes, and waits for the status. No Catch2 macros:
// callable from any thread.
ChatOutcome Chat(RouteGuide::Stub& stub, const std::vector<RouteNote>& notes,
                 absl::Duration deadline = kRpcDeadline) {
  ChatOutcome outcome;
  const absl::Time start = absl::Now();
  outcome.started = start;
  grpc::ClientContext context;
  SetDeadline(context, deadline);
  auto stream = stub.RouteChat(&context);
  std::thread reader([&] {
    RouteNote reply;
    while (stream->Read(&reply)) outcome.replies.push_back(reply);
  });
  for (const RouteNote& note : notes) {
    if (!stream->Write(note)) break;  // The call ended; Finish says how.
  }
  stream->WritesDone();
  reader.join();
  outcome.status = stream->Finish();
  outcome.elapsed = absl::Now() - start;
  return outcome;
}

std::string StatusText(const grpc::Status& status) {
  return absl::StrCat(status.error_code(), " \"", status.error_message(), "\"");
}

// Points of their own for probes, never shared with a test's points.
Point FreshPoint() {
  static std::atomic<int32_t> next{0};
  return MakePoint(-890000000, -1790000000 + next.fetch_add(1));
}

// Whether a RouteChat through `stub` stores and reads notes: two notes at a
// fresh point, the second must bring back the first.
bool ChatWorks(RouteGuide::Stub& stub) {
  const Point point = FreshPoint();
  const ChatOutcome outcome =
      Chat(stub, {MakeNote("probe-1", point.latitude(), point.longitude()),
                  MakeNote("probe-2", point.latitude(), point.longitude())},
           absl::Seconds(2));
  return outcome.status.ok() && outcome.replies.size() == 1 &&
         outcome.replies[0].message() == "probe-1";
}

// Polls ChatWorks until it holds or `timeout` passes. A replica connects
// to Redis in the background, so its first chats may fail: tests wait for
// this before they start.
bool AwaitChatWorks(RouteGuide::Stub& stub, absl::Duration timeout = absl::Seconds(10)) {
  return WaitFor([&] { return ChatWorks(stub); }, timeout, absl::Milliseconds(20));
}

// Two replicas sharing `redis`, each with a stub, both serving RouteChat.
struct TwoReplicas {
  ServerProcess first;
  ServerProcess second;
  std::unique_ptr<RouteGuide::Stub> stub1;
  std::unique_ptr<RouteGuide::Stub> stub2;
};

TwoReplicas StartTwoReplicas(const RedisServer& redis,
                             const std::vector<std::string>& flags = {}) {
  TwoReplicas replicas{StartReplica(redis.url(), flags),
                       StartReplica(redis.url(), flags), nullptr, nullptr};
  replicas.stub1 = NewStub(replicas.first.target());
  replicas.stub2 = NewStub(replicas.second.target());
  REQUIRE(AwaitChatWorks(*replicas.stub1));
  REQUIRE(AwaitChatWorks(*replicas.stub2));
  return replicas;
}

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

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// The routeguide-client binary, from ROUTEGUIDE_CLIENT.
std::string ClientPath() { return testing::BinaryFromEnv("ROUTEGUIDE_CLIENT"); }

void CheckStoreUnavailable(const grpc::Status& status) {
  INFO("status: " << StatusText(status));
  CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(absl::StartsWith(status.error_message(), "notes store:"));
}

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

TEST_CASE(
    "16 clients chatting concurrently through two replicas at shared points "
    "each get exactly the notes stored before theirs",
    "[redis][replicas][concurrency]") {
  constexpr int kClients = 16;
  constexpr int kNotesPerClient = 24;
  constexpr int kPoints = 3;
  auto redis = StartRedis();
  // Large enough that nothing is trimmed: Redis keeps the whole order.
  const std::vector<std::string> flags = {"--max_notes_per_location=1000"};
  TwoReplicas replicas = StartTwoReplicas(*redis, flags);

  std::vector<Point> points;
  for (int p = 0; p < kPoints; ++p) points.push_back(MakePoint(409146138 + p, -746188906));
  // Client c's note k: a message no other note has, at point (c + k) mod 3.
  std::vector<std::vector<RouteNote>> notes(kClients);
  for (int c = 0; c < kClients; ++c) {
    for (int k = 0; k < kNotesPerClient; ++k) {
      const Point& point = points[(c + k) % kPoints];
      notes[c].push_back(MakeNote(absl::StrCat("client", c, "/note", k),
                                  point.latitude(), point.longitude()));
    }
  }
  // A channel each, half on either replica.
  std::vector<std::unique_ptr<RouteGuide::Stub>> stubs;
  for (int c = 0; c < kClients; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    stubs.push_back(RouteGuide::NewStub(grpc::CreateCustomChannel(
        (c % 2 == 0 ? replicas.first : replicas.second).target(),
        grpc::InsecureChannelCredentials(), args)));
  }

  std::vector<ChatOutcome> outcomes(kClients);
  std::atomic<int> ready{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      // All start together.
      ready.fetch_add(1);
      while (ready.load() < kClients) std::this_thread::yield();
      outcomes[c] = Chat(*stubs[c], notes[c]);
    });
  }
  for (std::thread& client : clients) client.join();

  // Redis's lists are the global order, the one the script applied.
  std::vector<std::vector<std::string>> stored(kPoints);
  std::map<std::string, std::pair<int, size_t>> where;  // Note -> point, index.
  size_t total = 0;
  for (int p = 0; p < kPoints; ++p) {
    stored[p] = Describe(StoredNotes(*redis, points[p]));
    total += stored[p].size();
    for (size_t i = 0; i < stored[p].size(); ++i) {
      CHECK(where.emplace(stored[p][i], std::make_pair(p, i)).second);
    }
  }
  CHECK(total == size_t{kClients} * kNotesPerClient);

  for (int c = 0; c < kClients; ++c) {
    INFO("client " << c << " through replica " << (c % 2 + 1));
    INFO(StatusText(outcomes[c].status));
    REQUIRE(outcomes[c].status.ok());
    const std::vector<std::string> replies = Describe(outcomes[c].replies);
    size_t next = 0;  // The first reply not yet accounted for.
    for (int k = 0; k < kNotesPerClient; ++k) {
      const std::string note = Describe(notes[c][k]);
      INFO("note " << note);
      const auto found = where.find(note);
      REQUIRE(found != where.end());
      const auto& [p, index] = found->second;
      // Its replies: exactly the notes before it in its point's list.
      REQUIRE(next + index <= replies.size());
      const std::vector<std::string> got(replies.begin() + static_cast<long>(next),
                                         replies.begin() + static_cast<long>(next + index));
      const std::vector<std::string> expected(
          stored[p].begin(), stored[p].begin() + static_cast<long>(index));
      REQUIRE(got == expected);
      next += index;
    }
    CHECK(next == replies.size());
  }
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
  // the floor is for a busy machine's scheduling, not for the server.
  CHECK(p99_during <= 3 * p99_before + (kUnderAsan ? absl::Milliseconds(100)
                                                   : absl::Milliseconds(20)));

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
  // The issue's bound for GetFeature while the store hangs; ASan-built
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

TEST_CASE(
    "The load generator round robin across two replicas and one Redis gets "
    "no wrong RouteChat answer",
    "[redis][load]") {
  constexpr int kCalls = 300;
  constexpr int kLocations = 5;
  auto redis = StartRedis();
  TwoReplicas replicas = StartTwoReplicas(*redis);
  const int64_t keys_before = IntegerReply(*redis, {"DBSIZE"});

  // In Redis's scratch directory, removed with it.
  const std::string json_path = redis->directory() + "/chat.json";
  const std::vector<std::string> argv = {
      ClientPath(), "load",
      "--target=" + replicas.first.target() + "," + replicas.second.target(),
      "--mix=chat:100", absl::StrCat("--requests=", kCalls), "--concurrency=16",
      "--threads=2", "--chat_notes=10", absl::StrCat("--chat_locations=", kLocations),
      "--json=" + json_path};
  INFO("running " << absl::StrJoin(argv, " "));
  auto run = testing::Run(argv, absl::Seconds(60));
  RequireOk(run.status());
  INFO(run->stdout_text << run->stderr_text);
  CHECK(run->exit.Exited(0));
  const auto json = nlohmann::json::parse(ReadFile(json_path));
  const auto& chat = json["kinds"]["chat"];
  INFO(chat.dump(2));
  CHECK(chat["ok"].get<int64_t>() == kCalls);
  CHECK(chat["wrong_answer"].get<int64_t>() == 0);
  CHECK(chat["failed"].get<int64_t>() == 0);
  // Every chat's notes went to Redis: a key per location of each chat
  // (random bases, so a collision or two at most).
  const int64_t keys = IntegerReply(*redis, {"DBSIZE"}) - keys_before;
  CHECK(keys >= kCalls * kLocations - 10);
  CHECK(keys <= kCalls * kLocations);
}

}  // namespace
}  // namespace routeguide
