// Who gets in (TLS, mutual TLS, bearer tokens) and the bounds on what comes
// in (message size, note length). Keys and certificates are made at test
// time with openssl; none is committed.
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
#include "subprocess.h"
#include "test_server.h"
#include "test_util.h"

namespace routeguide {
namespace {

// A CA, a server certificate for localhost/127.0.0.1 and a client
// certificate signed by it, and a second, untrusted CA with a client
// certificate of its own: all in a temporary directory removed at exit.
class Pki {
 public:
  static const Pki& Get() {
    static const Pki* pki = new Pki();
    return *pki;
  }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

 private:
  Pki() {
    char pattern[] = "/tmp/routeguide-pki-XXXXXX";
    REQUIRE(mkdtemp(pattern) != nullptr);
    dir_ = pattern;
    std::ofstream(Path("server.ext"))
        << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
    MakeCa("ca");
    MakeCa("rogue-ca");
    MakeLeaf("server", "ca", "server.ext");
    MakeLeaf("client", "ca", "");
    MakeLeaf("rogue-client", "rogue-ca", "");
    std::atexit([] {
      const std::string dir = Get().dir_;
      testing::Run({"/bin/rm", "-rf", dir}, absl::Seconds(10)).IgnoreError();
    });
  }

  void Openssl(std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/openssl");
    auto result = testing::Run(args, absl::Seconds(60));
    INFO(absl::StrJoin(args, " "));
    REQUIRE(result.ok());
    INFO(result->stderr_text);
    REQUIRE(result->exit.Exited(0));
  }
  void MakeCa(const std::string& name) {
    Openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
             Path(name + ".key"), "-out", Path(name + ".pem"), "-days", "1",
             "-subj", "/CN=" + name});
  }
  void MakeLeaf(const std::string& name, const std::string& ca,
                const std::string& extensions) {
    Openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", Path(name + ".key"), "-out",
             Path(name + ".csr"), "-subj", "/CN=" + name});
    std::vector<std::string> sign = {
        "x509", "-req", "-in", Path(name + ".csr"), "-CA", Path(ca + ".pem"),
        "-CAkey", Path(ca + ".key"), "-CAcreateserial", "-out",
        Path(name + ".pem"), "-days", "1"};
    if (!extensions.empty()) {
      sign.push_back("-extfile");
      sign.push_back(Path(extensions));
    }
    Openssl(sign);
  }

  std::string dir_;
};

// Calls in flight drop back to zero once the server has freed them all.
bool NoCallLeft(const RouteGuideServer& server) {
  return WaitFor([&] { return server.calls().active() == 0; });
}

struct Server {
  explicit Server(ServerOptions options) : server(StartTestServer(options)) {}
  std::string target() const { return LocalTarget(server->port()); }
  std::unique_ptr<RouteGuideServer> server;
};

std::shared_ptr<grpc::Channel> Channel(
    const std::string& target,
    std::shared_ptr<grpc::ChannelCredentials> credentials) {
  grpc::ChannelArguments args;
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  return grpc::CreateCustomChannel(target, credentials, args);
}

grpc::Status CallGetFeature(const std::shared_ptr<grpc::Channel>& channel,
                            const std::string& token = "") {
  auto stub = RouteGuide::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  Point point;
  point.set_latitude(409146138);
  point.set_longitude(-746188906);
  Feature feature;
  return stub->GetFeature(&context, point, &feature);
}

std::shared_ptr<grpc::ChannelCredentials> TrustingCa(const std::string& ca,
                                                     const std::string& client = "") {
  const Pki& pki = Pki::Get();
  auto credentials =
      ClientTls(pki.Path(ca + ".pem"), client.empty() ? "" : pki.Path(client + ".pem"),
                client.empty() ? "" : pki.Path(client + ".key"));
  REQUIRE(credentials.ok());
  return *credentials;
}

TEST_CASE("TLS lets in only clients that trust the server's CA",
          "[security][tls]") {
  const Pki& pki = Pki::Get();
  ServerOptions options;
  auto tls = ServerTls(pki.Path("server.pem"), pki.Path("server.key"), "");
  REQUIRE(tls.ok());
  options.credentials = *tls;
  Server server(options);

  CHECK(CallGetFeature(Channel(server.target(), TrustingCa("ca"))).ok());
  CHECK(CallGetFeature(Channel(server.target(), TrustingCa("rogue-ca"))).error_code() ==
        grpc::StatusCode::UNAVAILABLE);
  CHECK(CallGetFeature(Channel(server.target(), grpc::InsecureChannelCredentials()))
            .error_code() == grpc::StatusCode::UNAVAILABLE);
}

TEST_CASE("Mutual TLS refuses clients without a certificate from its CA",
          "[security][tls]") {
  const Pki& pki = Pki::Get();
  ServerOptions options;
  auto tls = ServerTls(pki.Path("server.pem"), pki.Path("server.key"), pki.Path("ca.pem"));
  REQUIRE(tls.ok());
  options.credentials = *tls;
  Server server(options);

  CHECK(CallGetFeature(Channel(server.target(), TrustingCa("ca", "client"))).ok());
  CHECK(!CallGetFeature(Channel(server.target(), TrustingCa("ca"))).ok());
  CHECK(!CallGetFeature(Channel(server.target(), TrustingCa("ca", "rogue-client"))).ok());
}

TEST_CASE("Bad TLS settings are reported, not half-applied", "[security][tls]") {
  const Pki& pki = Pki::Get();
  CHECK(!ServerTls(pki.Path("server.pem"), "", "").ok());
  CHECK(!ServerTls("", "", pki.Path("ca.pem")).ok());
  auto missing = ServerTls(pki.Path("nope.pem"), pki.Path("server.key"), "");
  REQUIRE(!missing.ok());
  CHECK_THAT(std::string(missing.status().message()), Catch::Contains("nope.pem"));
  CHECK(!ClientTls(pki.Path("ca.pem"), pki.Path("client.pem"), "").ok());
}

TEST_CASE("The bearer scheme is matched in any case, the token exactly",
          "[security][auth]") {
  for (const char* good : {"Bearer tok", "bearer tok", "BEARER tok", "Bearer   tok"}) {
    CAPTURE(good);
    CHECK(BearerTokenMatches(good, "tok"));
  }
  for (const char* bad : {"Bearer Tok", "Bearer tok ", "Basic tok", "Bearertok",
                          "Bearer", "Bearer ", "tok", "Bearer\ttok", ""}) {
    CAPTURE(bad);
    CHECK_FALSE(BearerTokenMatches(bad, "tok"));
  }
}

TEST_CASE("A bearer token is required of every RouteGuide call but not of "
          "health checks",
          "[security][auth]") {
  ServerOptions options;
  options.auth_token = "s3cret-token";
  Server server(options);
  auto channel = Channel(server.target(), grpc::InsecureChannelCredentials());

  CHECK(CallGetFeature(channel, "s3cret-token").ok());
  CHECK(CallGetFeature(channel).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(CallGetFeature(channel, "s3cret-tokem").error_code() ==
        grpc::StatusCode::UNAUTHENTICATED);
  CHECK(CallGetFeature(channel, "s3cret-token-and-more").error_code() ==
        grpc::StatusCode::UNAUTHENTICATED);
  {  // HTTP's auth schemes are case-insensitive.
    auto stub = RouteGuide::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    context.AddMetadata("authorization", "bearer s3cret-token");
    Feature feature;
    CHECK(stub->GetFeature(&context, Point(), &feature).ok());
  }

  auto stub = RouteGuide::NewStub(channel);
  auto deadline = [] { return absl::ToChronoTime(absl::Now() + absl::Seconds(10)); };
  SECTION("streaming methods") {
    {
      grpc::ClientContext context;
      context.set_deadline(deadline());
      auto reader = stub->ListFeatures(&context, Rectangle());
      Feature feature;
      CHECK(!reader->Read(&feature));
      CHECK(reader->Finish().error_code() == grpc::StatusCode::UNAUTHENTICATED);
    }
    {
      grpc::ClientContext context;
      context.set_deadline(deadline());
      RouteSummary summary;
      auto writer = stub->RecordRoute(&context, &summary);
      writer->WritesDone();
      CHECK(writer->Finish().error_code() == grpc::StatusCode::UNAUTHENTICATED);
    }
    {
      grpc::ClientContext context;
      context.set_deadline(deadline());
      auto stream = stub->RouteChat(&context);
      stream->WritesDone();
      RouteNote note;
      CHECK(!stream->Read(&note));
      CHECK(stream->Finish().error_code() == grpc::StatusCode::UNAUTHENTICATED);
    }
  }
  SECTION("health") {
    auto health = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(deadline());
    grpc::health::v1::HealthCheckResponse response;
    CHECK(health->Check(&context, {}, &response).ok());
  }
}

TEST_CASE("Messages and notes over their bounds are refused", "[security][bounds]") {
  ServerOptions options;
  options.max_message_bytes = 1024;
  options.max_note_bytes = 16;
  Server server(options);
  auto stub = RouteGuide::NewStub(
      Channel(server.target(), grpc::InsecureChannelCredentials()));

  auto chat = [&](const std::string& message) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    auto stream = stub->RouteChat(&context);
    RouteNote note;
    note.set_message(message);
    stream->Write(note);
    stream->WritesDone();
    while (stream->Read(&note)) {
    }
    return stream->Finish();
  };
  CHECK(chat(std::string(16, 'n')).ok());
  const grpc::Status too_long = chat(std::string(17, 'n'));
  CHECK(too_long.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(too_long.error_message(), Catch::Contains("17 bytes"));
  CHECK(chat(std::string(2000, 'n')).error_code() ==
        grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(NoCallLeft(*server.server));
}

}  // namespace
}  // namespace routeguide

namespace routeguide {
namespace {

std::string EnvPath(const char* name) {
  const char* path = std::getenv(name);
  REQUIRE(path != nullptr);
  return path;
}

TEST_CASE("The binaries speak TLS and tokens end to end, and never log the "
          "token",
          "[security][binary]") {
  const Pki& pki = Pki::Get();
  const std::string token_file = pki.Path("token");
  std::ofstream(token_file) << "tok-12345-secret\n";

  auto server = testing::Subprocess::Start(
      {EnvPath("ROUTEGUIDE_SERVER"), "--address=127.0.0.1:0", "--threads=2",
       "--log_level=trace", "--tls_cert=" + pki.Path("server.pem"),
       "--tls_key=" + pki.Path("server.key"), "--auth_token_file=" + token_file});
  REQUIRE(server.ok());
  auto line = (*server)->WaitForStderrLineContaining("listening on",
                                                     absl::Now() + absl::Seconds(20));
  REQUIRE(line.ok());
  const std::string port = line->substr(line->find("(port ") + 6);
  // An IP target: the certificate names 127.0.0.1 too, and no DNS lookup
  // is involved.
  const std::string target = "127.0.0.1:" + port.substr(0, port.find(')'));

  const std::vector<std::string> tls = {"--tls_ca=" + pki.Path("ca.pem"),
                                        "--target=" + target};
  auto run_client = [&](std::vector<std::string> args) {
    args.insert(args.begin(), EnvPath("ROUTEGUIDE_CLIENT"));
    auto result = testing::Run(args, absl::Seconds(60));
    REQUIRE(result.ok());
    return *result;
  };
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.end(), tls.begin(), tls.end());
    return args;
  };
  const auto good = run_client(with({"tutorial", "--auth_token_file=" + token_file}));
  INFO(good.stderr_text);
  CHECK(good.exit.Exited(0));
  CHECK_THAT(good.stdout_text, Catch::Contains("Berkshire Valley"));

  const auto no_token = run_client(with({"tutorial"}));
  CHECK(no_token.exit.Exited(1));
  CHECK_THAT(no_token.stderr_text, Catch::Contains("UNAUTHENTICATED"));

  {  // gRPC's own error lines come out in our log format, not gRPC's.
    const auto bad_ca = run_client({"tutorial", "--target=" + target,
                                    "--tls_ca=" + pki.Path("server.key"),
                                    "--connect_timeout=1s"});
    INFO(bad_ca.stderr_text);
    CHECK(bad_ca.exit.Exited(2));
    CHECK_THAT(bad_ca.stderr_text, Catch::Contains("[routeguide] [error] grpc ssl_"));
    for (absl::string_view text_line : absl::StrSplit(bad_ca.stderr_text, '\n')) {
      // gRPC's own format: "E1201 23:31:44.426 ... file.cc:807] message".
      const bool native = text_line.size() > 5 && text_line[0] == 'E' &&
                          absl::ascii_isdigit(text_line[1]) && absl::ascii_isdigit(text_line[4]);
      CHECK_FALSE(native);
    }
  }

  const auto load = run_client(with({"load", "--requests=200", "--concurrency=4",
                                     "--auth_token_file=" + token_file,
                                     "--json=" + pki.Path("load.json")}));
  INFO(load.stdout_text << load.stderr_text);
  CHECK(load.exit.Exited(0));
  std::ifstream json_file(pki.Path("load.json"));
  const std::string json((std::istreambuf_iterator<char>(json_file)),
                         std::istreambuf_iterator<char>());
  CHECK_THAT(json, Catch::Contains("authorization:<redacted>"));
  CHECK_THAT(json, !Catch::Contains("tok-12345-secret"));

  REQUIRE((*server)->Signal(SIGTERM).ok());
  auto status = (*server)->Wait(absl::Seconds(30));
  REQUIRE(status.ok());
  CHECK(status->Exited(0));
  CHECK_THAT((*server)->stderr_text(), !Catch::Contains("tok-12345-secret"));
  CHECK_THAT((*server)->stderr_text(), !Catch::Contains("without TLS"));
}

TEST_CASE("Listening without TLS beyond loopback draws a warning",
          "[security][binary]") {
  const std::string address = GENERATE(std::string("[::]:0"), std::string("127.0.0.1:0"));
  auto server = testing::Subprocess::Start(
      {EnvPath("ROUTEGUIDE_SERVER"), "--address=" + address, "--threads=1"});
  REQUIRE(server.ok());
  REQUIRE((*server)->WaitForStderrLineContaining("listening on",
                                                 absl::Now() + absl::Seconds(20))
              .ok());
  REQUIRE((*server)->Signal(SIGTERM).ok());
  REQUIRE((*server)->Wait(absl::Seconds(30)).ok());
  if (address == "[::]:0") {
    CHECK_THAT((*server)->stderr_text(), Catch::Contains("without TLS"));
  } else {
    CHECK_THAT((*server)->stderr_text(), !Catch::Contains("without TLS"));
  }
}

TEST_CASE("Bad security flags exit 2 with a message", "[security][binary]") {
  const std::vector<std::string> flags = GENERATE(
      std::vector<std::string>{"--tls_cert=/nonexistent/cert.pem", "--tls_key=/nonexistent/key.pem"},
      std::vector<std::string>{"--tls_client_ca=/nonexistent/ca.pem"},
      std::vector<std::string>{"--auth_token_file=/nonexistent/token"},
      std::vector<std::string>{"--max_message_size=lots"},
      std::vector<std::string>{"--max_message_size=1GiB"},
      std::vector<std::string>{"--max_memory=-1"});
  std::vector<std::string> argv = {EnvPath("ROUTEGUIDE_SERVER"), "--address=127.0.0.1:0"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  auto result = testing::Run(argv, absl::Seconds(30));
  REQUIRE(result.ok());
  INFO(absl::StrJoin(flags, " ") << "\n" << result->stderr_text);
  CHECK(result->exit.Exited(2));
  CHECK_THAT(result->stderr_text, Catch::Contains("error"));
}

}  // namespace
}  // namespace routeguide

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
