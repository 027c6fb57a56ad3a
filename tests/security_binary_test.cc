// The server and client binaries with TLS, tokens and bad security flags.
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
