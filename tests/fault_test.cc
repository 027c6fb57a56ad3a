// Faults and bad input: clients that vanish, storms of cancellations,
// deadlines at every stage, garbage on the wire, floods of notes, huge
// routes. After each, the server serves on and its calls in flight drop
// back to zero (and the pre-posted call objects to their baseline).
#include <signal.h>

#include <cstdlib>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "catch2/catch.hpp"
#include "client_calls.h"
#include "client_queues.h"
#include "db_loader.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "route_guide.grpc.pb.h"
#include "route_guide_server.h"
#include "subprocess.h"

namespace routeguide {
namespace {

struct Fixture {
  explicit Fixture(FeatureStoreOptions store_options = {}) {
    store = std::make_shared<FeatureStore>(store_options);
    AddFeatures(*DefaultFeatures(), *store);
    ServerOptions options;
    options.address = "127.0.0.1:0";
    options.threads = 2;
    options.completion_queues = 2;
    options.calls_per_method_per_queue = 8;
    auto started = RouteGuideServer::Start(options, store);
    REQUIRE(started.ok());
    server = *std::move(started);
    baseline_objects = server->calls().objects();
    channel = grpc::CreateChannel(target(), grpc::InsecureChannelCredentials());
    stub = RouteGuide::NewStub(channel);
  }
  std::string target() const { return absl::StrCat("127.0.0.1:", server->port()); }

  // Waits until no call is in flight and only the pre-posted call objects
  // remain.
  bool BackToBaseline() const {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (server->calls().active() != 0 || server->calls().objects() != baseline_objects) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(2));
    }
    return true;
  }
  bool StillServes() const {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    Point point;
    point.set_latitude(409146138);
    point.set_longitude(-746188906);
    Feature feature;
    return stub->GetFeature(&context, point, &feature).ok() && !feature.name().empty();
  }

  std::shared_ptr<FeatureStore> store;
  std::unique_ptr<RouteGuideServer> server;
  int64_t baseline_objects = 0;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<RouteGuide::Stub> stub;
};

std::chrono::system_clock::time_point In(absl::Duration d) {
  return absl::ToChronoTime(absl::Now() + d);
}

TEST_CASE("A client process killed mid-stream leaves nothing behind",
          "[fault]") {
  Fixture fixture;
  const char* client = std::getenv("ROUTEGUIDE_CLIENT");
  REQUIRE(client != nullptr);
  // Long chats and routes, so streams are open when the client dies.
  auto child = testing::Subprocess::Start(
      {client, "load", "--target=" + fixture.target(), "--duration=1h",
       "--mix=chat:1,record:1,list:1", "--chat_notes=100000",
       "--route_points=100000", "--concurrency=16"});
  REQUIRE(child.ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (fixture.server->calls().active() < 8 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  REQUIRE(fixture.server->calls().active() >= 8);
  REQUIRE((*child)->Signal(SIGKILL).ok());
  REQUIRE((*child)->Wait(absl::Seconds(30)).ok());
  CHECK(fixture.BackToBaseline());
  CHECK(fixture.StillServes());
}

TEST_CASE("Thousands of cancelled calls in a row", "[fault]") {
  Fixture fixture;
  constexpr int kCalls = 2000;
  for (int i = 0; i < kCalls; ++i) {
    grpc::ClientContext context;
    context.set_deadline(In(absl::Seconds(10)));
    switch (i % 3) {
      case 0: {
        auto stream = fixture.stub->RouteChat(&context);
        RouteNote note;
        note.set_message("x");
        stream->Write(note);
        context.TryCancel();
        stream->Finish().IgnoreError();
        break;
      }
      case 1: {
        RouteSummary summary;
        auto writer = fixture.stub->RecordRoute(&context, &summary);
        writer->Write(Point());
        context.TryCancel();
        writer->Finish().IgnoreError();
        break;
      }
      case 2: {
        auto reader = fixture.stub->ListFeatures(&context, Rectangle());
        context.TryCancel();
        reader->Finish().IgnoreError();
        break;
      }
    }
  }
  CHECK(fixture.BackToBaseline());
  CHECK(fixture.StillServes());
}

TEST_CASE("Deadlines expiring at every stage of every kind", "[fault]") {
  Fixture fixture;
  // Enough features that ListFeatures is still streaming when time is up.
  for (int i = 0; i < 100000; ++i) {
    fixture.store->AddFeature({std::string(64, 'f'), {100000000 + i, 100000000}});
  }
  Rectangle big;
  big.mutable_lo()->set_latitude(100000000);
  big.mutable_lo()->set_longitude(100000000);
  big.mutable_hi()->set_latitude(100000000 + 100000);
  big.mutable_hi()->set_longitude(100000000);

  SECTION("before the call reaches the server") {
    grpc::ClientContext context;
    context.set_deadline(In(absl::Nanoseconds(1)));
    Feature feature;
    CHECK(fixture.stub->GetFeature(&context, Point(), &feature).error_code() ==
          grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  SECTION("while the server streams") {
    grpc::ClientContext context;
    context.set_deadline(In(absl::Milliseconds(100)));
    auto reader = fixture.stub->ListFeatures(&context, big);
    Feature feature;
    REQUIRE(reader->Read(&feature));
    absl::SleepFor(absl::Milliseconds(200));  // Let it expire mid-stream.
    while (reader->Read(&feature)) {
    }
    CHECK(reader->Finish().error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  SECTION("while the server waits for more points") {
    grpc::ClientContext context;
    context.set_deadline(In(absl::Milliseconds(100)));
    RouteSummary summary;
    auto writer = fixture.stub->RecordRoute(&context, &summary);
    REQUIRE(writer->Write(Point()));
    CHECK(writer->Finish().error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  SECTION("while replies are queued for a chat") {
    for (int i = 0; i < 100; ++i) fixture.store->AddNote({{5, 5}, std::string(1000, 'n')});
    grpc::ClientContext context;
    context.set_deadline(In(absl::Milliseconds(100)));
    auto stream = fixture.stub->RouteChat(&context);
    RouteNote note;
    note.mutable_location()->set_latitude(5);
    note.mutable_location()->set_longitude(5);
    for (int i = 0; i < 20; ++i) stream->Write(note);  // Replies pile up.
    absl::SleepFor(absl::Milliseconds(200));
    CHECK(stream->Finish().error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  CHECK(fixture.BackToBaseline());
  CHECK(fixture.StillServes());
}

TEST_CASE("Garbage bytes as a request message are refused", "[fault]") {
  Fixture fixture;
  grpc::GenericStub generic(fixture.channel);
  grpc::CompletionQueue cq;
  for (const char* method :
       {"/routeguide.RouteGuide/GetFeature", "/routeguide.RouteGuide/ListFeatures"}) {
    grpc::ClientContext context;
    context.set_deadline(In(absl::Seconds(10)));
    const std::string garbage = "\xff\xff\xff\xff\x0f garbage";
    grpc::Slice slice(garbage);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    grpc::Status status;
    auto call = generic.PrepareUnaryCall(&context, method, request, &cq);
    call->StartCall();
    call->Finish(&response, &status, reinterpret_cast<void*>(1));
    void* tag = nullptr;
    bool ok = false;
    REQUIRE(cq.Next(&tag, &ok));
    INFO(method << ": " << status.error_message());
    CHECK(!status.ok());
  }
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
  CHECK(fixture.BackToBaseline());
  CHECK(fixture.StillServes());
}

TEST_CASE("A flood of notes stays within the store's bounds", "[fault]") {
  FeatureStoreOptions bounds;
  bounds.max_notes = 1000;
  bounds.max_notes_per_location = 10;
  Fixture fixture(bounds);
  grpc::ClientContext context;
  context.set_deadline(In(absl::Seconds(60)));
  auto stream = fixture.stub->RouteChat(&context);
  constexpr int kNotes = 20000;
  RouteNote note;
  note.set_message(std::string(200, 'n'));
  size_t peak = 0;
  for (int i = 0; i < kNotes; ++i) {
    note.mutable_location()->set_latitude(i % 3000);  // 3000 locations.
    REQUIRE(stream->Write(note));
    if (i % 1000 == 0) peak = std::max(peak, fixture.store->note_count());
  }
  stream->WritesDone();
  RouteNote reply;
  while (stream->Read(&reply)) {
  }
  REQUIRE(stream->Finish().ok());
  CHECK(fixture.store->note_count() > 0);
  CHECK(fixture.store->note_count() <= bounds.max_notes);
  CHECK(peak <= bounds.max_notes + 2);  // Two server threads add at once.
  CHECK(fixture.BackToBaseline());
}

TEST_CASE("A RecordRoute of a million points saturates its distance",
          "[fault]") {
  Fixture fixture;
  std::vector<Point> points(1000000);
  for (size_t i = 0; i < points.size(); ++i) {
    points[i].set_latitude(i % 2 == 0 ? 900000000 : -900000000);
  }
  ClientQueues queues(1);
  CallOptions options;
  options.deadline = absl::Seconds(120);
  absl::Notification done;
  grpc::Status status;
  RouteSummary summary;
  StartRecordRoute(*fixture.stub, *queues.queue(0), options, std::move(points),
                   [](const Point&) {},
                   [&](const grpc::Status& s, const RouteSummary& r) {
                     status = s;
                     summary = r;
                     done.Notify();
                   });
  REQUIRE(done.WaitForNotificationWithTimeout(absl::Seconds(180)));
  REQUIRE(status.ok());
  CHECK(summary.point_count() == 1000000);
  CHECK(summary.feature_count() == 0);
  CHECK(summary.distance() == std::numeric_limits<int32_t>::max());
  CHECK(summary.elapsed_time() >= 0);
}

}  // namespace
}  // namespace routeguide
