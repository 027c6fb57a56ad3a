// Bounds on connections: concurrent streams, pings, idle and age limits;
// and the access log.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "catch2/catch.hpp"
#include "credentials.h"
#include "db_loader.h"
#include "grpcpp/create_channel.h"
#include "health.grpc.pb.h"
#include "route_guide.grpc.pb.h"
#include "route_guide_server.h"
#include "server_process.h"
#include "security_pki.h"
#include "subprocess.h"
#include "test_server.h"
#include "test_util.h"

namespace routeguide {
namespace {


TEST_CASE("Streams past the per-connection limit wait instead of piling up",
          "[security][bounds]") {
  ServerOptions options;
  options.max_concurrent_streams = 2;
  Server server(options);
  auto stub = RouteGuide::NewStub(
      Channel(server.target(), grpc::InsecureChannelCredentials()));
  auto open_chat = [&](grpc::ClientContext& context, absl::Duration timeout) {
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    return stub->RouteChat(&context);
  };
  grpc::ClientContext first_context, second_context, third_context;
  auto first = open_chat(first_context, absl::Seconds(30));
  auto second = open_chat(second_context, absl::Seconds(30));
  RouteNote note;
  REQUIRE(first->Write(note));
  REQUIRE(second->Write(note));
  REQUIRE(WaitFor([&] { return server.server->calls().active() >= 2; }));
  REQUIRE(server.server->calls().active() == 2);
  // A third stream on the same connection is not admitted while two are
  // open: it runs into its deadline without the server ever seeing it.
  auto third = open_chat(third_context, absl::Milliseconds(500));
  third->Write(note);
  CHECK(third->Finish().error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
  CHECK(server.server->calls().accepted() == 2);
  for (auto* stream : {first.get(), second.get()}) {
    stream->WritesDone();
    while (stream->Read(&note)) {
    }
    CHECK(stream->Finish().ok());
  }
}

TEST_CASE("A client that pings too often is disconnected", "[security][bounds]") {
  ServerOptions options;
  options.min_ping_interval = absl::Seconds(10);
  Server server(options);
  grpc::ChannelArguments args;
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 50);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  auto stub = RouteGuide::NewStub(grpc::CreateCustomChannel(
      server.target(), grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  auto stream = stub->RouteChat(&context);
  RouteNote note;
  REQUIRE(stream->Write(note));
  // Idle, pinging every 50 ms: two strikes and the server sends GOAWAY
  // (too_many_pings), which ends the stream long before its deadline.
  CHECK(!stream->Read(&note));
  const grpc::Status status = stream->Finish();
  INFO(status.error_message());
  CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);
}

TEST_CASE("At debug level each finished call logs one access line",
          "[security][binary]") {
  auto server = testing::Subprocess::Start({EnvPath("ROUTEGUIDE_SERVER"),
                                            "--address=127.0.0.1:0",
                                            "--threads=1", "--log_level=debug"});
  REQUIRE(server.ok());
  auto line = (*server)->WaitForStderrLineContaining("listening on",
                                                     absl::Now() + absl::Seconds(20));
  REQUIRE(line.ok());
  const std::string port = line->substr(line->find("(port ") + 6);
  const std::string target = "127.0.0.1:" + port.substr(0, port.find(')'));
  {
    auto channel = Channel(target, grpc::InsecureChannelCredentials());
    CHECK(CallGetFeature(channel).ok());
  }
  auto access = (*server)->WaitForStderrLineContaining("access method=GetFeature",
                                                       absl::Now() + absl::Seconds(20));
  REQUIRE(access.ok());
  CHECK_THAT(*access, Catch::Contains("status=OK"));
  CHECK_THAT(*access, Catch::Contains("peer=ipv4:127.0.0.1:"));
  CHECK_THAT(*access, Catch::Contains("messages_in=1 messages_out=1"));
  REQUIRE((*server)->Signal(SIGTERM).ok());
  REQUIRE((*server)->Wait(absl::Seconds(30)).ok());
}

// The channel's state once it has left READY, or READY if it stayed so
// until `timeout` passed. Watching the state keeps a completion queue
// polled, so the client reads the server's GOAWAY as soon as it comes.
grpc_connectivity_state StateAfterReady(grpc::Channel& channel,
                                        absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  grpc_connectivity_state state = channel.GetState(false);
  while (state == GRPC_CHANNEL_READY &&
         channel.WaitForStateChange(state, absl::ToChronoTime(deadline))) {
    state = channel.GetState(false);
  }
  return state;
}

const char* StateName(grpc_connectivity_state state) {
  switch (state) {
    case GRPC_CHANNEL_IDLE: return "IDLE";
    case GRPC_CHANNEL_CONNECTING: return "CONNECTING";
    case GRPC_CHANNEL_READY: return "READY";
    case GRPC_CHANNEL_TRANSIENT_FAILURE: return "TRANSIENT_FAILURE";
    case GRPC_CHANNEL_SHUTDOWN: return "SHUTDOWN";
  }
  return "?";
}

// A RouteChat stream with a 20 s deadline on a channel of its own to
// `server`, its first note (`message` at (`at`, `at`)) sent.
struct OpenChat {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<RouteGuide::Stub> stub;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<RouteNote, RouteNote>> stream;
};
std::unique_ptr<OpenChat> StartChat(const testing::ServerProcess& server,
                                    const std::string& message, int32_t at) {
  auto chat = std::make_unique<OpenChat>();
  chat->channel = Channel(server.target(), grpc::InsecureChannelCredentials());
  chat->stub = RouteGuide::NewStub(chat->channel);
  SetDeadline(chat->context, absl::Seconds(20));
  chat->stream = chat->stub->RouteChat(&chat->context);
  REQUIRE(chat->stream->Write(MakeNote(message, at, at)));
  return chat;
}

TEST_CASE("--max_connection_idle closes a connection without calls; a call "
          "in progress keeps it open, and the next call reconnects",
          "[security][bounds][binary]") {
  SECTION("a connection left idle after a call is closed") {
    testing::ServerProcess server =
        testing::StartServerProcess({"--max_connection_idle=300ms"});
    auto channel = Channel(server.target(), grpc::InsecureChannelCredentials());
    REQUIRE(CallGetFeature(channel).ok());
    REQUIRE(channel->GetState(false) == GRPC_CHANNEL_READY);
    const absl::Time idle_since = absl::Now();
    const grpc_connectivity_state state =
        StateAfterReady(*channel, absl::Seconds(10));
    std::cout << "--max_connection_idle=300ms: the idle connection left READY "
                 "(now "
              << StateName(state) << ") after "
              << absl::FormatDuration(absl::Now() - idle_since) << std::endl;
    CHECK(state != GRPC_CHANNEL_READY);
    // The channel connects again for the next call.
    CHECK(CallGetFeature(channel).ok());
    CHECK(channel->GetState(false) == GRPC_CHANNEL_READY);
  }
  SECTION("a stream open for three idle periods keeps its connection") {
    testing::ServerProcess server =
        testing::StartServerProcess({"--max_connection_idle=300ms"});
    auto chat = StartChat(server, "first", 11);
    auto& stream = chat->stream;
    REQUIRE(chat->channel->GetState(false) == GRPC_CHANNEL_READY);
    CHECK(StateAfterReady(*chat->channel, absl::Milliseconds(900)) ==
          GRPC_CHANNEL_READY);
    REQUIRE(stream->Write(MakeNote("second", 11, 11)));
    RouteNote reply;
    REQUIRE(stream->Read(&reply));
    CHECK(reply.message() == "first");
    stream->WritesDone();
    CHECK(!stream->Read(&reply));
    CHECK(stream->Finish().ok());
  }
  SECTION("without the flag (30 minutes) an idle connection stays open") {
    testing::ServerProcess server = testing::StartServerProcess();
    auto channel = Channel(server.target(), grpc::InsecureChannelCredentials());
    REQUIRE(CallGetFeature(channel).ok());
    CHECK(StateAfterReady(*channel, absl::Milliseconds(1500)) == GRPC_CHANNEL_READY);
  }
}

TEST_CASE("--max_connection_age closes each connection once it is that old: "
          "a stream open across the age runs on to its end, new calls "
          "reconnect",
          "[security][bounds][binary]") {
  // --max_connection_age_grace defaults to infinite, so the server's GOAWAY
  // lets streams already open run as long as they like; only new calls go
  // to a new connection.
  testing::ServerProcess server =
      testing::StartServerProcess({"--max_connection_age=500ms"});
  auto chat = StartChat(server, "before", 12);
  auto& channel = chat->channel;
  auto& stream = chat->stream;
  REQUIRE(channel->GetState(false) == GRPC_CHANNEL_READY);
  const absl::Time connected = absl::Now();
  const grpc_connectivity_state state = StateAfterReady(*channel, absl::Seconds(10));
  std::cout << "--max_connection_age=500ms: a connection with an open stream "
               "left READY (now "
            << StateName(state) << ") after " << absl::FormatDuration(absl::Now() - connected)
            << std::endl;
  CHECK(state != GRPC_CHANNEL_READY);

  // The stream still carries notes and replies both ways, then ends OK.
  REQUIRE(stream->Write(MakeNote("after", 12, 12)));
  RouteNote reply;
  REQUIRE(stream->Read(&reply));
  CHECK(reply.message() == "before");
  stream->WritesDone();
  CHECK(!stream->Read(&reply));
  const grpc::Status status = stream->Finish();
  INFO(status.error_code() << ": " << status.error_message());
  CHECK(status.ok());

  // A new call gets a new connection, which ages out in its turn.
  CHECK(CallGetFeature(channel).ok());
  REQUIRE(channel->GetState(false) == GRPC_CHANNEL_READY);
  CHECK(StateAfterReady(*channel, absl::Seconds(10)) != GRPC_CHANNEL_READY);
  CHECK(CallGetFeature(channel).ok());
}

TEST_CASE("--max_connection_age_grace ends a stream still open that long "
          "after the age", "[security][bounds][binary]") {
  testing::ServerProcess server = testing::StartServerProcess(
      {"--max_connection_age=300ms", "--max_connection_age_grace=300ms"});
  const absl::Time start = absl::Now();
  auto chat = StartChat(server, "held open", 13);
  auto& stream = chat->stream;
  // The client sends nothing more and waits: the connection is closed under
  // the stream once age and grace (600 ms) have passed, long before the
  // 20 s deadline.
  RouteNote reply;
  CHECK(!stream->Read(&reply));
  const grpc::Status status = stream->Finish();
  const absl::Duration lasted = absl::Now() - start;
  INFO(status.error_code() << ": " << status.error_message() << " after "
                           << absl::FormatDuration(lasted));
  CHECK(!status.ok());
  CHECK(status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED);
  CHECK(lasted >= absl::Milliseconds(500));
  CHECK(lasted < absl::Seconds(10));
  // New calls reconnect.
  CHECK(CallGetFeature(chat->channel).ok());
}

}  // namespace
}  // namespace routeguide
