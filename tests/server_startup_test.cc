// The binaries at start-up, as a user runs them: --version, and inputs the
// server refuses before it listens.
#include <elf.h>
#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "grpcpp/grpcpp.h"
#include "config.h"
#include "metrics_scrape.h"
#include "server_process.h"
#include "subprocess.h"

namespace routeguide {
namespace {

constexpr absl::Duration kProcessTimeout = absl::Seconds(30);

testing::RunResult RunOrFail(const std::vector<std::string>& argv) {
  CAPTURE(absl::StrJoin(argv, " "));
  auto run = testing::Run(argv, kProcessTimeout);
  INFO(run.status().ToString());
  REQUIRE(run.ok());
  return *std::move(run);
}

TEST_CASE("--version names the project's version and the gRPC and protobuf in use",
          "[process][version]") {
  const std::string binary = GENERATE(as<std::string>{}, "ROUTEGUIDE_SERVER",
                                      "ROUTEGUIDE_CLIENT");
  const testing::RunResult run = RunOrFail({testing::BinaryFromEnv(binary), "--version"});
  INFO("stdout:\n" << run.stdout_text << "stderr:\n" << run.stderr_text);
  CHECK(run.exit.Exited(0));
  CHECK(absl::StrContains(run.stdout_text, " 0.1.0\n"));
  CHECK(absl::StrContains(run.stdout_text, std::string("gRPC ") + grpc::Version()));
  CHECK(absl::StrContains(run.stdout_text, "protobuf 3."));
  // Not abseil's default.
  CHECK_FALSE(absl::StrContains(run.stdout_text, "NDEBUG"));
}

TEST_CASE("The server refuses bad start-up input before it listens, naming it",
          "[process]") {
  std::vector<std::string> flags;
  std::string message;
  SECTION("a port past 65535 (gRPC would listen on it modulo 65536)") {
    flags = {"--address=127.0.0.1:99999"};
    message = "--address 127.0.0.1:99999: the port must be a number from 0 to 65535";
  }
  SECTION("the same with TLS, whose listener is gRPC's: before its files are read") {
    flags = {"--address=127.0.0.1:99999", "--tls_cert=/nonexistent/server.pem",
             "--tls_key=/nonexistent/server.key"};
    message = "--address 127.0.0.1:99999: the port must be a number from 0 to 65535";
  }
  SECTION("a negative thread count") {
    flags = {"--address=127.0.0.1:0", "--threads=-1"};
    message = "--threads must be at least 1, or 0 for one per core (got -1)";
  }
  SECTION("a directory as the database") {
    flags = {"--address=127.0.0.1:0", "--db=/"};
    message = "/: is a directory, not a file";
  }
  SECTION("a bad database, before the warning about plaintext off this host") {
    flags = {"--address=[::]:0", "--db=/nonexistent/routeguide.json"};
    message = "/nonexistent/routeguide.json: cannot open";
  }
  SECTION("a Redis password file with no Redis to use it") {
    flags = {"--address=127.0.0.1:0", "--notes_store_password_file=/etc/hostname"};
    message = "--notes_store_password_file needs --notes_store=redis://... or unix://...";
  }
  SECTION("a Redis password file that cannot be read") {
    flags = {"--address=127.0.0.1:0", "--notes_store=redis://127.0.0.1:1",
             "--notes_store_password_file=/nonexistent/redis-password"};
    message = "/nonexistent/redis-password: cannot open";
  }
  SECTION("a notes store that is not one") {
    flags = {"--address=127.0.0.1:0", "--notes_store=redis:/127.0.0.1"};
    message = "--notes_store=redis:/127.0.0.1: unknown store";
  }
  std::vector<std::string> argv = {testing::ServerPath()};
  argv.insert(argv.end(), flags.begin(), flags.end());
  const testing::RunResult run = RunOrFail(argv);
  INFO("stderr:\n" << run.stderr_text);
  CHECK(run.exit.Exited(2));
  // The error is the first thing said.
  CHECK(absl::StartsWith(run.stderr_text, "routeguide-server: error: " + message));
  CHECK_FALSE(absl::StrContains(run.stderr_text, testing::kListeningLine));
}

TEST_CASE("With --threads=0 the server polls with one thread per core it may run on",
          "[process]") {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  REQUIRE(sched_getaffinity(0, sizeof(allowed), &allowed) == 0);
  const int cores = CPU_COUNT(&allowed);
  if (cores == 1) WARN("one CPU allowed: both sections expect one thread");
  int first = 0;
  while (!CPU_ISSET(first, &allowed)) ++first;
  cpu_set_t child = allowed;
  std::string expected;
  SECTION("held to one core, whatever the machine has") {
    CPU_ZERO(&child);
    CPU_SET(first, &child);
    expected = "): 1 completion queues, 1 threads,";
  }
  SECTION("free to run on every core it is allowed") {
    expected = absl::StrCat("): ", cores, " completion queues, ", cores, " threads,");
  }
  // The child inherits the affinity of the thread that starts it.
  REQUIRE(sched_setaffinity(0, sizeof(child), &child) == 0);
  auto started = testing::Subprocess::Start(
      {testing::BinaryFromEnv("ROUTEGUIDE_SERVER"), "--address=127.0.0.1:0", "--threads=0"});
  REQUIRE(sched_setaffinity(0, sizeof(allowed), &allowed) == 0);
  INFO(started.status().ToString());
  REQUIRE(started.ok());
  auto line = (*started)->WaitForStderrLineContaining("listening on",
                                                       absl::Now() + kProcessTimeout);
  INFO(line.status().ToString());
  REQUIRE(line.ok());
  CAPTURE(*line);
  CHECK(absl::StrContains(*line, expected));
}

// The process's mapped files, from /proc.
std::string MappedFiles(pid_t pid) {
  std::ifstream maps(absl::StrCat("/proc/", pid, "/maps"));
  return std::string(std::istreambuf_iterator<char>(maps), {});
}

// The name of each of the process's threads, from /proc.
std::vector<std::string> ThreadNames(pid_t pid) {
  std::vector<std::string> names;
  const std::string tasks = absl::StrCat("/proc/", pid, "/task");
  for (const auto& task : std::filesystem::directory_iterator(tasks)) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) names.push_back(name);
  }
  return names;
}

TEST_CASE("The server's own threads are named, and it starts no other",
          "[process]") {
  testing::ServerProcess server = testing::StartServerProcess({"--threads=2"});
  std::string process_name;
  std::getline(std::ifstream(absl::StrCat("/proc/", server.pid(), "/comm")),
               process_name);
  REQUIRE(!process_name.empty());
  // Each thread names itself when it starts, which may be just after the
  // server says it listens.
  const std::vector<std::string> expected = {"rg-poller-0", "rg-poller-1",
                                             "rg-accept", "http2-guard"};
  const absl::Time deadline = absl::Now() + kProcessTimeout;
  std::vector<std::string> names;
  auto all_named = [&] {
    names = ThreadNames(server.pid());
    for (const std::string& name : expected) {
      if (std::count(names.begin(), names.end(), name) != 1) return false;
    }
    return std::count(names.begin(), names.end(), process_name) == 1;
  };
  while (!all_named() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  CAPTURE(absl::StrJoin(names, ", "));
  for (const std::string& name : expected) {
    CAPTURE(name);
    CHECK(std::count(names.begin(), names.end(), name) == 1);
  }
  // Only the main thread keeps the process's name: no thread of ours is
  // unnamed (the idle sweep runs on a queue's alarm, not a thread).
  CHECK(std::count(names.begin(), names.end(), process_name) == 1);
}

#if ROUTEGUIDE_STATIC_RUNTIME
TEST_CASE("With the C++ runtime linked in, the serving server maps no shared "
          "library but libc and libm",
          "[process]") {
  testing::ServerProcess server = testing::StartServerProcess();
  const std::string maps = MappedFiles(server.pid());
  REQUIRE(absl::StrContains(maps, "routeguide-server"));  // Read at all.
  for (const char* library : {"libstdc++", "libgcc_s", "libspdlog", "libfmt"}) {
    CAPTURE(library);
    CHECK_FALSE(absl::StrContains(maps, library));
  }
  CHECK(absl::StrContains(maps, "libc.so"));
}
#endif

// The ELF type of a binary: ET_DYN for a position-independent executable,
// ET_EXEC for one linked at a fixed address; -1 when it cannot be read.
int ElfType(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  Elf64_Ehdr header{};
  if (!file.read(reinterpret_cast<char*>(&header), sizeof(header))) return -1;
  if (std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0) return -1;
  return header.e_type;
}

TEST_CASE("The server and client are linked position-independent, or at a "
          "fixed address, as -Dpie says",
          "[process]") {
  const int expected = ROUTEGUIDE_PIE ? ET_DYN : ET_EXEC;
  for (const char* variable : {"ROUTEGUIDE_SERVER", "ROUTEGUIDE_CLIENT"}) {
    const char* binary = std::getenv(variable);
    REQUIRE(binary != nullptr);
    CAPTURE(binary);
    CHECK(ElfType(binary) == expected);
  }
}

#if ROUTEGUIDE_WITH_METRICS

TEST_CASE("The server loads its metrics module and prometheus-cpp only with "
          "--metrics_address, and then serves /metrics",
          "[process][metrics]") {
  SECTION("without: neither is mapped") {
    testing::ServerProcess server = testing::StartServerProcess();
    const std::string maps = MappedFiles(server.pid());
    REQUIRE(absl::StrContains(maps, "routeguide-server"));  // Read at all.
    CHECK_FALSE(absl::StrContains(maps, "routeguide-metrics.so"));
    CHECK_FALSE(absl::StrContains(maps, "libprometheus-cpp"));
  }
  SECTION("with: the module beside the binary is found, and answers") {
    testing::ServerProcess server =
        testing::StartServerProcess({"--metrics_address=127.0.0.1:0"});
    auto line = server.process->WaitForStderrLineContaining(
        "metrics at", absl::Now() + kProcessTimeout);
    INFO(line.status().ToString());
    REQUIRE(line.ok());
    CAPTURE(*line);
    const size_t start = line->find("(port ");
    REQUIRE(start != std::string::npos);
    int port = 0;
    REQUIRE(absl::SimpleAtoi(
        absl::string_view(*line).substr(start + 6, line->find(')', start) - start - 6),
        &port));
    // The one built beside the binary, not an installed one.
    const std::string binary = testing::ServerPath();
    CHECK(absl::StrContains(MappedFiles(server.pid()),
                            binary.substr(0, binary.rfind('/') + 1) +
                                "routeguide-metrics.so"));
    CHECK_THAT(Scrape(port), Catch::Contains("routeguide_features_loaded 100"));
  }
}
#endif

}  // namespace
}  // namespace routeguide
