// Backpressure, idle timeouts, health during shutdown, reflection and start-up
// errors, on the server in-process on 127.0.0.1:0.
#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "catch2/catch.hpp"
#include "client_calls.h"
#include "client_queues.h"
#include "db_loader.h"
#include "feature_wire_cache.h"
#include "geo.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/security/credentials.h"
#include "health.grpc.pb.h"
#include "route_guide.grpc.pb.h"
#include "route_guide_server.h"
#include "test_server.h"
#include "test_util.h"

namespace routeguide {
namespace {

// A stub on a connection of its own whose flow-control window stays small
// (no BDP probing grows it), so unread replies soon hold the server back.
std::unique_ptr<RouteGuide::Stub> SmallWindowStub(const TestServer& test) {
  return RouteGuide::NewStub(SmallWindowChannel(test.server->port()));
}

TEST_CASE("A RouteChat client that does not read its replies is not read "
          "either, until the queue drains",
          "[server][chat][backpressure]") {
  ServerOptions options = TestServer::DefaultOptions();
  options.max_queued_replies = 4;
  TestServer test(options);
  // Big notes, so the replies to one note (800 KB) are far more than the
  // stream's HTTP/2 window and the transport's buffers hold: the server's
  // writes have to wait for the client to read.
  constexpr int kOldNotes = 50;
  constexpr int kOldNoteBytes = 16000;
  for (int i = 0; i < kOldNotes; ++i) {
    test.store->AddNote({{8, 8}, std::string(kOldNoteBytes, 'o')});
  }
  auto notes_read = [&] {
    return static_cast<int>(test.store->NotesAt({8, 8}).size()) - kOldNotes;
  };

  auto stub = SmallWindowStub(test);
  grpc::ClientContext context;
  SetDeadline(context);
  auto stream = stub->RouteChat(&context);
  constexpr int kNewNotes = 10;
  for (int i = 0; i < kNewNotes; ++i) REQUIRE(stream->Write(MakeNote("new", 8, 8)));
  // The server reads the first note, which queues 50 replies: past the
  // bound of 4, so it reads no more while nobody reads the replies.
  REQUIRE(WaitFor([&] { return notes_read() >= 1; }));
  CHECK_FALSE(WaitFor([&] { return notes_read() > 1; }, absl::Seconds(1)));
  CHECK(notes_read() == 1);

  // Reading the replies resumes it. Note k sees the 50 old notes, then the
  // k-1 new ones; the server reads note k+1 only once it has written all
  // but half the bound of the replies to notes 1..k, and what it has
  // written and the client not read fits in flow control's windows and
  // the buffers: generously, 480 KB (about 176 KB were seen).
  std::vector<int> reply_bytes;  // In order; the short new notes as 0.
  for (int note = 1; note <= kNewNotes; ++note) {
    reply_bytes.insert(reply_bytes.end(), kOldNotes, kOldNoteBytes);
    reply_bytes.insert(reply_bytes.end(), note - 1, 0);
  }
  constexpr int kBytesInFlight = 480 * 1000;
  auto most_notes_read = [&](int replies_read) {
    int notes = 1;
    int replies_due = 0;  // To notes 1..notes.
    while (notes < kNewNotes) {
      replies_due += kOldNotes + notes - 1;
      const int must_be_written =
          replies_due - static_cast<int>(options.max_queued_replies) / 2;
      int64_t unread = 0;
      for (int i = replies_read; i < must_be_written; ++i) unread += reply_bytes[i];
      if (unread > kBytesInFlight) break;
      ++notes;
    }
    return notes;
  };
  RouteNote reply;
  int replies = 0;
  for (; replies < kOldNotes; ++replies) {
    INFO("after " << replies << " replies read");
    REQUIRE(notes_read() <= most_notes_read(replies));
    REQUIRE(stream->Read(&reply));
  }
  // Every reply to the first note read: the queue is empty, reading resumes.
  CHECK(WaitFor([&] { return notes_read() >= 2; }));

  stream->WritesDone();
  while (stream->Read(&reply)) {
    ++replies;
    INFO("after " << replies << " replies read");
    REQUIRE(notes_read() <= most_notes_read(replies));
  }
  REQUIRE(stream->Finish().ok());
  // Note k (0-based) of the ten sees the 50 old notes and k new ones.
  CHECK(replies == kNewNotes * kOldNotes + 45);
  CHECK(notes_read() == kNewNotes);
  CHECK(NoCallsInFlight(test));
}

TEST_CASE("A RouteChat client that stops both reading and sending is ended "
          "by the idle timeout",
          "[server][chat][backpressure][idle]") {
  ServerOptions options = TestServer::DefaultOptions();
  options.max_queued_replies = 4;
  options.stream_idle_timeout = absl::Seconds(1);
  TestServer test(options);
  for (int i = 0; i < 50; ++i) test.store->AddNote({{9, 9}, std::string(4000, 'o')});
  auto stub = SmallWindowStub(test);
  grpc::ClientContext context;
  SetDeadline(context);
  auto stream = stub->RouteChat(&context);
  for (int i = 0; i < 3; ++i) REQUIRE(stream->Write(MakeNote("new", 9, 9)));
  // Reads nothing more and sends nothing more: the call ends.
  CHECK(WaitFor([&] { return test.server->calls().active() == 0; }));
  context.TryCancel();
  CHECK(!stream->Finish().ok());
}

TEST_CASE("Streams whose client sends nothing for the idle timeout are ended",
          "[server][idle]") {
  ServerOptions options = TestServer::DefaultOptions();
  options.stream_idle_timeout = absl::Seconds(1);
  TestServer test(options);

  SECTION("an idle RouteChat") {
    grpc::ClientContext context;
    SetDeadline(context);
    auto stream = test.stub->RouteChat(&context);
    // Before the Write: the server may take the note before it returns.
    const absl::Time last_progress = absl::Now();
    REQUIRE(stream->Write(MakeNote("one", 3, 3)));
    RouteNote reply;
    CHECK(!stream->Read(&reply));  // Ends by itself...
    // ...and not before the timeout (the idle sweep looks every 125 ms).
    CHECK(absl::Now() - last_progress >= absl::Seconds(1));
    const grpc::Status status = stream->Finish();
    CHECK(status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
    CHECK_THAT(status.error_message(), Catch::Contains("no progress"));
  }
  SECTION("an idle RecordRoute") {
    grpc::ClientContext context;
    SetDeadline(context);
    RouteSummary summary;
    const absl::Time started = absl::Now();
    auto writer = test.stub->RecordRoute(&context, &summary);
    const grpc::Status status = writer->Finish();  // Without WritesDone.
    CHECK(absl::Now() - started >= absl::Seconds(1));
    CHECK(status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
    CHECK_THAT(status.error_message(), Catch::Contains("no point received"));
  }
  SECTION("a RouteChat that keeps talking outlives the timeout") {
    grpc::ClientContext context;
    SetDeadline(context);
    auto stream = test.stub->RouteChat(&context);
    // 1.5 s of notes, each well inside the 1 s timeout.
    for (int i = 0; i < 15; ++i) {
      REQUIRE(stream->Write(MakeNote(std::to_string(i), 4, 4 + i)));
      absl::SleepFor(absl::Milliseconds(100));
    }
    stream->WritesDone();
    RouteNote reply;
    CHECK(!stream->Read(&reply));
    CHECK(stream->Finish().ok());
  }
  CHECK(NoCallsInFlight(test));
}

TEST_CASE("Health turns NOT_SERVING when shutdown starts, while calls are "
          "still served for the drain period",
          "[server][shutdown][health]") {
  ServerOptions options = TestServer::DefaultOptions();
  options.grace = absl::Seconds(30);
  options.health_drain = absl::Seconds(5);  // The test runs in it.
  TestServer test(options);
  auto health = grpc::health::v1::Health::NewStub(test.channel);
  auto check = [&] {
    grpc::ClientContext context;
    SetDeadline(context);
    grpc::health::v1::HealthCheckResponse response;
    REQUIRE(health->Check(&context, {}, &response).ok());
    return response.status();
  };
  CHECK(check() == grpc::health::v1::HealthCheckResponse::SERVING);

  std::thread stopper([&] { test.server->Shutdown(); });
  REQUIRE(WaitFor([&] { return test.server->shutdown_started(); }));
  CHECK(WaitFor([&] {
    return check() == grpc::health::v1::HealthCheckResponse::NOT_SERVING;
  }));
  // Still draining: other calls are served as before.
  grpc::ClientContext context;
  SetDeadline(context);
  Feature feature;
  CHECK(test.stub->GetFeature(&context, MakePoint(409146138, -746188906), &feature)
            .ok());
  CHECK(!feature.name().empty());
  // Closing the client's connection lets the shutdown end without waiting
  // for the client to notice the server's GOAWAY.
  test.stub.reset();
  health.reset();
  test.channel.reset();
  stopper.join();
  CHECK(test.server->calls().objects() == 0);
}

TEST_CASE("Server reflection lists the services when enabled, and only then; "
          "with a token set, only to clients that carry it",
          "[server][reflection]") {
  ServerOptions options = TestServer::DefaultOptions();
  options.reflection = GENERATE(true, false);
  // With a token: the client sends none, a wrong one, or the right one.
  const std::string sent_token = GENERATE(as<std::string>{}, "", "wrong", "s3cret");
  const bool token_required = GENERATE(false, true);
  if (token_required) options.auth_token = "s3cret";
  if (!token_required && !sent_token.empty()) return;  // Nothing new to see.
  CAPTURE(options.reflection, token_required, sent_token);
  TestServer test(options);
  // Raw bytes through the generic stub, as any reflection client would
  // send them (reflection_test.cc uses the generated messages).
  grpc::GenericStub generic(test.channel);
  grpc::CompletionQueue cq;
  auto await = [&cq](intptr_t expected) {
    void* tag = nullptr;
    bool ok = false;
    REQUIRE(cq.Next(&tag, &ok));
    REQUIRE(reinterpret_cast<intptr_t>(tag) == expected);
    return ok;
  };
  grpc::ClientContext context;
  SetDeadline(context);
  if (!sent_token.empty()) context.AddMetadata("authorization", "Bearer " + sent_token);
  auto call = generic.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  REQUIRE(await(1));
  const bool refused = token_required && sent_token != options.auth_token;
  if (!options.reflection || refused) {
    grpc::Status status;
    call->Finish(&status, reinterpret_cast<void*>(5));
    await(5);
    CHECK(status.error_code() == (options.reflection ? grpc::StatusCode::UNAUTHENTICATED
                                                     : grpc::StatusCode::UNIMPLEMENTED));
    ShutdownAndDrain(cq);
    return;
  }
  // ServerReflectionRequest { list_services = 7: "*" }
  grpc::Slice request_slice(std::string("\x3a\x01*", 3));
  call->Write(grpc::ByteBuffer(&request_slice, 1), reinterpret_cast<void*>(2));
  REQUIRE(await(2));
  call->WritesDone(reinterpret_cast<void*>(3));
  REQUIRE(await(3));
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(4));
  REQUIRE(await(4));
  const std::string bytes = ByteBufferToString(response);
  CHECK_THAT(bytes, Catch::Contains("routeguide.RouteGuide"));
  CHECK_THAT(bytes, Catch::Contains("grpc.health.v1.Health"));
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  await(5);
  CHECK(status.ok());
  ShutdownAndDrain(cq);
}

TEST_CASE("Start reports an address it cannot listen on", "[server]") {
  ServerOptions options = TestServer::DefaultOptions();
  // (A port in use would not do: gRPC sets SO_REUSEPORT, so a second server
  // shares it.)
  options.address = "unix:/nonexistent-directory/routeguide.sock";
  auto server = RouteGuideServer::Start(options, std::make_shared<FeatureStore>());
  REQUIRE(!server.ok());
  CHECK_THAT(std::string(server.status().message()),
             Catch::Contains("/nonexistent-directory/routeguide.sock"));
}

}  // namespace
}  // namespace routeguide
