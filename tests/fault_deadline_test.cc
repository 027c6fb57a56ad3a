// Storms of deadlines expiring at every stage of every kind of call.
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

// When a call of a deadline storm expires, by its index in the storm.
using StormDeadline = std::function<std::chrono::system_clock::time_point(int)>;

// How one call of a deadline storm went.
struct StormCall {
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  // The call got as far as the stage its row is about (for rows where the
  // client can tell).
  bool reached = true;
  int64_t messages = 0;  // Read or written by the client, as the row goes.
};

TEST_CASE("Deadlines expiring at every stage of every kind, in storms: each "
          "call ends as it should and none is left behind",
          "[fault][deadline]") {
  Fixture fixture;
  RouteGuide::Stub& stub = *fixture.stub;
  // Rows that need ListFeatures to stream for long add 100k features on a
  // line, and ask for all of them.
  Rectangle line;
  line.mutable_lo()->set_latitude(100000000);
  line.mutable_lo()->set_longitude(100000000);
  line.mutable_hi()->set_latitude(100000000 + 100000);
  line.mutable_hi()->set_longitude(100000000);
  auto add_line = [&] {
    for (int i = 0; i < 100000; ++i) {
      fixture.store->AddFeature({std::string(64, 'f'), {100000000 + i, 100000000}});
    }
  };
  auto small_window = RouteGuide::NewStub(SmallWindowChannel(fixture.server->port()));
  // Deadlines, by call: already past; 0-5 ms (expiring about when the
  // server takes the call); 300-380 ms (mid-stream); 500 ms (once the
  // server is blocked writing). Long enough that each call gets to its
  // stage even with 16 at once on a busy machine.
  // (Past, not just ahead: gRPC rounds a deadline up to the next
  // millisecond, which a local GetFeature can beat.)
  // Under AddressSanitizer a call takes several times as long to get to
  // its stage: the deadlines that must let it get there are stretched.
  auto past = [](int) { return In(-absl::Milliseconds(1)); };
  auto at_start = [](int i) { return In(absl::Microseconds(500 * (i % 11))); };
  auto mid = [](int i) {
    return In(kSanitizerSlowdown * absl::Milliseconds(300 + 20 * (i % 5)));
  };
  auto blocked = [](int) {
    return In(kSanitizerSlowdown * absl::Milliseconds(500));
  };
  // ListFeatures gathers all 100k features before it sends the first, and
  // 16 of them at once share the server's two poller threads.
  auto mid_list = [](int i) {
    return In(kSanitizerSlowdown * absl::Milliseconds(800 + 20 * (i % 5)));
  };
  auto blocked_list = [](int) {
    return In(kSanitizerSlowdown * absl::Milliseconds(1000));
  };

  std::string row;
  std::function<StormCall(int)> call;
  std::vector<grpc::StatusCode> allowed = {grpc::StatusCode::DEADLINE_EXCEEDED};
  // Rows whose every call is seen by the server before its deadline.
  bool all_accepted = false;

  auto get_feature = [&](StormDeadline deadline) {
    return [&stub, deadline](int i) {
      grpc::ClientContext context;
      context.set_deadline(deadline(i));
      Point point;
      point.set_latitude(409146138);
      point.set_longitude(-746188906);
      Feature feature;
      return StormCall{stub.GetFeature(&context, point, &feature).error_code()};
    };
  };
  // ListFeatures over the line; reads `read_first` features (all when
  // negative), then waits for the status. Reached: a feature came. A paced
  // reader takes a break of kSanitizerSlowdown milliseconds every 100
  // features, so it cannot read all 100k before mid_list's deadline, however
  // fast the machine.
  auto list_features = [&](RouteGuide::Stub& on, StormDeadline deadline,
                           int read_first, bool must_read, bool paced) {
    return [&on, &line, deadline, read_first, must_read, paced](int i) {
      grpc::ClientContext context;
      context.set_deadline(deadline(i));
      auto reader = on.ListFeatures(&context, line);
      Feature feature;
      int read = 0;
      while ((read_first < 0 || read < read_first) && reader->Read(&feature)) {
        if (++read % 100 == 0 && paced) {
          absl::SleepFor(kSanitizerSlowdown * absl::Milliseconds(1));
        }
      }
      StormCall result{reader->Finish().error_code()};
      result.reached = !must_read || read > 0;
      result.messages = read;
      return result;
    };
  };
  // RecordRoute: sends `points` points (until a write fails when
  // negative), then waits for the status without half-closing. Reached:
  // all the points went out (one at least, when negative).
  auto record_route = [&](StormDeadline deadline, int points) {
    return [&stub, deadline, points](int i) {
      grpc::ClientContext context;
      context.set_deadline(deadline(i));
      RouteSummary summary;
      auto writer = stub.RecordRoute(&context, &summary);
      Point point;
      point.set_latitude(i);
      int written = 0;
      while ((points < 0 || written < points) && writer->Write(point)) ++written;
      StormCall result{writer->Finish().error_code()};
      result.reached = points < 0 ? written > 0 : written == points;
      result.messages = written;
      return result;
    };
  };
  // RouteChat: sends `notes` notes at `location` without reading a reply,
  // then waits for the status. Reached: every note went out.
  auto route_chat = [&](RouteGuide::Stub& on, StormDeadline deadline, int notes,
                        int32_t location) {
    return [&on, deadline, notes, location](int i) {
      grpc::ClientContext context;
      context.set_deadline(deadline(i));
      auto stream = on.RouteChat(&context);
      RouteNote note;
      note.set_message("storm");
      note.mutable_location()->set_latitude(location);
      note.mutable_location()->set_longitude(location);
      int written = 0;
      while (written < notes && stream->Write(note)) ++written;
      StormCall result{stream->Finish().error_code()};
      result.reached = written == notes;
      result.messages = written;
      return result;
    };
  };

  SECTION("GetFeature, deadline already past") {
    row = "GetFeature, past";
    call = get_feature(past);
  }
  SECTION("GetFeature, deadline expiring as the server takes the call") {
    row = "GetFeature, 0-5 ms";
    call = get_feature(at_start);
    allowed.push_back(grpc::StatusCode::OK);  // A fast call beats 5 ms.
  }
  SECTION("ListFeatures, deadline already past") {
    row = "ListFeatures, past";
    add_line();
    call = list_features(stub, past, -1, false, false);
  }
  SECTION("ListFeatures, deadline expiring as the server takes the call") {
    row = "ListFeatures, 0-5 ms";
    add_line();
    call = list_features(stub, at_start, -1, false, false);
  }
  SECTION("ListFeatures, deadline expiring mid-stream while the client reads") {
    row = "ListFeatures, mid-stream";
    all_accepted = true;
    add_line();
    call = list_features(stub, mid_list, -1, true, true);
  }
  SECTION("ListFeatures, deadline expiring while the server is blocked "
          "writing to a client that reads no more") {
    row = "ListFeatures, blocked writing";
    all_accepted = true;
    add_line();
    call = list_features(*small_window, blocked_list, 1, true, false);
  }
  SECTION("RecordRoute, deadline already past") {
    row = "RecordRoute, past";
    call = record_route(past, 0);
  }
  SECTION("RecordRoute, deadline expiring as the server takes the call") {
    row = "RecordRoute, 0-5 ms";
    call = record_route(at_start, 0);
  }
  SECTION("RecordRoute, deadline expiring mid-stream while the client sends") {
    row = "RecordRoute, mid-stream";
    all_accepted = true;
    call = record_route(mid, -1);
  }
  SECTION("RecordRoute, deadline expiring while the server waits for the "
          "next point") {
    row = "RecordRoute, server waiting";
    all_accepted = true;
    call = record_route(mid, 5);
  }
  SECTION("RouteChat, deadline already past") {
    row = "RouteChat, past";
    call = route_chat(stub, past, 0, 5);
  }
  SECTION("RouteChat, deadline expiring as the server takes the call") {
    row = "RouteChat, 0-5 ms";
    call = route_chat(stub, at_start, 0, 5);
  }
  SECTION("RouteChat, deadline expiring mid-stream while notes and replies "
          "flow") {
    row = "RouteChat, mid-stream";
    all_accepted = true;
    call = [&stub, mid](int i) {
      grpc::ClientContext context;
      context.set_deadline(mid(i));
      auto stream = stub.RouteChat(&context);
      // Two notes at a fresh location, then the reply (the first) to the
      // second, over and over.
      RouteNote note;
      note.set_message("ping");
      note.mutable_location()->set_latitude(1000 + i);
      int replies = 0;
      for (int32_t k = 0;; ++k) {
        note.mutable_location()->set_longitude(k);
        RouteNote reply;
        if (!stream->Write(note) || !stream->Write(note) || !stream->Read(&reply)) break;
        ++replies;
      }
      StormCall result{stream->Finish().error_code()};
      result.reached = replies > 0;
      result.messages = replies;
      return result;
    };
  }
  SECTION("RouteChat, deadline expiring while the server is blocked writing "
          "replies to a client that does not read them") {
    row = "RouteChat, blocked writing";
    all_accepted = true;
    // Each note draws 100 replies of 1000 bytes: past the 64 KiB window
    // and, after three notes, past --max_queued_replies (256).
    for (int i = 0; i < 100; ++i) fixture.store->AddNote({{5, 5}, std::string(1000, 'n')});
    call = route_chat(*small_window, blocked, 3, 5);
  }

  // The storm: 16 threads, 3 calls each, one after another.
  const int64_t accepted_before = fixture.server->calls().accepted();
  constexpr int kThreads = 16;
  constexpr int kCallsPerThread = 3;
  std::vector<StormCall> results(kThreads * kCallsPerThread);
  {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int k = 0; k < kCallsPerThread; ++k) {
          const int i = t * kCallsPerThread + k;
          results[i] = call(i);
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
  }
  std::map<grpc::StatusCode, int> codes;
  int not_allowed = 0;
  int not_reached = 0;
  int64_t fewest = std::numeric_limits<int64_t>::max();
  int64_t most = 0;
  for (const StormCall& result : results) {
    fewest = std::min(fewest, result.messages);
    most = std::max(most, result.messages);
    ++codes[result.code];
    if (std::find(allowed.begin(), allowed.end(), result.code) == allowed.end()) {
      ++not_allowed;
    }
    if (!result.reached) ++not_reached;
  }
  std::string summary;
  for (const auto& [code, count] : codes) {
    absl::StrAppend(&summary, summary.empty() ? "" : ", ", count, " x ", code);
  }
  const int64_t accepted = fixture.server->calls().accepted() - accepted_before;
  std::cout << "deadline storm, " << row << ": " << summary << "; the server "
            << "accepted " << accepted << " of " << results.size() << "; "
            << fewest << "-" << most << " messages per call" << std::endl;
  INFO(row << ": " << summary);
  CHECK(not_allowed == 0);
  CHECK(not_reached == 0);
  if (all_accepted) CHECK(accepted == static_cast<int64_t>(results.size()));
  CHECK(fixture.BackToBaseline());
  CHECK(fixture.StillServes());
}

}  // namespace
}  // namespace routeguide
