// routeguide-client against targets it cannot use: each failure says what
// went wrong, a bad address is refused before connecting, and a --target
// list with a dead address warns.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <fstream>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "catch2/catch.hpp"
#include "client_process.h"
#include "nlohmann/json.hpp"
#include "security_pki.h"
#include "subprocess.h"
#include "test_server.h"

namespace routeguide {
namespace {

// A TCP listener on 127.0.0.1 that answers every connection with an
// HTTP/1.1 400, as a web server does to an HTTP/2 preface, and closes it.
class Http1Server {
 public:
  Http1Server() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    REQUIRE(listen(fd_, 16) == 0);
    socklen_t length = sizeof(address);
    REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~Http1Server() {
    stop_.store(true);
    thread_.join();
    close(fd_);
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  void Serve() {
    while (!stop_.load()) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      const int client = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      char buffer[1024];
      pollfd c{client, POLLIN, 0};
      if (poll(&c, 1, 1000) > 0) (void)!read(client, buffer, sizeof(buffer));
      static constexpr char kAnswer[] =
          "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
          "Connection: close\r\n\r\n";
      (void)!write(client, kAnswer, sizeof(kAnswer) - 1);
      close(client);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A port nothing listens on: a server's, after it has stopped.
int ClosedPort() {
  auto server = StartTestServer();
  return server->port();
}

TEST_CASE("A bad address is refused at once, before connecting",
          "[load][binary]") {
  struct Case {
    std::string target;
    std::string says;
  };
  const Case c = GENERATE(Case{"127.0.0.1:70000", "not 1 to 65535"},
                          Case{"localhost", "has no port"},
                          Case{"127.0.0.1:1,127.0.0.1:70000", "not 1 to 65535"});
  for (const char* command : {"load", "tutorial"}) {
    if (std::string(command) == "tutorial" && c.target.find(',') != std::string::npos) {
      continue;
    }
    const absl::Time start = absl::Now();
    const auto result = testing::RunClient({command, "--target=" + c.target});
    INFO(command << " " << c.target << "\n" << result.stderr_text);
    CHECK(result.exit.Exited(2));
    CHECK_THAT(result.stderr_text, Catch::Contains("--target"));
    CHECK_THAT(result.stderr_text, Catch::Contains(c.says));
    CHECK(absl::Now() - start < absl::Seconds(3));  // Not after --connect_timeout.
  }
}

TEST_CASE("A server that cannot be used is reported with what went wrong",
          "[load][binary]") {
  const Pki& pki = Pki::Get();
  SECTION("an HTTP/1.1 server") {
    Http1Server http1;
    const auto result = testing::RunClient({"load", "--target=" + http1.address(),
                                   "--connect_timeout=1s"});
    INFO(result.stderr_text);
    INFO(result.exit.ToString());
    CHECK(result.exit.Exited(2));
    CHECK_THAT(result.stderr_text, Catch::Contains(http1.address()));
    CHECK_THAT(result.stderr_text, Catch::Contains("a first call failed with"));
    CHECK_THAT(result.stderr_text, Catch::Contains("http1.x server"));
  }
  // A server with the test PKI's certificate.
  const auto tls_options = [&pki] {
    ServerOptions options;
    auto tls = ServerTls(pki.Path("server.pem"), pki.Path("server.key"), "");
    REQUIRE(tls.ok());
    options.credentials = *tls;
    return options;
  };
  SECTION("a plaintext client against a TLS server") {
    Server server(tls_options());
    const auto result = testing::RunClient({"load", "--target=" + server.target(),
                                   "--connect_timeout=1s"});
    INFO(result.stderr_text);
    INFO(result.exit.ToString());
    CHECK(result.exit.Exited(2));
    CHECK_THAT(result.stderr_text, Catch::Contains("a first call failed with"));
    CHECK_THAT(result.stderr_text, Catch::Contains("the client spoke plaintext"));
  }
  SECTION("a TLS client against a plaintext server") {
    Server server(ServerOptions{});
    const auto result =
        testing::RunClient({"load", "--target=" + server.target(), "--connect_timeout=1s",
                   "--tls_ca=" + pki.Path("ca.pem")});
    INFO(result.stderr_text);
    INFO(result.exit.ToString());
    CHECK(result.exit.Exited(2));
    CHECK_THAT(result.stderr_text, Catch::Contains("a first call failed with"));
    CHECK_THAT(result.stderr_text, Catch::Contains("the client spoke TLS"));
  }
  SECTION("a wrong --tls_server_name") {
    Server server(tls_options());
    const auto result = testing::RunClient(
        {"load", "--target=" + server.target(), "--connect_timeout=1s",
         "--tls_ca=" + pki.Path("ca.pem"), "--tls_server_name=elsewhere.example"});
    INFO(result.stderr_text);
    INFO(result.exit.ToString());
    CHECK(result.exit.Exited(2));
    CHECK_THAT(result.stderr_text, Catch::Contains("a first call failed with"));
    CHECK_THAT(result.stderr_text,
               Catch::Contains("Peer name elsewhere.example is not in peer certificate"));
  }
}

TEST_CASE("A --target list with a dead address warns and still runs",
          "[load][binary]") {
  auto server = StartTestServer();
  const std::string live = LocalTarget(server->port());
  // Found after the server listens, so the kernel cannot hand the closed
  // port to the server (it once did, and the "dead" address answered).
  int dead_port = ClosedPort();
  while (dead_port == server->port()) dead_port = ClosedPort();
  const std::string dead = absl::StrCat("127.0.0.1:", dead_port);
  char dir[] = "/tmp/routeguide-split-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  const std::string json_path = std::string(dir) + "/report.json";
  const auto result =
      testing::RunClient({"load", "--target=" + live + "," + dead, "--requests=200",
                 "--concurrency=4", "--connect_timeout=1s", "--json=" + json_path});
  std::ifstream json_file(json_path);
  const auto json = nlohmann::json::parse(json_file, nullptr, false);
  unlink(json_path.c_str());
  rmdir(dir);
  INFO(result.stdout_text << result.stderr_text);
  CHECK(result.exit.Exited(0));
  CHECK_THAT(result.stderr_text, Catch::Contains("warning"));
  CHECK_THAT(result.stderr_text, Catch::Contains(dead));
  CHECK_THAT(result.stderr_text, !Catch::Contains("warning: cannot reach a server at ipv4:" + live));
  // The report shows the split: every call on the live address, none on
  // the dead one.
  CHECK_THAT(result.stdout_text, Catch::Contains("calls by address"));
  CHECK_THAT(result.stdout_text, Catch::Contains("ipv4:" + dead));
  CHECK_THAT(result.stdout_text, Catch::Contains("ipv4:" + live));
  REQUIRE(json.contains("by_address"));
  int64_t live_calls = -1, dead_calls = -1;
  for (const auto& entry : json["by_address"]) {
    if (entry["address"] == "ipv4:" + live) live_calls = entry["succeeded"];
    if (entry["address"] == "ipv4:" + dead) dead_calls = entry["started"];
  }
  CHECK(live_calls >= 200);  // The first ListFeatures counts too.
  CHECK(dead_calls == 0);
}

}  // namespace
}  // namespace routeguide
