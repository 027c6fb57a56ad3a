// RouteChat across replicas under concurrency: many clients chatting at
// once through two replicas sharing one real redis-server, each seeing
// exactly the notes stored before its own, and the load generator's checked
// chats across the two. Helpers in notes_store_replicas_fixture.h.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "nlohmann/json.hpp"
#include "notes_store_replicas_fixture.h"
#include "route_guide.grpc.pb.h"
#include "subprocess.h"
#include "test_util.h"

namespace routeguide {
namespace {

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
