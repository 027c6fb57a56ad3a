// CallOptions::batch_writes on the client's streaming calls (RecordRoute,
// RouteChat): with it, gRPC holds a call's messages until WritesDone and
// sends them together; without it, each message leaves as it is written.
// Either way every message arrives. This pins gRPC 1.51's buffer-hint
// rules as the load generator relies on them, as write_coalescing_test
// does for the server's: a gRPC upgrade that changes them fails here.
//
// A sync fake server notes how many messages the client had handed to gRPC
// when the call's first message arrived. The client's callback for its
// second message holds the client's queue thread until that first arrival
// (or, where it must not come, for kQuiet), so the two modes differ by the
// whole call: the first message arrives with 1 or 2 handed, or with all.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "client_calls.h"
#include "client_queues.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "route_guide.grpc.pb.h"

namespace routeguide {
namespace {

constexpr int kMessages = 20;
// How long a message that must not arrive yet is given to arrive anyway.
constexpr absl::Duration kQuiet = absl::Milliseconds(300);
// How long a message that must arrive is waited for; generous for an ASan
// build on a busy machine.
constexpr absl::Duration kArrival = absl::Seconds(5);
// The call's deadline, past any hold, so that a call the client holds too
// long still ends (and the test with it) before kCallEnd.
constexpr absl::Duration kCallDeadline = absl::Seconds(15);
constexpr absl::Duration kCallEnd = absl::Seconds(45);

// Reads every message of each call; notes, at the first, how many messages
// the client had handed to gRPC by then.
class ArrivalWatchService final : public RouteGuide::Service {
 public:
  explicit ArrivalWatchService(const std::atomic<int>& handed) : handed_(handed) {}

  grpc::Status RecordRoute(grpc::ServerContext*, grpc::ServerReader<Point>* reader,
                           RouteSummary* summary) override {
    Point point;
    int count = 0;
    while (reader->Read(&point)) {
      if (count++ == 0) NoteFirstArrival();
    }
    received_ = count;
    summary->set_point_count(count);
    return grpc::Status::OK;
  }

  grpc::Status RouteChat(grpc::ServerContext*,
                         grpc::ServerReaderWriter<RouteNote, RouteNote>* stream) override {
    RouteNote note;
    int count = 0;
    while (stream->Read(&note)) {
      if (count++ == 0) NoteFirstArrival();
    }
    received_ = count;
    return grpc::Status::OK;
  }

  absl::Notification& first_arrived() { return first_arrived_; }
  int handed_at_first_arrival() const { return handed_at_first_arrival_; }
  int received() const { return received_; }

 private:
  void NoteFirstArrival() {
    handed_at_first_arrival_ = handed_.load();
    first_arrived_.Notify();
  }

  const std::atomic<int>& handed_;
  absl::Notification first_arrived_;
  std::atomic<int> handed_at_first_arrival_{-1};
  std::atomic<int> received_{-1};
};

class Fixture {
 public:
  Fixture() : service_(handed_) {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    REQUIRE(server_ != nullptr);
    stub_ = RouteGuide::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                                    grpc::InsecureChannelCredentials()));
  }
  ~Fixture() {
    queues_.Shutdown();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }

  // The callback for each message the client hands to gRPC: at the second,
  // waits for the first to arrive at the server, for at most `hold`.
  std::function<void()> HandOver(absl::Duration hold) {
    return [this, hold] {
      if (handed_.fetch_add(1) + 1 == 2) {
        service_.first_arrived().WaitForNotificationWithTimeout(hold);
      }
    };
  }

  RouteGuide::Stub& stub() { return *stub_; }
  grpc::CompletionQueue& cq() { return *queues_.queue(0); }
  ArrivalWatchService& service() { return service_; }
  int handed() const { return handed_.load(); }

 private:
  std::atomic<int> handed_{0};
  ArrivalWatchService service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<RouteGuide::Stub> stub_;
  ClientQueues queues_{1};
};

// How one call ended. Shared with the call's callbacks, so that a call
// the test gave up on can still end into it while the queue drains.
struct Outcome {
  absl::Notification done;
  grpc::Status status;
  int summarised = -1;  // RecordRoute: the server's point count.
};

// Runs one RecordRoute or RouteChat of kMessages.
std::shared_ptr<Outcome> RunStream(Fixture& fixture, bool chat,
                                   const CallOptions& options, absl::Duration hold) {
  auto outcome = std::make_shared<Outcome>();
  const std::function<void()> hand_over = fixture.HandOver(hold);
  if (chat) {
    std::vector<RouteNote> notes(kMessages);
    for (int i = 0; i < kMessages; ++i) notes[i].set_message(absl::StrCat("note ", i));
    StartRouteChat(
        fixture.stub(), fixture.cq(), options, std::move(notes),
        [hand_over](const RouteNote&) { hand_over(); }, [](const RouteNote&) {},
        [outcome](const grpc::Status& s) {
          outcome->status = s;
          outcome->done.Notify();
        });
  } else {
    std::vector<Point> points(kMessages);
    for (int i = 0; i < kMessages; ++i) points[i].set_latitude(i);
    StartRecordRoute(fixture.stub(), fixture.cq(), options, std::move(points),
                     [hand_over](const Point&) { hand_over(); },
                     [outcome](const grpc::Status& s, const RouteSummary& summary) {
                       outcome->status = s;
                       outcome->summarised = summary.point_count();
                       outcome->done.Notify();
                     });
  }
  REQUIRE(outcome->done.WaitForNotificationWithTimeout(kCallEnd));
  INFO(outcome->status.error_message());
  REQUIRE(outcome->status.ok());
  return outcome;
}

TEST_CASE("With batch_writes a stream's messages leave together after the last is "
          "written; without it each leaves as it is written",
          "[client]") {
  const bool chat = GENERATE(false, true);
  INFO((chat ? "RouteChat" : "RecordRoute"));
  Fixture fixture;
  CallOptions options;
  options.deadline = kCallDeadline;
  std::shared_ptr<Outcome> outcome;

  SECTION("batched: nothing arrives until the last message is written") {
    options.batch_writes = true;
    outcome = RunStream(fixture, chat, options, kQuiet);
    CHECK(fixture.service().handed_at_first_arrival() == kMessages);
  }
  SECTION("unbatched: the first message arrives while the second is held") {
    outcome = RunStream(fixture, chat, options, kArrival);
    CHECK(fixture.service().handed_at_first_arrival() >= 1);
    CHECK(fixture.service().handed_at_first_arrival() <= 2);
  }
  CHECK(fixture.handed() == kMessages);
  CHECK(fixture.service().received() == kMessages);
  if (!chat) CHECK(outcome->summarised == kMessages);
}

TEST_CASE("Stream writes carry the buffer hint exactly when batch_writes is set",
          "[client]") {
  CHECK(StreamWriteOptions(true).get_buffer_hint());
  CHECK_FALSE(StreamWriteOptions(false).get_buffer_hint());
}

}  // namespace
}  // namespace routeguide
