// What the security tests share: keys and certificates made at test time
// (Pki), servers, channels and a GetFeature call.
#ifndef ROUTEGUIDE_TESTS_SECURITY_PKI_H_
#define ROUTEGUIDE_TESTS_SECURITY_PKI_H_

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

struct Server {
  explicit Server(ServerOptions options) : server(StartTestServer(options)) {}
  std::string target() const { return LocalTarget(server->port()); }
  std::unique_ptr<RouteGuideServer> server;
};

inline std::shared_ptr<grpc::Channel> Channel(
    const std::string& target,
    std::shared_ptr<grpc::ChannelCredentials> credentials) {
  grpc::ChannelArguments args;
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  return grpc::CreateCustomChannel(target, credentials, args);
}

inline grpc::Status CallGetFeature(const std::shared_ptr<grpc::Channel>& channel,
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

inline std::shared_ptr<grpc::ChannelCredentials> TrustingCa(const std::string& ca,
                                                     const std::string& client = "") {
  const Pki& pki = Pki::Get();
  auto credentials =
      ClientTls(pki.Path(ca + ".pem"), client.empty() ? "" : pki.Path(client + ".pem"),
                client.empty() ? "" : pki.Path(client + ".key"));
  REQUIRE(credentials.ok());
  return *credentials;
}

// The path in environment variable `name` (meson test sets it).
inline std::string EnvPath(const char* name) {
  const char* path = std::getenv(name);
  REQUIRE(path != nullptr);
  return path;
}

}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_SECURITY_PKI_H_
