// Pins the gRPC (chttp2) write-buffering rules that ListFeaturesCall's
// coalescing relies on (WriteNextOrFinish in server/list_features_call.cc).
// If a gRPC upgrade changes one of them, a case here fails and the
// coalescing needs rethinking before the upgrade goes in.
//
// A raw async RouteGuide server drives one ListFeatures call by hand from the
// test thread, and a real channel reads that call with an async reader on a
// queue of its own, so each step can see both whether a server Write has
// completed and whether the client holds the message yet. Everything runs on
// the test thread: polling either queue also drives the other side's socket.
//
// A "not within kQuiet" check is the only way to observe that something does
// not happen; the positive checks allow kEventually, generous for an ASan
// build on a loaded machine.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "catch2/catch.hpp"
#include "grpc/impl/codegen/grpc_types.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/async_stream.h"
#include "route_guide.grpc.pb.h"
#include "test_util.h"

namespace routeguide {
namespace {

using Clock = std::chrono::system_clock;

// How long something that must not happen is given to happen anyway.
constexpr auto kQuiet = std::chrono::milliseconds(300);
// Completion "at once": in practice the tag is queued before Write returns.
constexpr auto kAtOnce = std::chrono::seconds(1);
// Anything that must happen: a round trip, a flush, a cancellation.
constexpr auto kEventually = std::chrono::seconds(5);
// The client's deadline for the one call; no case comes near it.
constexpr auto kCallDeadline = std::chrono::seconds(30);

// One tag per kind of operation: each kind has at most one in flight.
enum class Tag : std::intptr_t {
  kRequest = 1,
  kWrite,
  kFinish,
  kClientStart,
  kClientRead,
  kClientFinish,
};

void* ToTag(Tag tag) {
  return reinterpret_cast<void*>(static_cast<std::intptr_t>(tag));
}

Tag FromTag(void* tag) {
  return static_cast<Tag>(reinterpret_cast<std::intptr_t>(tag));
}

// What became of an awaited tag.
enum class Completion { kOk, kFailed, kNotYet };

std::ostream& operator<<(std::ostream& os, Completion completion) {
  switch (completion) {
    case Completion::kOk:
      return os << "completed ok";
    case Completion::kFailed:
      return os << "completed not ok";
    case Completion::kNotYet:
      return os << "not completed";
  }
  return os;
}

// What the client's next Read brought.
enum class ReadResult { kMessage, kEnd, kNothingYet };

std::ostream& operator<<(std::ostream& os, ReadResult result) {
  switch (result) {
    case ReadResult::kMessage:
      return os << "a message";
    case ReadResult::kEnd:
      return os << "end of stream";
    case ReadResult::kNothingYet:
      return os << "nothing yet";
  }
  return os;
}

// A completion queue polled by the test thread alone. A tag that comes back
// while another one is awaited is kept for its own wait.
class TagQueue {
 public:
  explicit TagQueue(grpc::CompletionQueue* cq) : cq_(cq) {}

  Completion WaitFor(Tag tag, Clock::duration timeout) {
    const Clock::time_point deadline = Clock::now() + timeout;
    for (;;) {
      if (auto it = arrived_.find(tag); it != arrived_.end()) {
        const bool ok = it->second;
        arrived_.erase(it);
        return ok ? Completion::kOk : Completion::kFailed;
      }
      void* got = nullptr;
      bool ok = false;
      if (cq_->AsyncNext(&got, &ok, deadline) !=
          grpc::CompletionQueue::GOT_EVENT) {
        return Completion::kNotYet;
      }
      arrived_.emplace(FromTag(got), ok);
    }
  }

  // Every tag posted on the queue must be able to come back by now.
  void ShutdownAndDrain() {
    routeguide::ShutdownAndDrain(*cq_);
    arrived_.clear();
  }

 private:
  grpc::CompletionQueue* cq_;
  std::map<Tag, bool> arrived_;
};

struct Setup {
  int write_buffer_size = 0;  // GRPC_ARG_HTTP2_WRITE_BUFFER_SIZE; 0: default.
  std::size_t name_size = 0;  // Feature names are padded to this size.
};

// A raw async server, one ListFeatures call on it driven by hand, and a
// client reading that call. Test thread only. The destructor ends the call
// (whatever state a failed case left it in), shuts the server down, then
// drains both queues, so every posted tag has come back before anything is
// freed.
class Fixture {
 public:
  explicit Fixture(Setup setup = {})
      : setup_(setup),
        server_(BuildServer(setup, &service_, &server_cq_, &port_)),
        server_queue_(server_cq_.get()),
        client_queue_(&client_cq_) {
    REQUIRE(server_ != nullptr);
    stub_ = RouteGuide::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                            grpc::InsecureChannelCredentials()));
  }

  ~Fixture() {
    if (matched_) server_context_.TryCancel();
    client_context_.TryCancel();
    server_->Shutdown(Clock::now() + kEventually);
    server_queue_.ShutdownAndDrain();
    client_queue_.ShutdownAndDrain();
  }

  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;

  // The client starts the call and the server accepts it.
  void StartCall() {
    service_.RequestListFeatures(&server_context_, &request_, &writer_,
                                 server_cq_.get(), server_cq_.get(),
                                 ToTag(Tag::kRequest));
    client_context_.set_deadline(Clock::now() + kCallDeadline);
    reader_ = stub_->AsyncListFeatures(&client_context_, Rectangle(),
                                       &client_cq_, ToTag(Tag::kClientStart));
    REQUIRE(server_queue_.WaitFor(Tag::kRequest, kEventually) ==
            Completion::kOk);
    matched_ = true;
    REQUIRE(client_queue_.WaitFor(Tag::kClientStart, kEventually) ==
            Completion::kOk);
  }

  // The feature the server sends as message `index` (from 0).
  Feature Message(int index) const {
    Feature feature;
    std::string name = "feature " + std::to_string(index);
    if (name.size() < setup_.name_size) name.resize(setup_.name_size, '.');
    feature.set_name(std::move(name));
    return feature;
  }

  std::vector<std::string> MessageNames(int count) const {
    std::vector<std::string> names;
    for (int i = 0; i < count; ++i) names.push_back(Message(i).name());
    return names;
  }

  void Write(int index, grpc::WriteOptions options) {
    writer_.Write(Message(index), options, ToTag(Tag::kWrite));
  }

  void WriteAndFinish(int index) {
    writer_.WriteAndFinish(Message(index), grpc::WriteOptions(),
                           grpc::Status::OK, ToTag(Tag::kFinish));
  }

  void Finish() { writer_.Finish(grpc::Status::OK, ToTag(Tag::kFinish)); }

  void CancelOnServer() { server_context_.TryCancel(); }

  Completion AwaitServer(Tag tag, Clock::duration timeout) {
    return server_queue_.WaitFor(tag, timeout);
  }

  // The client's next message, if it arrives within `timeout`. One Read
  // stays posted across calls, so a timeout leaves it waiting.
  ReadResult ClientRead(Clock::duration timeout) {
    if (!read_posted_) {
      reader_->Read(&incoming_, ToTag(Tag::kClientRead));
      read_posted_ = true;
    }
    const Completion read = client_queue_.WaitFor(Tag::kClientRead, timeout);
    if (read == Completion::kNotYet) return ReadResult::kNothingYet;
    read_posted_ = false;
    if (read == Completion::kFailed) return ReadResult::kEnd;
    received_.push_back(incoming_.name());
    return ReadResult::kMessage;
  }

  // The call's status; only after ClientRead has seen the end.
  grpc::Status ClientFinish() {
    grpc::Status status;
    reader_->Finish(&status, ToTag(Tag::kClientFinish));
    REQUIRE(client_queue_.WaitFor(Tag::kClientFinish, kEventually) ==
            Completion::kOk);
    return status;
  }

  const std::vector<std::string>& received() const { return received_; }

 private:
  static std::unique_ptr<grpc::Server> BuildServer(
      const Setup& setup, RouteGuide::AsyncService* service,
      std::unique_ptr<grpc::ServerCompletionQueue>* cq, int* port) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             port);
    builder.RegisterService(service);
    if (setup.write_buffer_size > 0) {
      builder.AddChannelArgument(GRPC_ARG_HTTP2_WRITE_BUFFER_SIZE,
                                 setup.write_buffer_size);
    }
    *cq = builder.AddCompletionQueue();
    return builder.BuildAndStart();
  }

  const Setup setup_;

  // Server side; the members below the server are freed before it.
  RouteGuide::AsyncService service_;
  std::unique_ptr<grpc::ServerCompletionQueue> server_cq_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  TagQueue server_queue_;
  grpc::ServerContext server_context_;
  Rectangle request_;
  grpc::ServerAsyncWriter<Feature> writer_{&server_context_};
  bool matched_ = false;

  // Client side; the reader lives in the call's arena, so it goes before
  // its context.
  grpc::CompletionQueue client_cq_;
  TagQueue client_queue_;
  std::unique_ptr<RouteGuide::Stub> stub_;
  grpc::ClientContext client_context_;
  std::unique_ptr<grpc::ClientAsyncReader<Feature>> reader_;
  Feature incoming_;
  bool read_posted_ = false;
  std::vector<std::string> received_;
};

grpc::WriteOptions Buffered() { return grpc::WriteOptions().set_buffer_hint(); }

TEST_CASE("A buffered first Write stalls: it carries the headers and starts "
          "no write",
          "[coalescing]") {
  Fixture call;
  call.StartCall();

  call.Write(0, Buffered());
  CHECK(call.AwaitServer(Tag::kWrite, kQuiet) == Completion::kNotYet);
  // Not even the headers went out.
  CHECK(call.ClientRead(kQuiet) == ReadResult::kNothingYet);

  // No later Write may be posted to flush it. Only a write of another
  // stream on the same connection would (it writes every stream marked
  // writable); alone on its connection, the call ends by cancelling, and the
  // stalled Write then comes back failed.
  call.CancelOnServer();
  CHECK(call.AwaitServer(Tag::kWrite, kEventually) == Completion::kFailed);
  CHECK(call.ClientRead(kEventually) == ReadResult::kEnd);
  CHECK(call.ClientFinish().error_code() == grpc::StatusCode::CANCELLED);
  CHECK(call.received().empty());
}

TEST_CASE("After an unbuffered first Write, buffered Writes complete at once "
          "without sending",
          "[coalescing]") {
  Fixture call;
  call.StartCall();

  call.Write(0, grpc::WriteOptions());
  REQUIRE(call.AwaitServer(Tag::kWrite, kEventually) == Completion::kOk);
  REQUIRE(call.ClientRead(kEventually) == ReadResult::kMessage);

  for (int i = 1; i <= 10; ++i) {
    INFO("buffered Write of message " << i);
    call.Write(i, Buffered());
    REQUIRE(call.AwaitServer(Tag::kWrite, kAtOnce) == Completion::kOk);
  }
  // All ten completed, yet none has reached the client.
  CHECK(call.ClientRead(kQuiet) == ReadResult::kNothingYet);

  int sent = 11;
  SECTION("Finish flushes them") { call.Finish(); }
  SECTION("WriteAndFinish flushes them with its own message") {
    call.WriteAndFinish(sent++);
  }
  SECTION("An unbuffered Write flushes them, before any Finish") {
    call.Write(sent++, grpc::WriteOptions());
    REQUIRE(call.AwaitServer(Tag::kWrite, kEventually) == Completion::kOk);
    while (static_cast<int>(call.received().size()) < sent) {
      INFO("received " << call.received().size() << " messages");
      REQUIRE(call.ClientRead(kEventually) == ReadResult::kMessage);
    }
    call.Finish();
  }
  CHECK(call.AwaitServer(Tag::kFinish, kEventually) == Completion::kOk);

  ReadResult read = ReadResult::kMessage;
  while (read == ReadResult::kMessage) read = call.ClientRead(kEventually);
  CHECK(read == ReadResult::kEnd);
  CHECK(call.received() == call.MessageNames(sent));
  CHECK(call.ClientFinish().ok());
}

TEST_CASE("Buffered Writes past the write buffer are flushed",
          "[coalescing]") {
  // Each message is 608 bytes on the stream (5-byte gRPC frame, 3-byte
  // field header, 600-byte name): one fits the 1024-byte buffer, two do not.
  Setup setup;
  setup.write_buffer_size = 1024;
  setup.name_size = 600;
  Fixture call(setup);
  call.StartCall();

  call.Write(0, grpc::WriteOptions());
  REQUIRE(call.AwaitServer(Tag::kWrite, kEventually) == Completion::kOk);
  REQUIRE(call.ClientRead(kEventually) == ReadResult::kMessage);

  // One message buffered: under the buffer size, held back as usual.
  call.Write(1, Buffered());
  REQUIRE(call.AwaitServer(Tag::kWrite, kAtOnce) == Completion::kOk);
  CHECK(call.ClientRead(kQuiet) == ReadResult::kNothingYet);

  // Two buffered: over it, so this buffered Write flushes both, then
  // completes.
  call.Write(2, Buffered());
  REQUIRE(call.AwaitServer(Tag::kWrite, kEventually) == Completion::kOk);
  CHECK(call.ClientRead(kEventually) == ReadResult::kMessage);
  CHECK(call.ClientRead(kEventually) == ReadResult::kMessage);
  CHECK(call.received() == call.MessageNames(3));

  // The buffer is empty again: the next one is held back once more.
  call.Write(3, Buffered());
  REQUIRE(call.AwaitServer(Tag::kWrite, kAtOnce) == Completion::kOk);
  CHECK(call.ClientRead(kQuiet) == ReadResult::kNothingYet);

  call.Finish();
  CHECK(call.AwaitServer(Tag::kFinish, kEventually) == Completion::kOk);
  CHECK(call.ClientRead(kEventually) == ReadResult::kMessage);
  CHECK(call.ClientRead(kEventually) == ReadResult::kEnd);
  CHECK(call.received() == call.MessageNames(4));
  CHECK(call.ClientFinish().ok());
}

TEST_CASE("The default write buffer holds 64 KiB of buffered Writes",
          "[coalescing]") {
  // Each message is 1008 bytes on the stream (5-byte gRPC frame, 3-byte
  // field header, 1000-byte name): 65 of them (65,520 bytes) fit 65,536
  // bytes, 66 (66,528 bytes) do not.
  Setup setup;
  setup.name_size = 1000;
  Fixture call(setup);
  call.StartCall();

  call.Write(0, grpc::WriteOptions());
  REQUIRE(call.AwaitServer(Tag::kWrite, kEventually) == Completion::kOk);
  REQUIRE(call.ClientRead(kEventually) == ReadResult::kMessage);

  for (int i = 1; i <= 65; ++i) {
    INFO("buffered Write of message " << i);
    call.Write(i, Buffered());
    REQUIRE(call.AwaitServer(Tag::kWrite, kAtOnce) == Completion::kOk);
  }
  CHECK(call.ClientRead(kQuiet) == ReadResult::kNothingYet);

  call.Write(66, Buffered());
  REQUIRE(call.AwaitServer(Tag::kWrite, kEventually) == Completion::kOk);
  while (call.received().size() < 67) {
    INFO("received " << call.received().size() << " messages");
    REQUIRE(call.ClientRead(kEventually) == ReadResult::kMessage);
  }
  CHECK(call.received() == call.MessageNames(67));

  call.Finish();
  CHECK(call.AwaitServer(Tag::kFinish, kEventually) == Completion::kOk);
  CHECK(call.ClientRead(kEventually) == ReadResult::kEnd);
  CHECK(call.ClientFinish().ok());
}

}  // namespace
}  // namespace routeguide
