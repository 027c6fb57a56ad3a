// Floods of notes over many RouteChat streams and connections, against the
// server binary, with its memory watched.
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
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
#include "chat_flood.h"
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

// RSS samples of a server child, taken while a flood runs.
struct RssSamples {
  std::vector<std::pair<absl::Duration, int64_t>> kib;  // (time, VmRSS)
  bool always_running = true;

  void Take(testing::ServerProcess& server, absl::Duration at) {
    always_running = always_running && testing::StillRunning(server);
    kib.emplace_back(at, testing::ResidentKiB(server.pid()));
  }
  int64_t Peak() const {
    int64_t peak = -1;
    for (const auto& sample : kib) peak = std::max(peak, sample.second);
    return peak;
  }
  // The median of the samples taken from `from` until before `to`; -1
  // when there is none.
  int64_t Median(absl::Duration from, absl::Duration to) const {
    std::vector<int64_t> values;
    for (const auto& [at, kib_value] : kib) {
      if (at >= from && at < to) values.push_back(kib_value);
    }
    if (values.empty()) return -1;
    std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
    return values[values.size() / 2];
  }
  std::string ToString() const {
    std::string text;
    for (const auto& [at, kib_value] : kib) {
      absl::StrAppend(&text, text.empty() ? "" : " ",
                      absl::ToInt64Milliseconds(at), "ms:",
                      kib_value / 1024, "MiB");
    }
    return text;
  }
};

// What the server says about itself on SIGUSR1: its status line.
std::string StatusLine(testing::ServerProcess& server) {
  REQUIRE(server.process->Signal(SIGUSR1).ok());
  auto line = server.process->WaitForStderrLineContaining(
      "status:", absl::Now() + absl::Seconds(20));
  INFO(line.status().ToString());
  REQUIRE(line.ok());
  return *line;
}

// A diagnosis for streams that never end: the sockets of `pids` with bytes
// waiting in them (`ss`; Recv-Q unread by the owner, Send-Q unsent or
// unacknowledged), to tell which of the client, the guard's relay and gRPC
// sits on them.
constexpr absl::string_view kNoBusySockets = "(no socket of theirs holds bytes)";
constexpr absl::string_view kSocketsUnknown = "(ss could not run)";
std::string BusySockets(const std::vector<pid_t>& pids) {
  FILE* ss = popen("ss -Htanxp 2>&1", "r");
  if (ss == nullptr) return std::string(kSocketsUnknown) + "\n";
  std::string text;
  std::array<char, 4096> line;
  int shown = 0;
  while (fgets(line.data(), line.size(), ss) != nullptr) {
    const std::string row(line.data());
    bool ours = false;
    for (pid_t pid : pids) ours = ours || absl::StrContains(row, absl::StrCat("pid=", pid, ","));
    std::vector<std::string> fields = absl::StrSplit(row, ' ', absl::SkipWhitespace());
    // Netid, State, Recv-Q, Send-Q, ...
    const bool busy = fields.size() > 3 && fields[1] != "LISTEN" &&
                      (fields[2] != "0" || fields[3] != "0");
    if (ours && busy && shown++ < 40) text += row;
  }
  if (pclose(ss) != 0) return std::string(kSocketsUnknown) + "\n" + text;
  return text.empty() ? std::string(kNoBusySockets) + "\n" : text;
}

// The number before `what` in a status line ("..., 1000 notes, ...").
int64_t StatusNumber(const std::string& line, const std::string& what) {
  for (absl::string_view part : absl::StrSplit(line, absl::ByAnyChar(",:"))) {
    part = absl::StripAsciiWhitespace(part);
    if (absl::EndsWith(part, " " + what)) {
      part.remove_suffix(what.size() + 1);
      const size_t space = part.rfind(' ');
      if (space != absl::string_view::npos) part.remove_prefix(space + 1);
      int64_t value = -1;
      if (absl::SimpleAtoi(part, &value)) return value;
    }
  }
  return -1;
}

// A few streams of 400 (1 to 4, in some rounds, most often in a round
// after another on the same server) were seen still waiting for their
// status when the flood's patience ran out, although the server had ended
// every call, the guard had relayed an end (trailers or a reset) for every
// stream and held no byte, and no socket of either process held one: the
// end was with the client, gRPC 1.51's, which never completed the call.
// (Not seen in 54 rounds without the guard, whose relay cuts the server's
// bytes into other reads, nor in rounds run alone.) The flood cancels
// those streams (CANCELLED); this checks that they are that few (2% of the
// streams, at least one) and the server's part: every call ended, every
// byte passed on and taken out of the sockets (where `ss` can tell).
void CheckStuckStreamsWereEnded(const ChatFlood& flood, int streams) {
  if (flood.cancelled_by_test() == 0) return;
  const std::string& view = flood.server_view();
  std::cout << "streams the test cancelled: " << flood.stuck()
            << "the server then: " << view << std::endl;
  INFO("streams the test cancelled: " << flood.stuck() << "the server then: " << view);
  CHECK(flood.cancelled_by_test() <= std::max(1, streams / 50));
  CHECK(StatusNumber(view, "calls in flight") == 0);
  CHECK(StatusNumber(view, "streams open through the guard") == 0);
  CHECK(StatusNumber(view, "bytes held by the guard") == 0);
  CHECK((absl::StrContains(view, kNoBusySockets) || absl::StrContains(view, kSocketsUnknown)));
}

grpc::Status CallGetFeature(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  auto stub = RouteGuide::NewStub(
      grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext context;
  SetDeadline(context, absl::Seconds(10));
  Point point;
  point.set_latitude(409146138);
  point.set_longitude(-746188906);
  Feature feature;
  return stub->GetFeature(&context, point, &feature);
}

TEST_CASE("A flood of 4 KiB notes over several RouteChat streams: the "
          "server's memory levels off within the note bounds",
          "[fault][flood][binary]") {
  constexpr size_t kMaxNotes = 1000;
  testing::ServerProcess server = testing::StartServerProcess(
      {absl::StrCat("--max_notes=", kMaxNotes), "--max_notes_per_location=5"});
  // Memory in use before, once malloc has handed back what is free (the
  // server trims before it reports).
  const int64_t trimmed_before = StatusNumber(StatusLine(server), "KiB");

  ChatFlood::Options options;
  options.channels = 2;
  options.streams_per_channel = 2;
  options.note_bytes = 4096;  // The default --max_note_size.
  options.hot_every = 10;     // 10% of notes draw up to 5 replies each.
  // Paced, so that what grows is what the server keeps, not what gRPC
  // buffers for a client faster than the server. (Unpaced, this client
  // sends ~110k notes/s and, under the default 1GiB quota, the RSS swings
  // between 110 and 280 MiB while data is in flight, and is back at ~30
  // MiB once the flood is over and malloc has trimmed.)
  options.notes_per_second = 25000;
  ChatFlood flood(server.target(), options);
  constexpr absl::Duration kFlood = absl::Seconds(6);
  RssSamples rss;
  flood.Run(kFlood, absl::Milliseconds(250),
            [&](absl::Duration at) { rss.Take(server, at); },
            [&] { return StatusLine(server); });
  // Typical RSS in the second quarter of the flood and in the last one
  // (medians, so that a passing burst of buffered data does not count).
  const int64_t second_quarter = rss.Median(kFlood / 4, kFlood / 2);
  const int64_t last_quarter = rss.Median(kFlood * 3 / 4, kFlood * 2);
  std::cout << "note flood: " << flood.notes_sent() << " notes of 4 KiB sent in "
            << absl::FormatDuration(kFlood) << ", " << flood.replies()
            << " replies, streams ended " << flood.CodesToString()
            << ", the last " << absl::FormatDuration(flood.ending_took())
            << " after the flood; server VmRSS " << rss.ToString() << std::endl;
  REQUIRE(rss.always_running);
  CheckStuckStreamsWereEnded(flood, options.channels * options.streams_per_channel);
  std::map<grpc::StatusCode, int> expected;
  const int stuck = flood.cancelled_by_test();
  if (stuck < 4) expected[grpc::StatusCode::OK] = 4 - stuck;
  if (stuck > 0) expected[grpc::StatusCode::CANCELLED] = stuck;
  CHECK(flood.codes() == expected);
  // 150k notes (600 MB) when all keep pace; at least 100k, 100 times what
  // the store may keep (a third of that under AddressSanitizer, where four
  // streams of one Write at a time fall behind the pace on a busy machine).
  CHECK(flood.notes_sent() >= 100000 / kSanitizerSlowdown);
  CHECK(flood.replies() > 0);
  // Memory levels off: from the second quarter of the flood to the last it
  // grows by less than 20 MiB (40 under AddressSanitizer, whose quarantine
  // of freed memory may still be filling up on a slow machine), and it
  // stays far below what the notes sent take (about 25 MiB measured;
  // keeping every note would add 4 KiB a note, 68 MB or more between the
  // two quarters even at the floor above).
  REQUIRE(second_quarter > 0);
  REQUIRE(last_quarter > 0);
  CHECK(last_quarter - second_quarter < (testing::kRssBoundsHold ? 20 : 40) * 1024);
  if (testing::kRssBoundsHold) CHECK(rss.Peak() < 100 * 1024);

  // Afterwards the store holds no more than its bound, and the memory in
  // use is back near where it started.
  const std::string status = StatusLine(server);
  std::cout << "note flood: before it RSS " << trimmed_before << " KiB; after it, "
            << status << std::endl;
  const int64_t notes = StatusNumber(status, "notes");
  CHECK(notes > 0);
  CHECK(notes <= static_cast<int64_t>(kMaxNotes));
  const int64_t trimmed_after = StatusNumber(status, "KiB");
  REQUIRE(trimmed_before > 0);
  REQUIRE(trimmed_after > 0);
  // (The 1000 notes kept take 4 MB; about 6.5 MiB more was measured.)
  if (testing::kRssBoundsHold) CHECK(trimmed_after - trimmed_before < 16 * 1024);
}

TEST_CASE("Under --max_memory=4MiB a flood over 200 connections is cut back "
          "(RESOURCE_EXHAUSTED, UNAVAILABLE) while the server keeps running "
          "within bounds, and serves normally afterwards",
          "[fault][flood][binary]") {
  // What gRPC 1.51 does past the quota, as measured here: it goes on
  // accepting TCP connections, but its reclaimers close connections (the
  // client sees UNAVAILABLE, "GOAWAY received" or "Broken pipe", often
  // before a stream's first note) and reset busy streams with
  // ENHANCE_YOUR_CALM (RESOURCE_EXHAUSTED, "Received RST_STREAM with error
  // code 11"). How many of each varies from run to run, from none at all
  // (rarely) to nearly all of the 400. Flow-control windows stay small, so the RSS
  // stays flat (30-37 MiB, against 55-100 MiB without a quota). The run
  // without a quota shows that the flood by itself fails nothing.
  const std::string quota = GENERATE(std::string("4MiB"), std::string("0"));
  CAPTURE(quota);
  testing::ServerProcess server =
      testing::StartServerProcess({"--max_memory=" + quota, "--max_notes=1000"});
  const int64_t before = testing::ResidentKiB(server.pid());
  // Whether a 3-second flood drives the quota's reclaimers far enough to
  // cut a stream is up to timing (one clean round in some dozens was seen
  // on CI), so the quota gets up to three rounds to show it (six under
  // AddressSanitizer, whose slower rounds send fewer notes: one clean round
  // of six was seen there); without a quota one round is enough to show
  // the flood by itself fails nothing.
  const int rounds = quota == "0" ? 1 : (ROUTEGUIDE_ASAN ? 6 : 3);
  int failed = 0;
  int64_t peak = -1;
  for (int round = 1; round <= rounds && failed == 0; ++round) {
    ChatFlood::Options options;
    options.channels = 200;
    options.streams_per_channel = 2;
    options.note_bytes = 4096;
    ChatFlood flood(server.target(), options);
    RssSamples rss;
    flood.Run(absl::Seconds(3), absl::Milliseconds(250),
              [&](absl::Duration at) { rss.Take(server, at); },
              [&] {
                return StatusLine(server) + "\nsockets holding bytes:\n" +
                       BusySockets({server.pid(), getpid()});
              });
    std::cout << "--max_memory=" << quota << " flood, round " << round
              << ": server VmRSS before " << before / 1024 << " MiB; "
              << flood.notes_sent()
              << " notes of 4 KiB sent over 400 streams on 200 connections, "
              << "streams ended " << flood.CodesToString() << ", "
              << flood.failed_before_first_note()
              << " of them before their first note; "
              << flood.cancelled_by_test() << " cancelled by the test; the last "
              << "ended " << absl::FormatDuration(flood.ending_took())
              << " after the flood; VmRSS "
              << rss.ToString() << std::endl;
    REQUIRE(rss.always_running);
    CheckStuckStreamsWereEnded(flood, options.channels * options.streams_per_channel);
    for (const auto& [code, count] : flood.codes()) {
      INFO(count << " streams ended with " << code);
      if (code == grpc::StatusCode::CANCELLED) {
        CHECK(count <= flood.cancelled_by_test());
        continue;
      }
      CHECK((code == grpc::StatusCode::OK ||
             code == grpc::StatusCode::RESOURCE_EXHAUSTED ||
             code == grpc::StatusCode::UNAVAILABLE));
    }
    failed = flood.failed() - flood.cancelled_by_test();
    peak = std::max(peak, rss.Peak());
  }
  if (quota == "0") {
    CHECK(failed == 0);
  } else {
    CHECK(failed > 0);  // Degraded: the quota cut some streams.
    if (testing::kRssBoundsHold) CHECK(peak < 64 * 1024);
  }
  // Without a quota only flow control bounds the buffers (55-100 MiB
  // alone, up to 210 MiB measured with builds running beside it): this
  // only catches a runaway.
  if (testing::kRssBoundsHold) CHECK(peak < 512 * 1024);
  // Once the flood is over the server serves as before.
  const grpc::Status after = CallGetFeature(server.target());
  INFO(after.error_code() << ": " << after.error_message());
  CHECK(after.ok());
  // Every note was an honest 4 KiB one: where gRPC reset a stream in the
  // middle of a note, the HTTP/2 guard must not read the note's remaining
  // bytes, still on their way, as a new message of gigabytes.
  const std::string status = StatusLine(server);
  INFO(status);
  CHECK(StatusNumber(status, "closed for an oversized message") == 0);
  CHECK(testing::StillRunning(server));
}

}  // namespace
}  // namespace routeguide
