// Who gets in (TLS, mutual TLS, bearer tokens) and the bounds on what comes
// in (message size, note length). Keys and certificates are made at test
// time with openssl; none is committed.
// (The binaries end to end: security_binary_test.cc; connection bounds:
// security_connection_test.cc.)
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
  CHECK(NoCallsInFlight(*server.server));
}

}  // namespace
}  // namespace routeguide
