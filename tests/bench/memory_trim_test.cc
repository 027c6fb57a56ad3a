// The server's RSS comes back down after a wave of streams ends
// (--memory_trim_interval), rather than staying at the wave's peak because
// the allocator keeps what the calls freed.
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "server_process.h"
#include "subprocess.h"

namespace routeguide {
namespace {

// Waits until RSS stops changing by more than 256 KiB over 300 ms.
int64_t SettledRss(pid_t pid) {
  int64_t last = testing::ResidentKiB(pid);
  for (int i = 0; i < 30; ++i) {
    absl::SleepFor(absl::Milliseconds(300));
    const int64_t now = testing::ResidentKiB(pid);
    if (now >= 0 && std::abs(now - last) < 256) return now;
    last = now;
  }
  return last;
}

TEST_CASE("RSS falls back after thousands of streams end",
          "[memory][binary]") {
  if (!testing::kRssBoundsHold) {
    WARN("skipped: RSS under AddressSanitizer does not show what glibc keeps");
    return;
  }
  testing::ServerProcess server = testing::StartServerProcess(
      // Checks 2 s apart, and a wave shorter than that: the server must
      // notice the peak it did not see at any check.
      {"--memory_trim_interval=2s", "--threads=1"});
  const int64_t before = SettledRss(server.pid());

  // 4000 RouteChat streams, each with a note stored, held 1 s, then closed.
  auto client = testing::Subprocess::Start(
      {testing::BinaryFromEnv("IDLE_CHAT_STREAMS"), "--target=" + server.target(), "--streams=4000",
       "--channels=8", "--send_note", "--hold=1s", "--timeout=30s"});
  REQUIRE(client.ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  auto opened = (*client)->WaitForLine(
      testing::Subprocess::Stream::kStdout,
      [](absl::string_view line) { return absl::StartsWith(line, "open"); },
      deadline);
  INFO(opened.status().ToString() << "\n" << (*client)->stderr_text());
  REQUIRE(opened.ok());
  absl::SleepFor(absl::Milliseconds(300));
  const int64_t open = testing::ResidentKiB(server.pid());
  auto closed = (*client)->WaitForLine(
      testing::Subprocess::Stream::kStdout,
      [](absl::string_view line) { return absl::StartsWith(line, "closed"); },
      deadline);
  REQUIRE(closed.ok());
  CHECK(*closed == "closed 4000 streams, 4000 ok");
  auto exit = (*client)->Wait(absl::Seconds(10));
  REQUIRE(exit.ok());
  CHECK(exit->Exited(0));
  // Wait for the next check for RSS to fall below a third of what the
  // streams added.
  const int64_t added = open - before;
  int64_t after = testing::ResidentKiB(server.pid());
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (absl::Now() < give_up && after - before >= added / 3) {
    absl::SleepFor(absl::Milliseconds(200));
    after = testing::ResidentKiB(server.pid());
  }

  std::cout << "RSS before "
            << before << " KiB, 4000 streams open " << open << " KiB, after "
            << after << " KiB" << std::endl;
  // The streams cost tens of MiB (about 17 KiB each)...
  REQUIRE(added > 30 * 1024);
  // ...and most of it is handed back once they end. (Whether glibc keeps
  // it without --memory_trim_interval is glibc's business, not tested.)
  CHECK(after - before < added / 3);
  REQUIRE(testing::StillRunning(server));
}

}  // namespace
}  // namespace routeguide
