// The HTTP/2 guard in front of the real server on loopback: every kind of
// call goes through it; a HEADERS+RST_STREAM flood (HTTP/2 rapid reset,
// CVE-2023-44487) and a client that never acknowledges SETTINGS are cut
// off, with a GOAWAY, while honest clients, cancelling calls or not, are
// served on.
// (SETTINGS timeouts, cancelling clients, the guard off and shutdown:
// http2_guard_limits_test.cc.)

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "http2_guard.h"
#include "raw_http2.h"
#include "route_guide.grpc.pb.h"
#include "route_guide_server.h"
#include "test_server.h"
#include "test_util.h"


namespace routeguide {
namespace {

// A guard relaying one connection whose "client" is a socket pair too (the
// guard relays any stream socket) and which never acknowledges SETTINGS:
// the tests that use it are not about that, so it may take an hour.
struct GuardedConnection {
  std::unique_ptr<Http2Guard> guard;
  int client = -1;    // The client's end.
  int grpc_end = -1;  // What gRPC would have been given.
};

GuardedConnection RelayThroughGuard(Http2GuardOptions options = {}) {
  options.settings_timeout = absl::Hours(1);
  auto guard = Http2Guard::Start(options);
  REQUIRE(guard.ok());
  int client[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, client) == 0);
  auto adopted = (*guard)->Adopt(client[1], "test");
  REQUIRE(adopted.ok());
  return GuardedConnection{*std::move(guard), client[0], *adopted};
}

TEST_CASE("Each direction holds a bounded amount for a reader that does not "
          "read, then delivers every byte in order",
          "[guard]") {
  GuardedConnection relayed = RelayThroughGuard();
  Http2Guard* const guard = relayed.guard.get();
  const int client = relayed.client;
  const int grpc_end = relayed.grpc_end;
  constexpr uint64_t kTotal = 16 << 20;
  // Without backpressure the writer would get all 16 MiB in; with it, no
  // more than the three sockets' buffers and the guard's 64 KiB.
  constexpr uint64_t kBound = 8 << 20;

  SECTION("server to client") {
    uint64_t written = 0, read = 0;
    const uint64_t first = WriteUntilFull(grpc_end, &written, kTotal, absl::Milliseconds(300));
    INFO("written before the reader read: " << first);
    CHECK(first < kBound);
    // The guard's own share of what waits: its 64 KiB for the client.
    CHECK(WaitFor([&] { return guard->stats().held_bytes > 0; }, absl::Seconds(5)));
    CHECK(guard->stats().held_bytes <= 64 << 10);
    while (read < kTotal) {
      WriteUntilFull(grpc_end, &written, kTotal - written, absl::Milliseconds(1));
      REQUIRE(ReadPattern(client, &read, std::min<uint64_t>(written - read, 1 << 20),
                          absl::Seconds(5)));
    }
    CHECK(read == kTotal);
  }
  SECTION("client to server, after the preface") {
    REQUIRE(send(client, kPreface, sizeof(kPreface) - 1, MSG_NOSIGNAL) == 24);
    std::string preface;
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (preface.size() < 24 && absl::Now() < deadline) {
      char bytes[24];
      const ssize_t got = recv(grpc_end, bytes, 24 - preface.size(), MSG_DONTWAIT);
      if (got > 0) {
        preface.append(bytes, static_cast<size_t>(got));
      } else {
        absl::SleepFor(absl::Milliseconds(1));
      }
    }
    REQUIRE(preface == absl::string_view(kPreface, 24));
    uint64_t written = 0, read = 0;
    const uint64_t first = WriteUntilFull(client, &written, kTotal, absl::Milliseconds(300));
    INFO("written before the reader read: " << first);
    CHECK(first < kBound);
    while (read < kTotal) {
      WriteUntilFull(client, &written, kTotal - written, absl::Milliseconds(1));
      REQUIRE(ReadPattern(grpc_end, &read, std::min<uint64_t>(written - read, 1 << 20),
                          absl::Seconds(5)));
    }
    CHECK(read == kTotal);
  }
  CHECK(guard->stats().active == 1);
  // Everything delivered: the guard holds nothing.
  CHECK(WaitFor([&] { return guard->stats().held_bytes == 0; }, absl::Seconds(5)));
  close(client);
  close(grpc_end);
  guard->Stop();
}

// Holds the calling thread, and the threads it starts, to one CPU until
// destroyed, when the calling thread gets its CPUs back.
class OneCpu {
 public:
  OneCpu() {
    REQUIRE(sched_getaffinity(0, sizeof(saved_), &saved_) == 0);
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &saved_)) {
        CPU_SET(cpu, &one);
        break;
      }
    }
    REQUIRE(sched_setaffinity(0, sizeof(one), &one) == 0);
  }
  ~OneCpu() { sched_setaffinity(0, sizeof(saved_), &saved_); }

 private:
  cpu_set_t saved_;
};

TEST_CASE("The guard has sent gRPC's bytes on to the client by the time "
          "gRPC's end is told it has room again",
          "[guard]") {
  // Taking bytes from a socketpair tells the writer's end it has room, and
  // gRPC's poller waits for that (edge-triggered) as this test does. On
  // one CPU the woken poller, nicer than the guard, runs at once: had the
  // guard taken the bytes before sending them, the answer would wait for
  // it. Here the test's thread stands in for the poller.
  OneCpu one_cpu;  // Before the guard starts: its thread inherits it.
  GuardedConnection relayed = RelayThroughGuard();
  const int client = relayed.client;
  const int grpc_end = relayed.grpc_end;
  const int poller = epoll_create1(EPOLL_CLOEXEC);
  REQUIRE(poller >= 0);
  epoll_event watch{};
  watch.events = EPOLLOUT | EPOLLET;
  REQUIRE(epoll_ctl(poller, EPOLL_CTL_ADD, grpc_end, &watch) == 0);
  epoll_event event;
  REQUIRE(epoll_wait(poller, &event, 1, 0) == 1);  // Adding reports room once.

  constexpr int kAnswers = 400;
  constexpr uint64_t kAnswerBytes = 100;
  uint64_t written = 0, read = 0;
  int at_client_in_time = 0;
  for (int i = 0; i < kAnswers; ++i) {
    // One send each: one take by the guard, one report of room.
    REQUIRE(WriteUntilFull(grpc_end, &written, kAnswerBytes, absl::Seconds(5)) ==
            kAnswerBytes);
    REQUIRE(epoll_wait(poller, &event, 1, 5000) == 1);
    char got[kAnswerBytes];
    if (recv(client, got, sizeof(got), MSG_PEEK | MSG_DONTWAIT) ==
        static_cast<ssize_t>(kAnswerBytes)) {
      ++at_client_in_time;
    }
    // In time or late, every byte once and in order before the next answer.
    REQUIRE(ReadPattern(client, &read, kAnswerBytes, absl::Seconds(5)));
  }
  CHECK(at_client_in_time == kAnswers);
  // Nothing more than was sent.
  char extra;
  errno = 0;
  CHECK(recv(client, &extra, 1, MSG_DONTWAIT) == -1);
  CHECK(errno == EAGAIN);
  close(poller);
  close(client);
  close(grpc_end);
  relayed.guard->Stop();
}

// What /proc tells of one of this process's threads.
struct ThreadStat {
  char state = '?';  // R running or runnable, S asleep, ...
  int nice = 0;
};

// The stat of this process's thread named `name`, if there is one.
std::optional<ThreadStat> StatOfThread(absl::string_view name) {
  std::error_code error;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", error)) {
    std::ifstream comm(task.path() / "comm");
    std::string thread_name;
    std::getline(comm, thread_name);
    if (thread_name != name) continue;
    std::ifstream stat_file(task.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)),
                     std::istreambuf_iterator<char>());
    // After "(comm)": state is field 3, nice field 19.
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string field;
    ThreadStat result;
    for (int i = 3; i <= 19 && fields >> field; ++i) {
      if (i == 3) result.state = field[0];
      if (i == 19) {
        result.nice = std::stoi(field);
        return result;
      }
    }
  }
  return std::nullopt;
}

std::optional<int> NiceOfThread(absl::string_view name) {
  if (auto stat = StatOfThread(name)) return stat->nice;
  return std::nullopt;
}

TEST_CASE("The guard's thread runs nicer than the thread that starts it "
          "by its nice value, so gRPC's pollers go first", "[guard]") {
  Http2GuardOptions options;
  int starter_nice = 0;  // This process runs at 0 (a test runner's own).
  int expected = 10;
  SECTION("the default") {}
  SECTION("another") {
    options.thread_nice = 3;
    expected = 3;
  }
  SECTION("started by a thread that is niced already: the gap stays") {
    starter_nice = 4;
    expected = 14;
  }
  SECTION("capped at 19") {
    starter_nice = 15;
    expected = 19;
  }
  // A thread's nice value is its own and new threads inherit it, so a
  // helper thread niced to `starter_nice` starts the guard.
  absl::StatusOr<std::unique_ptr<Http2Guard>> guard;
  std::thread starter([&] {
    if (starter_nice > 0) {
      setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), starter_nice);
    }
    guard = Http2Guard::Start(options);
  });
  starter.join();
  REQUIRE(guard.ok());
  // The thread names itself and sets its nice value once it runs.
  std::optional<int> nice;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while ((nice = NiceOfThread("http2-guard")) != expected && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  REQUIRE(nice.has_value());
  CHECK(*nice == expected);

  options.thread_nice = 20;
  CHECK_FALSE(Http2Guard::Start(options).ok());
}

char GuardThreadState() {
  const std::optional<ThreadStat> stat = StatOfThread("http2-guard");
  return stat ? stat->state : '?';
}

// Waits (up to 10 s) for the guard's thread to sleep; true if it does.
bool GuardFallsAsleep() {
  return WaitFor([] { return GuardThreadState() == 'S'; }, absl::Seconds(10),
                 absl::Milliseconds(5));
}

// Sends one byte through `relayed` and waits (up to 10 s) until it is out
// at gRPC's end, so the guard has handled it.
void RelayOneByte(const GuardedConnection& relayed) {
  REQUIRE(send(relayed.client, "x", 1, MSG_NOSIGNAL) == 1);
  char byte = 0;
  REQUIRE(WaitFor(
      [&] { return recv(relayed.grpc_end, &byte, 1, MSG_DONTWAIT) == 1; },
      absl::Seconds(10), absl::Microseconds(100)));
  REQUIRE(byte == 'x');
}

// Once its events have stopped, the guard's thread falls asleep and stays
// so: no spin outlasts what it was for.
void CheckStaysAsleep() {
  REQUIRE(GuardFallsAsleep());
  int awake = 0;
  for (int i = 0; i < 50; ++i) {
    if (GuardThreadState() != 'S') ++awake;
    absl::SleepFor(absl::Milliseconds(2));
  }
  CHECK(awake == 0);
}

TEST_CASE("The guard polls before it sleeps only while its events come "
          "closer together than its spin",
          "[guard]") {
  CHECK(ServerOptions().http2_guard_spin == Http2GuardOptions().spin);
  CHECK(Http2GuardOptions().spin == kDefaultGuardSpin);
  CHECK(kDefaultGuardSpin == absl::Microseconds(100));  // As documented.
  // Wide enough that a slow (sanitized) build's gaps between bytes relayed
  // back to back fit in it.
  constexpr absl::Duration kSpin = absl::Milliseconds(20);
  constexpr int kBytes = 200;

  SECTION("bytes back to back: the spin catches most of them") {
    Http2GuardOptions options;
    options.spin = kSpin;
    GuardedConnection relayed = RelayThroughGuard(options);
    for (int i = 0; i < kBytes; ++i) RelayOneByte(relayed);
    const Http2GuardStats stats = relayed.guard->stats();
    CHECK(stats.spin_hits >= kBytes / 2);
    CHECK(stats.spin_polls > 0);
    CheckStaysAsleep();
    // The window was open after the last byte, and ran out.
    CHECK(relayed.guard->stats().spin_wasted_us > 0);
    close(relayed.client);
    close(relayed.grpc_end);
    relayed.guard->Stop();
  }
  SECTION("bytes spread wider than the spin: it polls for next to nothing") {
    Http2GuardOptions options;
    options.spin = kSpin;
    GuardedConnection relayed = RelayThroughGuard(options);
    // The connection's adoption and the first byte come close together,
    // which opens the window; the next byte, a long wait later, closes it.
    RelayOneByte(relayed);
    absl::SleepFor(kSpin + absl::Milliseconds(30));
    RelayOneByte(relayed);
    REQUIRE(GuardFallsAsleep());
    const Http2GuardStats before = relayed.guard->stats();
    constexpr int kSpread = 10;
    for (int i = 0; i < kSpread; ++i) {
      RelayOneByte(relayed);
      absl::SleepFor(kSpin + absl::Milliseconds(30));
    }
    REQUIRE(GuardFallsAsleep());
    const Http2GuardStats stats = relayed.guard->stats();
    // A spin of kSpin after each byte would be 200 ms in all; what the
    // window allows is a short one now and then, as events close together
    // (a byte, and the room it leaves) reopen it.
    const int64_t wasted_us = stats.spin_wasted_us - before.spin_wasted_us;
    CAPTURE(wasted_us, stats.spin_polls - before.spin_polls);
    CHECK(wasted_us < kSpread * 100);
    CHECK(stats.spin_hits - before.spin_hits <= 2);
    close(relayed.client);
    close(relayed.grpc_end);
    relayed.guard->Stop();
  }
  SECTION("a spin of zero: it never polls, back to back or not") {
    Http2GuardOptions options;
    options.spin = absl::ZeroDuration();
    GuardedConnection relayed = RelayThroughGuard(options);
    for (int i = 0; i < kBytes; ++i) RelayOneByte(relayed);
    const Http2GuardStats stats = relayed.guard->stats();
    CHECK(stats.spin_hits == 0);
    CHECK(stats.spin_polls == 0);
    close(relayed.client);
    close(relayed.grpc_end);
    relayed.guard->Stop();
  }
  SECTION("out of range") {
    Http2GuardOptions options;
    options.spin = absl::Milliseconds(-1);
    CHECK_FALSE(Http2Guard::Start(options).ok());
    options.spin = kMaxGuardSpin + absl::Milliseconds(1);
    CHECK_FALSE(Http2Guard::Start(options).ok());
  }
  SECTION("the server's guard, by --http2_guard_spin: calls one at a time") {
    for (const absl::Duration spin : {kSpin, absl::ZeroDuration()}) {
      CAPTURE(spin);
      ServerOptions options;
      options.http2_guard_spin = spin;
      auto server = StartTestServer(options);
      auto stub = RouteGuide::NewStub(OwnChannel(server->port()));
      for (int i = 0; i < 100; ++i) REQUIRE(GetKnownFeature(*stub));
      const Http2GuardStats stats = server->guard_stats();
      if (spin > absl::ZeroDuration()) {
        CHECK(stats.spin_hits > 0);
      } else {
        CHECK(stats.spin_hits == 0);
        CHECK(stats.spin_polls == 0);
      }
      stub.reset();
      REQUIRE(WaitFor([&] { return server->guard_stats().active == 0; },
                      absl::Seconds(10), absl::Milliseconds(5)));
      CheckStaysAsleep();
    }
  }
  SECTION("the server's guard, calls one at a time beside more streams "
          "than it spins for: no polls until they end") {
    CHECK(Http2GuardOptions().spin_max_open_streams == kDefaultSpinMaxOpenStreams);
    CHECK(kDefaultSpinMaxOpenStreams == 4);  // As documented.
    ServerOptions options;
    options.http2_guard_spin = kSpin;
    auto server = StartTestServer(options);
    auto stub = RouteGuide::NewStub(OwnChannel(server->port()));
    // RouteChat streams left open, on the same connection: one more than
    // the limit, so that even between calls too many are under way.
    constexpr int kOpen = static_cast<int>(kDefaultSpinMaxOpenStreams) + 1;
    std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
    std::vector<std::unique_ptr<grpc::ClientReaderWriter<RouteNote, RouteNote>>> chats;
    for (int i = 0; i < kOpen; ++i) {
      contexts.push_back(std::make_unique<grpc::ClientContext>());
      chats.push_back(stub->RouteChat(contexts.back().get()));
    }
    REQUIRE(WaitFor([&] { return server->guard_stats().open_streams == kOpen; },
                    absl::Seconds(10), absl::Milliseconds(5)));
    const Http2GuardStats before = server->guard_stats();
    for (int i = 0; i < 100; ++i) REQUIRE(GetKnownFeature(*stub));
    const Http2GuardStats beside = server->guard_stats();
    CHECK(beside.spin_hits == before.spin_hits);
    CHECK(beside.spin_polls == before.spin_polls);
    CHECK(beside.open_streams == kOpen);

    for (auto& chat : chats) {
      REQUIRE(chat->WritesDone());
      REQUIRE(chat->Finish().ok());
    }
    REQUIRE(WaitFor([&] { return server->guard_stats().open_streams == 0; },
                    absl::Seconds(10), absl::Milliseconds(5)));
    for (int i = 0; i < 100; ++i) REQUIRE(GetKnownFeature(*stub));
    CHECK(server->guard_stats().spin_hits > beside.spin_hits);
  }
}

// gRPC's bandwidth-delay-product probe is a PING the server sends as
// request data arrives. With the probe on, one comes; with it off, none has
// come by the time the server acknowledges a PING of the client's, sent
// after the call: the server answers frames in order, so a probe the
// call's data set off would have been written first.
TEST_CASE("The server pings to probe the bandwidth-delay product only with "
          "--http2_bdp_probe",
          "[guard]") {
  for (const bool probe : {true, false}) {
    CAPTURE(probe);
    ServerOptions options;
    options.http2_bdp_probe = probe;
    auto server = StartTestServer(options);
    RawClient client(server->port());
    client.Handshake(/*ack=*/true);
    const uint32_t stream = client.OpenGetFeature();
    REQUIRE(client.Send(Frame(
        kData, kEndStream, stream,
        GrpcMessage(MakePoint(kKnownLatitude, kKnownLongitude).SerializeAsString()))));
    int pings = 0;
    bool answered = false;
    bool acked = false;
    const std::string opaque = "routegd!";
    // With the probe: until its PING. Without: until the answer, then until
    // the ACK of our own PING.
    while (probe ? pings == 0 : !acked) {
      auto frame = client.Read(absl::Seconds(10));
      REQUIRE(frame.has_value());
      if (frame->type == kPing && (frame->flags & kAck) == 0) ++pings;
      if (frame->type == kPing && (frame->flags & kAck) != 0) {
        acked = frame->payload == opaque;
      }
      if (frame->type == kHeaders && frame->stream_id == stream &&
          (frame->flags & kEndStream) != 0 && !answered) {
        answered = true;
        if (!probe) REQUIRE(client.Send(Frame(kPing, 0, 0, opaque)));
      }
    }
    if (probe) {
      CHECK(pings >= 1);
    } else {
      CHECK(answered);
      CHECK(pings == 0);
    }
  }
}

TEST_CASE("Every kind of call works through the guard", "[guard]") {
  auto server = StartTestServer();
  auto stub = RouteGuide::NewStub(OwnChannel(server->port()));

  CHECK(GetKnownFeature(*stub));

  SECTION("ListFeatures over the world") {
    grpc::ClientContext context;
    SetDeadline(context, absl::Seconds(10));
    Rectangle world;
    *world.mutable_lo() = MakePoint(-900000000, -1800000000);
    *world.mutable_hi() = MakePoint(900000000, 1800000000);
    auto reader = stub->ListFeatures(&context, world);
    Feature feature;
    int count = 0;
    while (reader->Read(&feature)) ++count;
    CHECK(reader->Finish().ok());
    CHECK(count >= 100);
  }
  SECTION("RecordRoute: a megabyte of points, more than the guard buffers") {
    grpc::ClientContext context;
    SetDeadline(context, absl::Seconds(30));
    RouteSummary summary;
    auto writer = stub->RecordRoute(&context, &summary);
    constexpr int kPoints = 80000;
    for (int i = 0; i < kPoints; ++i) {
      if (!writer->Write(MakePoint(400000000 + i, -740000000 - i))) break;
    }
    writer->WritesDone();
    const grpc::Status status = writer->Finish();
    INFO(status.error_message());
    CHECK(status.ok());
    CHECK(summary.point_count() == kPoints);
  }
  SECTION("RouteChat: notes both ways") {
    grpc::ClientContext context;
    SetDeadline(context, absl::Seconds(10));
    auto stream = stub->RouteChat(&context);
    RouteNote note;
    *note.mutable_location() = MakePoint(111111, 222222);
    int replies = 0;
    for (int i = 0; i < 20; ++i) {
      note.set_message(absl::StrCat("note ", i, std::string(2000, 'x')));
      REQUIRE(stream->Write(note));
    }
    stream->WritesDone();
    RouteNote reply;
    while (stream->Read(&reply)) ++replies;
    CHECK(stream->Finish().ok());
    CHECK(replies == 19 * 20 / 2);  // Each note gets the ones before it.
  }
  const Http2GuardStats stats = server->guard_stats();
  CHECK(stats.relayed == 1);
  CHECK(stats.active == 1);
  CHECK(stats.rapid_reset_closes == 0);
  CHECK(stats.settings_timeouts == 0);
}

TEST_CASE("A HEADERS+RST_STREAM flood is cut off with ENHANCE_YOUR_CALM while "
          "an honest connection goes on; a second flood gets far less through",
          "[guard]") {
  auto server = StartTestServer();
  auto stub = RouteGuide::NewStub(OwnChannel(server->port()));
  REQUIRE(GetKnownFeature(*stub));

  // Honest calls all along, on a connection of their own.
  std::atomic<bool> done{false};
  std::atomic<int> honest_ok{0}, honest_failed{0};
  std::thread honest([&] {
    while (!done.load()) {
      (GetKnownFeature(*stub) ? honest_ok : honest_failed).fetch_add(1);
      absl::SleepFor(absl::Milliseconds(2));
    }
  });

  {
    RawClient attacker(server->port());
    attacker.Handshake(/*ack=*/true);
    attacker.Flood(5000);
    const Ending ending = attacker.AwaitEnd(absl::Seconds(10));
    CHECK(ending.closed);
    REQUIRE(ending.goaway_error.has_value());
    CHECK(*ending.goaway_error == kEnhanceYourCalm);
    // The last stream the guard saw opened, no later one.
    CHECK(ending.goaway_last_stream > 2000);
    CHECK(ending.goaway_last_stream <= attacker.last_stream());
  }
  Http2GuardStats stats = server->guard_stats();
  CHECK(stats.rapid_reset_closes == 1);
  CHECK(stats.goaways_sent == 1);
  CHECK(stats.strict_periods == 1);
  // Closed at the 1001st reset: the rest never reached gRPC.
  CHECK(stats.client_resets == 1001);

  // Its comeback meets the stricter limit (a hundredth, for 10 s).
  const int64_t resets_before = stats.client_resets;
  {
    RawClient attacker(server->port());
    attacker.Handshake(/*ack=*/true);
    attacker.Flood(5000);
    const Ending ending = attacker.AwaitEnd(absl::Seconds(10));
    CHECK(ending.closed);
    CHECK(ending.goaway_error == kEnhanceYourCalm);
  }
  stats = server->guard_stats();
  CHECK(stats.rapid_reset_closes == 2);
  CHECK(stats.client_resets - resets_before == 11);

  absl::SleepFor(absl::Milliseconds(100));
  done.store(true);
  honest.join();
  CHECK(GetKnownFeature(*stub));
  CHECK(honest_failed.load() == 0);
  CHECK(honest_ok.load() > 0);
  // The honest channel kept its one connection: three were relayed in all.
  CHECK(server->guard_stats().relayed == 3);
}

TEST_CASE("A message that declares far more than the limit closes its "
          "connection; one a little over it is refused by gRPC as usual",
          "[guard]") {
  ServerOptions options;
  options.max_message_bytes = 1024 * 1024;  // The guard's bound: 4 MiB.
  auto server = StartTestServer(options);
  RawClient client(server->port());
  client.Handshake(/*ack=*/true);
  const uint32_t stream = client.OpenGetFeature();
  // gRPC's 5-byte prefix, split over two DATA frames, the second padded:
  // flag 0, then a length of 100 MiB.
  std::string declared;
  declared.push_back('\0');
  Put32(declared, 100u << 20);
  std::string padded;
  padded.push_back(static_cast<char>(3));  // Pad length.
  padded += declared.substr(2);
  padded += std::string(3, '\0');  // The padding, not message bytes.
  REQUIRE(client.Send(Frame(kData, 0, stream, declared.substr(0, 2)) +
                      Frame(kData, kPadded, stream, padded)));
  const Ending ending = client.AwaitEnd(absl::Seconds(5));
  CHECK(ending.closed);
  CHECK(ending.goaway_error == kEnhanceYourCalm);
  CHECK(server->guard_stats().oversized_message_closes == 1);
  CHECK(server->guard_stats().rapid_reset_closes == 0);

  // 2 MiB: over gRPC's limit, under the guard's.
  auto stub = RouteGuide::NewStub(OwnChannel(server->port()));
  grpc::ClientContext context;
  SetDeadline(context, absl::Seconds(10));
  RouteNote note;
  note.set_message(std::string(2 << 20, 'x'));
  auto chat = stub->RouteChat(&context);
  chat->Write(note);
  chat->WritesDone();
  RouteNote reply;
  while (chat->Read(&reply)) {
  }
  CHECK(chat->Finish().error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(server->guard_stats().oversized_message_closes == 1);
}

TEST_CASE("Before acknowledging SETTINGS, a client may open twice the "
          "stream limit and no more",
          "[guard]") {
  ServerOptions options;
  options.max_concurrent_streams = 10;
  auto server = StartTestServer(options);
  SECTION("never acknowledged: closed at stream 21") {
    RawClient client(server->port());
    client.Handshake(/*ack=*/false);
    for (int i = 0; i < 20; ++i) client.OpenGetFeature();
    bool timed_out = false;
    while (!timed_out) {  // 20 are allowed: still open.
      const auto frame = client.Read(absl::Milliseconds(300), &timed_out);
      if (!timed_out) REQUIRE(frame.has_value());
    }
    CHECK(server->guard_stats().early_stream_closes == 0);
    client.OpenGetFeature();
    const Ending ending = client.AwaitEnd(absl::Seconds(5));
    CHECK(ending.closed);
    CHECK(ending.goaway_error == kEnhanceYourCalm);
    CHECK(server->guard_stats().early_stream_closes == 1);
  }
  SECTION("acknowledged: gRPC's own limit applies, the guard counts nothing") {
    RawClient client(server->port());
    client.Handshake(/*ack=*/true);
    for (int i = 0; i < 30; ++i) client.OpenGetFeature();
    // Past 10, gRPC refuses the streams or the connection: its business.
    client.AwaitEnd(absl::Milliseconds(500));
    CHECK(server->guard_stats().early_stream_closes == 0);
  }
}

}  // namespace
}  // namespace routeguide
