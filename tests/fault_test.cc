// Faults and bad input: clients that vanish, storms of cancellations,
// garbage on the wire, floods of notes, huge routes. After each, the server
// serves on and its calls in flight drop back to zero (and the pre-posted
// call objects to their baseline). Storms of deadlines are in
// fault_deadline_test.cc, floods of streams and connections against the
// server binary in fault_flood_test.cc.
#include <signal.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "call_tags.h"
#include "catch2/catch.hpp"
#include "fault_fixture.h"
#include "client_calls.h"
#include "client_queues.h"
#include "db_loader.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "route_guide.grpc.pb.h"
#include "route_guide_server.h"
#include "server_process.h"
#include "subprocess.h"
#include "test_server.h"
#include "test_util.h"

namespace routeguide {
namespace {

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
  REQUIRE(WaitFor([&] { return fixture.server->calls().active() >= 8; },
                  absl::Seconds(30), absl::Milliseconds(2)));
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
  ShutdownAndDrain(cq);
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
  const absl::Time started = absl::Now();
  StartRecordRoute(*fixture.stub, *queues.queue(0), options, std::move(points),
                   [](const Point&) {},
                   [&](const grpc::Status& s, const RouteSummary& r) {
                     status = s;
                     summary = r;
                     done.Notify();
                   });
  REQUIRE(done.WaitForNotificationWithTimeout(absl::Seconds(180)));
  const absl::Duration call_time = absl::Now() - started;
  REQUIRE(status.ok());
  CHECK(summary.point_count() == 1000000);
  CHECK(summary.feature_count() == 0);
  CHECK(summary.distance() == std::numeric_limits<int32_t>::max());
  // Whole seconds of the server's part of the call, which lies within the
  // client's.
  INFO("the call took " << absl::FormatDuration(call_time));
  CHECK(summary.elapsed_time() <= absl::ToInt64Seconds(call_time));
}

}  // namespace
}  // namespace routeguide
