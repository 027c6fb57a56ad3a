// What the notes_store_replicas tests share: a real redis-server
// (tests/redis_server.h), routeguide-server replicas using it through
// --notes_store, RouteChat streams through them and the notes Redis holds.
#ifndef ROUTEGUIDE_TESTS_NOTES_STORE_REPLICAS_FIXTURE_H_
#define ROUTEGUIDE_TESTS_NOTES_STORE_REPLICAS_FIXTURE_H_

#include <atomic>
#include <cstdint>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "grpcpp/client_context.h"
#include "redis_server.h"
#include "route_guide.grpc.pb.h"
#include "server_process.h"
#include "server_process_calls.h"
#include "test_util.h"

namespace routeguide {

inline void RequireOk(const absl::Status& status) {
  INFO(status.ToString());
  REQUIRE(status.ok());
}

inline std::unique_ptr<testing::RedisServer> StartRedis() {
  auto redis = testing::RedisServer::Start();
  INFO(redis.status().ToString());
  REQUIRE(redis.ok());
  return *std::move(redis);
}

// A replica on 127.0.0.1:0 using `store` for its notes. Its store timeout
// is 5 s unless `flags` say otherwise (the last one counts): tests that are
// not about the timeout must not fail on a slow machine's slow answer.
inline testing::ServerProcess StartReplica(const std::string& store,
                                           std::vector<std::string> flags = {}) {
  flags.insert(flags.begin(), {"--notes_store=" + store, "--notes_store_timeout=5s"});
  return testing::StartServerProcess(flags);
}

inline std::string NotesKey(const Point& point) {
  return absl::StrCat("routeguide:notes:", point.latitude(), ":", point.longitude());
}

// "message@lat,lon", to compare notes and print them.
inline std::string Describe(const RouteNote& note) {
  return absl::StrCat(note.message(), "@", note.location().latitude(), ",",
                      note.location().longitude());
}

inline std::vector<std::string> Describe(const std::vector<RouteNote>& notes) {
  std::vector<std::string> out;
  out.reserve(notes.size());
  for (const RouteNote& note : notes) out.push_back(Describe(note));
  return out;
}

// The notes Redis holds for `point`, oldest first, decoded.
inline std::vector<RouteNote> StoredNotes(const testing::RedisServer& redis,
                                          const Point& point) {
  auto reply = redis.Command({"LRANGE", NotesKey(point), "0", "-1"});
  INFO(reply.status().ToString());
  REQUIRE(reply.ok());
  INFO(reply->ToString());
  REQUIRE(reply->type == testing::RespValue::Type::kArray);
  std::vector<RouteNote> notes;
  for (const testing::RespValue& element : reply->elements) {
    REQUIRE(element.type == testing::RespValue::Type::kBulkString);
    RouteNote& note = notes.emplace_back();
    REQUIRE(note.ParseFromString(element.text));
  }
  return notes;
}

inline int64_t IntegerReply(const testing::RedisServer& redis,
                            const std::vector<std::string>& args) {
  auto reply = redis.Command(args);
  INFO(absl::StrJoin(args, " ") << ": " << reply.status().ToString());
  REQUIRE(reply.ok());
  INFO(reply->ToString());
  REQUIRE(reply->type == testing::RespValue::Type::kInteger);
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
inline ChatOutcome Chat(RouteGuide::Stub& stub, const std::vector<RouteNote>& notes,
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

inline std::string StatusText(const grpc::Status& status) {
  return absl::StrCat(status.error_code(), " \"", status.error_message(), "\"");
}

// Points of their own for probes, never shared with a test's points.
inline Point FreshPoint() {
  static std::atomic<int32_t> next{0};
  return MakePoint(-890000000, -1790000000 + next.fetch_add(1));
}

// Whether a RouteChat through `stub` stores and reads notes: two notes at a
// fresh point, the second must bring back the first.
inline bool ChatWorks(RouteGuide::Stub& stub) {
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
inline bool AwaitChatWorks(RouteGuide::Stub& stub,
                           absl::Duration timeout = absl::Seconds(10)) {
  return WaitFor([&] { return ChatWorks(stub); }, timeout, absl::Milliseconds(20));
}

// Two replicas sharing `redis`, each with a stub, both serving RouteChat.
struct TwoReplicas {
  testing::ServerProcess first;
  testing::ServerProcess second;
  std::unique_ptr<RouteGuide::Stub> stub1;
  std::unique_ptr<RouteGuide::Stub> stub2;
};

inline TwoReplicas StartTwoReplicas(const testing::RedisServer& redis,
                                    const std::vector<std::string>& flags = {}) {
  TwoReplicas replicas{StartReplica(redis.url(), flags),
                       StartReplica(redis.url(), flags), nullptr, nullptr};
  replicas.stub1 = NewStub(replicas.first.target());
  replicas.stub2 = NewStub(replicas.second.target());
  REQUIRE(AwaitChatWorks(*replicas.stub1));
  REQUIRE(AwaitChatWorks(*replicas.stub2));
  return replicas;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// The routeguide-client binary, from ROUTEGUIDE_CLIENT.
inline std::string ClientPath() { return testing::BinaryFromEnv("ROUTEGUIDE_CLIENT"); }

inline void CheckStoreUnavailable(const grpc::Status& status) {
  INFO("status: " << StatusText(status));
  CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(absl::StartsWith(status.error_message(), "notes store:"));
}

}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_NOTES_STORE_REPLICAS_FIXTURE_H_
