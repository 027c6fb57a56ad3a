// Server reflection (grpc.reflection.v1alpha): the answers themselves
// (ReflectionAnswers), then the call that carries them, over real
// channels to the server in-process. Who may call it (token, --reflection)
// is in server_stream_limits_test.cc.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "catch2/catch.hpp"
#include "google/protobuf/api.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "reflection.grpc.pb.h"
#include "reflection_answers.h"
#include "test_server.h"
#include "test_util.h"

namespace routeguide {
namespace {

using google::protobuf::DescriptorPool;
using google::protobuf::FileDescriptorProto;
using grpc::reflection::v1alpha::ServerReflection;
using grpc::reflection::v1alpha::ServerReflectionRequest;
using grpc::reflection::v1alpha::ServerReflectionResponse;

const std::vector<std::string> kServices = {"routeguide.RouteGuide",
                                            "grpc.health.v1.Health"};

ServerReflectionRequest SymbolRequest(const std::string& symbol) {
  ServerReflectionRequest request;
  request.set_file_containing_symbol(symbol);
  return request;
}

ServerReflectionRequest FileRequest(const std::string& name) {
  ServerReflectionRequest request;
  request.set_file_by_filename(name);
  return request;
}

// The names of the files of a file_descriptor_response, in order.
std::vector<std::string> FileNames(const ServerReflectionResponse& response) {
  std::vector<std::string> names;
  for (const std::string& bytes :
       response.file_descriptor_response().file_descriptor_proto()) {
    FileDescriptorProto file;
    REQUIRE(file.ParseFromString(bytes));
    names.push_back(file.name());
  }
  return names;
}

// What a reflection client does with the files: builds its own pool of
// them, each after the files it imports. Fails the test when a file is
// missing or broken.
void AddToPool(const ServerReflectionResponse& response, DescriptorPool& pool) {
  std::vector<FileDescriptorProto> waiting;
  for (const std::string& bytes :
       response.file_descriptor_response().file_descriptor_proto()) {
    REQUIRE(waiting.emplace_back().ParseFromString(bytes));
  }
  while (!waiting.empty()) {
    const auto ready = std::find_if(waiting.begin(), waiting.end(), [&](const auto& file) {
      return std::all_of(file.dependency().begin(), file.dependency().end(),
                         [&](const std::string& name) {
                           return pool.FindFileByName(name) != nullptr;
                         });
    });
    INFO("every file left imports one that is neither built nor sent");
    REQUIRE(ready != waiting.end());
    INFO(ready->name());
    REQUIRE(pool.BuildFile(*ready) != nullptr);
    waiting.erase(ready);
  }
}

void CheckError(const ServerReflectionResponse& response, grpc::StatusCode code,
                const std::string& mentions) {
  REQUIRE(response.has_error_response());
  CHECK(response.error_response().error_code() == static_cast<int>(code));
  CHECK_THAT(response.error_response().error_message(), Catch::Contains(mentions));
}

TEST_CASE("Reflection answers describe RouteGuide well enough to call it",
          "[reflection]") {
  ReflectionAnswers answers(kServices);

  SECTION("list_services names the services given") {
    ServerReflectionRequest request;
    request.set_list_services("*");
    request.set_host("example:50051");
    const ServerReflectionResponse response = answers.Answer(request);
    std::vector<std::string> names;
    for (const auto& service : response.list_services_response().service()) {
      names.push_back(service.name());
    }
    CHECK(names == kServices);
    CHECK(response.valid_host() == "example:50051");
    CHECK(response.original_request().list_services() == "*");
  }
  SECTION("the file of a service, method or message builds a pool with the "
          "four methods and their streaming") {
    const std::string symbol = GENERATE(
        "routeguide.RouteGuide", "routeguide.RouteGuide.RouteChat",
        "routeguide.Rectangle", "routeguide.Feature.location");
    CAPTURE(symbol);
    const ServerReflectionResponse response = answers.Answer(SymbolRequest(symbol));
    REQUIRE(FileNames(response) == std::vector<std::string>{"route_guide.proto"});
    CHECK(response.original_request().file_containing_symbol() == symbol);
    DescriptorPool pool;
    AddToPool(response, pool);
    const auto* service = pool.FindServiceByName("routeguide.RouteGuide");
    REQUIRE(service != nullptr);
    REQUIRE(service->method_count() == 4);
    struct Expected {
      const char* name;
      const char* input;
      const char* output;
      bool client_streaming;
      bool server_streaming;
    };
    const Expected expected[] = {
        {"GetFeature", "routeguide.Point", "routeguide.Feature", false, false},
        {"ListFeatures", "routeguide.Rectangle", "routeguide.Feature", false, true},
        {"RecordRoute", "routeguide.Point", "routeguide.RouteSummary", true, false},
        {"RouteChat", "routeguide.RouteNote", "routeguide.RouteNote", true, true}};
    for (const Expected& method : expected) {
      const auto* found = service->FindMethodByName(method.name);
      REQUIRE(found != nullptr);
      CHECK(found->input_type()->full_name() == method.input);
      CHECK(found->output_type()->full_name() == method.output);
      CHECK(found->client_streaming() == method.client_streaming);
      CHECK(found->server_streaming() == method.server_streaming);
    }
    // Field numbers are the wire: the tutorial's.
    const auto* point = pool.FindMessageTypeByName("routeguide.Point");
    REQUIRE(point != nullptr);
    CHECK(point->FindFieldByName("latitude")->number() == 1);
    CHECK(point->FindFieldByName("longitude")->number() == 2);
  }
  SECTION("the health service, by its file's name") {
    const ServerReflectionResponse response = answers.Answer(FileRequest("health.proto"));
    DescriptorPool pool;
    AddToPool(response, pool);
    const auto* health = pool.FindServiceByName("grpc.health.v1.Health");
    REQUIRE(health != nullptr);
    CHECK(health->FindMethodByName("Check") != nullptr);
  }
  SECTION("a file comes with its imports, each sent once per stream; the file "
          "asked for is sent every time") {
    // Linked into this test: api.proto imports source_context.proto and
    // type.proto, which imports any.proto and source_context.proto.
    google::protobuf::Api linked;
    (void)linked;
    const ServerReflectionResponse api =
        answers.Answer(FileRequest("google/protobuf/api.proto"));
    const std::vector<std::string> all = FileNames(api);
    REQUIRE(all.size() == 4);
    CHECK(all[0] == "google/protobuf/api.proto");
    CHECK_THAT(all, Catch::UnorderedEquals(std::vector<std::string>{
                        "google/protobuf/api.proto",
                        "google/protobuf/source_context.proto",
                        "google/protobuf/type.proto", "google/protobuf/any.proto"}));
    DescriptorPool pool;
    AddToPool(api, pool);
    CHECK(pool.FindMessageTypeByName("google.protobuf.Api") != nullptr);

    CHECK(FileNames(answers.Answer(FileRequest("google/protobuf/type.proto"))) ==
          std::vector<std::string>{"google/protobuf/type.proto"});
    CHECK(FileNames(answers.Answer(FileRequest("google/protobuf/api.proto"))) ==
          std::vector<std::string>{"google/protobuf/api.proto"});
    // Another stream starts afresh.
    ReflectionAnswers fresh(kServices);
    CHECK(FileNames(fresh.Answer(FileRequest("google/protobuf/type.proto"))).size() == 3);
  }
  SECTION("extensions: the numbers of a type, and an unknown one") {
    ServerReflectionRequest request;
    request.set_all_extension_numbers_of_type("routeguide.Point");
    const ServerReflectionResponse numbers = answers.Answer(request);
    REQUIRE(numbers.has_all_extension_numbers_response());
    CHECK(numbers.all_extension_numbers_response().base_type_name() ==
          "routeguide.Point");
    CHECK(numbers.all_extension_numbers_response().extension_number().empty());

    ServerReflectionRequest extension;
    extension.mutable_file_containing_extension()->set_containing_type(
        "google.protobuf.FieldOptions");
    extension.mutable_file_containing_extension()->set_extension_number(77777);
    CheckError(answers.Answer(extension), grpc::StatusCode::NOT_FOUND, "77777");
  }
  SECTION("what does not exist is NOT_FOUND, naming it") {
    CheckError(answers.Answer(SymbolRequest("routeguide.Nowhere")),
               grpc::StatusCode::NOT_FOUND, "routeguide.Nowhere");
    CheckError(answers.Answer(FileRequest("nowhere.proto")),
               grpc::StatusCode::NOT_FOUND, "nowhere.proto");
    ServerReflectionRequest request;
    request.set_all_extension_numbers_of_type("routeguide.Nothing");
    CheckError(answers.Answer(request), grpc::StatusCode::NOT_FOUND,
               "routeguide.Nothing");
  }
  SECTION("a request that asks for nothing is UNIMPLEMENTED") {
    ServerReflectionRequest empty;
    empty.set_host("h");
    CheckError(answers.Answer(empty), grpc::StatusCode::UNIMPLEMENTED, "nothing");
  }
}

TEST_CASE("A reflection stream answers every request in order until the "
          "client half-closes, errors included",
          "[reflection][server]") {
  TestServer test;
  auto stub = ServerReflection::NewStub(test.channel);
  grpc::ClientContext context;
  SetDeadline(context);
  auto stream = stub->ServerReflectionInfo(&context);
  ServerReflectionRequest list;
  list.set_list_services("");
  const std::vector<ServerReflectionRequest> requests = {
      list, SymbolRequest("routeguide.RouteGuide"),
      SymbolRequest("routeguide.Missing"), FileRequest("route_guide.proto"),
      SymbolRequest("grpc.health.v1.Health.Check")};
  // Pipelined: all sent before any answer is read.
  for (const auto& request : requests) REQUIRE(stream->Write(request));
  REQUIRE(stream->WritesDone());
  std::vector<ServerReflectionResponse> responses;
  ServerReflectionResponse response;
  while (stream->Read(&response)) responses.push_back(response);
  const grpc::Status status = stream->Finish();
  INFO(status.error_message());
  REQUIRE(status.ok());
  REQUIRE(responses.size() == requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    CHECK(responses[i].original_request().SerializeAsString() ==
          requests[i].SerializeAsString());
  }
  std::vector<std::string> names;
  for (const auto& service : responses[0].list_services_response().service()) {
    names.push_back(service.name());
  }
  CHECK_THAT(names, Catch::UnorderedEquals(std::vector<std::string>{
                        "routeguide.RouteGuide", "grpc.health.v1.Health",
                        "grpc.reflection.v1alpha.ServerReflection"}));
  CHECK(FileNames(responses[1]) == std::vector<std::string>{"route_guide.proto"});
  CheckError(responses[2], grpc::StatusCode::NOT_FOUND, "routeguide.Missing");
  CHECK(FileNames(responses[3]) == std::vector<std::string>{"route_guide.proto"});
  CHECK(FileNames(responses[4]) == std::vector<std::string>{"health.proto"});
  CHECK(NoCallsInFlight(test));
}

TEST_CASE("A reflection stream ends with a clear status when its client "
          "misbehaves or the server stops",
          "[reflection][server]") {
  ServerOptions options = TestServer::DefaultOptions();
  options.stream_idle_timeout = absl::Seconds(1);
  TestServer test(options);

  SECTION("bytes that are no ServerReflectionRequest: INVALID_ARGUMENT") {
    grpc::GenericStub generic(test.channel);
    grpc::ClientContext context;
    SetDeadline(context);
    grpc::CompletionQueue cq;
    auto call = generic.PrepareCall(
        &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        &cq);
    auto await = [&cq](intptr_t expected) {
      void* tag = nullptr;
      bool ok = false;
      REQUIRE(cq.Next(&tag, &ok));
      REQUIRE(reinterpret_cast<intptr_t>(tag) == expected);
      return ok;
    };
    call->StartCall(reinterpret_cast<void*>(1));
    REQUIRE(await(1));
    // Field 3 (a string) claims 100 bytes and has 2.
    grpc::Slice corrupt(std::string("\x1a\x64" "ab", 4));
    call->Write(grpc::ByteBuffer(&corrupt, 1), reinterpret_cast<void*>(2));
    await(2);
    grpc::Status status;
    call->Finish(&status, reinterpret_cast<void*>(3));
    await(3);
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(status.error_message(), Catch::Contains("not a grpc.reflection"));
    ShutdownAndDrain(cq);
  }
  SECTION("a client that sends nothing for the idle timeout: DEADLINE_EXCEEDED") {
    auto stub = ServerReflection::NewStub(test.channel);
    grpc::ClientContext context;
    SetDeadline(context);
    const absl::Time started = absl::Now();
    auto stream = stub->ServerReflectionInfo(&context);
    ServerReflectionResponse response;
    CHECK_FALSE(stream->Read(&response));
    CHECK(absl::Now() - started >= absl::Seconds(1));
    const grpc::Status status = stream->Finish();
    CHECK(status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
    CHECK_THAT(status.error_message(), Catch::Contains("no request"));
  }
  CHECK(NoCallsInFlight(test));
}

TEST_CASE("Shutdown ends an open reflection stream with UNAVAILABLE",
          "[reflection][server][shutdown]") {
  ServerOptions options = TestServer::DefaultOptions();
  // Streams still open are ended a quarter of the grace period before it
  // ends.
  options.grace = absl::Seconds(1);
  TestServer test(options);
  auto stub = ServerReflection::NewStub(test.channel);
  grpc::ClientContext context;
  SetDeadline(context);
  auto stream = stub->ServerReflectionInfo(&context);
  ServerReflectionRequest list;
  list.set_list_services("");
  REQUIRE(stream->Write(list));
  ServerReflectionResponse response;
  REQUIRE(stream->Read(&response));
  test.server->Shutdown();
  CHECK_FALSE(stream->Read(&response));
  const grpc::Status status = stream->Finish();
  CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK_THAT(status.error_message(), Catch::Contains("shutting down"));
}

// A reflection client that writes requests and reads no answer, until the
// server stops reading it: its answers fill the connection's flow-control
// window (kept small) and the server's Write stalls, and with it every
// further Read. Tags: 1 start, 2 Write, 3 Read, 4 WritesDone, 5 Finish.
class StalledReflectionClient {
 public:
  explicit StalledReflectionClient(const TestServer& test)
      : stub_(ServerReflection::NewStub(SmallWindowChannel(test.server->port()))) {
    SetDeadline(context_);
    stream_ = stub_->AsyncServerReflectionInfo(&context_, &cq_, Tag(1));
    REQUIRE(Next(absl::Seconds(10)) == Tag(1));
    REQUIRE(ok_);
    // 3 KB requests, under --max_reflection_request_size; each answer
    // echoes its request.
    request_ = SymbolRequest("routeguide.RouteGuide");
    request_.set_host(std::string(3000, 'h'));
  }

  ~StalledReflectionClient() {
    context_.TryCancel();
    ShutdownAndDrain(cq_);
  }

  static void* Tag(intptr_t n) { return reinterpret_cast<void*>(n); }

  // The next completion's tag, or null when none comes within `timeout`.
  void* Next(absl::Duration timeout) {
    void* tag = nullptr;
    if (cq_.AsyncNext(&tag, &ok_, absl::ToChronoTime(absl::Now() + timeout)) !=
        grpc::CompletionQueue::GOT_EVENT) {
      return nullptr;
    }
    return tag;
  }

  // Writes one request at a time until one stays pending for a second: the
  // server has stopped reading. Were it reading on, answering into a
  // growing queue, all of them (60 MB) would go through. Returns whether
  // it stalled; `written()` says how many went through.
  bool WriteUntilStalled() {
    constexpr int kMaxWrites = 20000;
    while (written_ < kMaxWrites) {
      stream_->Write(request_, Tag(2));
      void* tag = Next(absl::Seconds(1));
      if (tag == nullptr) return true;
      REQUIRE(tag == Tag(2));
      REQUIRE(ok_);
      ++written_;
      last_write_done_ = absl::Now();
    }
    return false;
  }

  // After WriteUntilStalled: half-closes once the pending Write is done
  // and reads every answer; returns how many there were.
  int ReadAll() {
    int answers = 0;
    bool write_done = false;
    bool read_pending = false;
    while (true) {
      if (!read_pending) {
        stream_->Read(&response_, Tag(3));
        read_pending = true;
      }
      void* tag = Next(absl::Seconds(10));
      REQUIRE(tag != nullptr);
      if (tag == Tag(2)) {
        REQUIRE(ok_);
        write_done = true;
        stream_->WritesDone(Tag(4));
      } else if (tag == Tag(4)) {
        REQUIRE(ok_);
      } else {
        REQUIRE(tag == Tag(3));
        read_pending = false;
        if (!ok_) break;
        REQUIRE(response_.has_file_descriptor_response());
        ++answers;
      }
    }
    CHECK(write_done);
    return answers;
  }

  // The call's status, skipping completions of operations still pending.
  grpc::Status Finish() {
    grpc::Status status;
    stream_->Finish(&status, Tag(5));
    void* tag = nullptr;
    do {
      tag = Next(absl::Seconds(10));
      REQUIRE(tag != nullptr);
    } while (tag != Tag(5));
    return status;
  }

  grpc::ClientContext& context() { return context_; }
  int written() const { return written_; }
  // When the last Write that went through completed: the server read no
  // request before it that it had not read by then.
  absl::Time last_write_done() const { return last_write_done_; }

 private:
  std::unique_ptr<ServerReflection::Stub> stub_;
  grpc::ClientContext context_;
  grpc::CompletionQueue cq_;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<ServerReflectionRequest,
                                                ServerReflectionResponse>>
      stream_;
  ServerReflectionRequest request_;
  ServerReflectionResponse response_;
  bool ok_ = false;
  int written_ = 0;
  absl::Time last_write_done_ = absl::InfinitePast();
};

TEST_CASE("A reflection client that never reads its answers stops being "
          "read, and loses nothing once it reads",
          "[reflection][server][backpressure]") {
  TestServer test;
  StalledReflectionClient client(test);
  REQUIRE(client.WriteUntilStalled());
  INFO(client.written() << " requests written");
  // One answer per request, the pending Write's too.
  CHECK(client.ReadAll() == client.written() + 1);
  CHECK(client.Finish().ok());
  CHECK(NoCallsInFlight(test));
}

// Whether the server has no call in flight within `timeout`: shorter than
// the client's deadline, which would end a stuck call too.
bool CallsEndWithin(const TestServer& test, absl::Duration timeout) {
  return WaitFor([&] { return test.server->calls().active() == 0; }, timeout);
}

// How many reflection calls the server ended with `code`. (What the
// stalled client itself is told waits, in gRPC's client, behind the
// answers it has not read.)
uint64_t ReflectionCallsEnded(const TestServer& test, grpc::StatusCode code) {
  return test.server->calls()
      .stats()
      .of(Method::kServerReflectionInfo)
      .finished[static_cast<int>(code)]
      .load();
}

TEST_CASE("A reflection call whose answer is stalled still ends, and is "
          "freed",
          "[reflection][server][backpressure]") {
  ServerOptions options = TestServer::DefaultOptions();
  std::unique_ptr<TestServer> test;
  std::unique_ptr<StalledReflectionClient> client;
  // A server with `options`, and a client it has stopped reading.
  auto stall = [&] {
    test = std::make_unique<TestServer>(options);
    client = std::make_unique<StalledReflectionClient>(*test);
    REQUIRE(client->WriteUntilStalled());
  };
  SECTION("by the idle timeout: the stalled Write is cancelled") {
    // Longer than WriteUntilStalled takes to see the stall.
    options.stream_idle_timeout = absl::Seconds(3);
    stall();
    // Well before the client's own deadline (20 s): the timeout, plus up
    // to an eighth of it for the sweep, plus slack for a slow machine.
    REQUIRE(CallsEndWithin(*test, absl::Seconds(7)));
    // Not before the timeout. The server read its last request a moment
    // before the client's last Write went through (those it buffered
    // after that are milliseconds).
    CHECK(absl::Now() - client->last_write_done() >= absl::Milliseconds(2900));
  }
  SECTION("by the client's cancellation") {
    stall();
    client->context().TryCancel();
    CHECK(CallsEndWithin(*test, absl::Seconds(3)));
  }
  SECTION("by shutdown, within the grace period") {
    options.grace = absl::Seconds(1);
    stall();
    const absl::Time started = absl::Now();
    test->server->Shutdown();  // Aborts the process if a call is not freed.
    CHECK(absl::Now() - started < absl::Seconds(5));
    CHECK(test->server->calls().active() == 0);
  }
  // Each way, the Write was cancelled (the client was not reading it), and
  // the call is counted so.
  CHECK(ReflectionCallsEnded(*test, grpc::StatusCode::CANCELLED) == 1);
  CHECK(ReflectionCallsEnded(*test, grpc::StatusCode::OK) == 0);
  client.reset();  // Before the server it talks to.
}

TEST_CASE("A reflection request over --max_reflection_request_size ends the "
          "call with INVALID_ARGUMENT",
          "[reflection][server]") {
  ServerOptions options = TestServer::DefaultOptions();
  options.max_reflection_request_bytes = 1024;
  TestServer test(options);
  auto stub = ServerReflection::NewStub(test.channel);
  grpc::ClientContext context;
  SetDeadline(context);
  auto stream = stub->ServerReflectionInfo(&context);
  ServerReflectionRequest small = SymbolRequest("routeguide.RouteGuide");
  small.set_host(std::string(900, 'h'));
  ServerReflectionRequest big = small;
  big.set_host(std::string(1100, 'h'));
  REQUIRE(stream->Write(small));
  ServerReflectionResponse response;
  REQUIRE(stream->Read(&response));  // Under the bound: answered.
  CHECK(response.valid_host().size() == 900);
  stream->Write(big);
  CHECK_FALSE(stream->Read(&response));
  const grpc::Status status = stream->Finish();
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(status.error_message(), Catch::Contains("limit of 1024"));
  CHECK(NoCallsInFlight(test));
}

}  // namespace
}  // namespace routeguide
