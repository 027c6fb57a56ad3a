// The server binary's start-up inputs: its flags as options (one source of
// defaults, one validation with messages that name the right flag), the
// listening address checked before gRPC sees it, files that are not files,
// and the memory-trim policy.
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "catch2/catch.hpp"
#include "db_loader.h"
#include "files.h"
#include "flags.h"
#include "grpcpp/security/server_credentials.h"
#include "process_memory.h"
#include "redis_notes_store.h"
#include "server_flags.h"
#include "server_options.h"

ABSL_DECLARE_FLAG(int, threads);
ABSL_DECLARE_FLAG(int, cqs);
ABSL_DECLARE_FLAG(std::string, address);
ABSL_DECLARE_FLAG(std::string, max_message_size);
ABSL_DECLARE_FLAG(absl::Duration, memory_trim_interval);
ABSL_DECLARE_FLAG(std::string, notes_store);
ABSL_DECLARE_FLAG(absl::Duration, notes_store_timeout);
ABSL_DECLARE_FLAG(absl::Duration, notes_ttl);
ABSL_DECLARE_FLAG(int64_t, notes_store_max_pending);
ABSL_DECLARE_FLAG(bool, http2_bdp_probe);
ABSL_DECLARE_FLAG(size_t, max_notes_per_location);

namespace routeguide {
namespace {

// Each test case starts from the flags' defaults and leaves them so.
struct FlagDefaults {
  absl::FlagSaver saver;
};

TEST_CASE("The server's flag defaults are ServerOptions' defaults",
          "[flags][unit]") {
  FlagDefaults defaults;
  auto config = ServerConfigFromFlags(/*cores=*/4);
  INFO(config.status().ToString());
  REQUIRE(config.ok());
  const ServerOptions expected;
  const ServerOptions& got = config->server;
  CHECK(got.address == expected.address);
  CHECK(got.reuse_port == expected.reuse_port);
  CHECK(got.http2_guard == expected.http2_guard);
  CHECK(got.max_client_resets == expected.max_client_resets);
  CHECK(got.http2_guard_nice == expected.http2_guard_nice);
  CHECK(got.http2_guard_spin == expected.http2_guard_spin);
  CHECK(got.http2_guard_spin == absl::Microseconds(100));  // As documented.
  CHECK(got.handshake_timeout == expected.handshake_timeout);
  CHECK(got.calls_per_method_per_queue == expected.calls_per_method_per_queue);
  CHECK(got.grace == expected.grace);
  CHECK(got.stream_idle_timeout == expected.stream_idle_timeout);
  CHECK(got.health_drain == expected.health_drain);
  CHECK(got.health_drain == absl::Seconds(1));  // What --health_drain has said.
  CHECK(got.reflection == expected.reflection);
  CHECK(got.max_message_bytes == expected.max_message_bytes);
  CHECK(got.max_metadata_bytes == expected.max_metadata_bytes);
  CHECK(got.max_note_bytes == expected.max_note_bytes);
  CHECK(got.max_reflection_request_bytes == expected.max_reflection_request_bytes);
  CHECK(got.max_queued_replies == expected.max_queued_replies);
  CHECK(got.max_concurrent_streams == expected.max_concurrent_streams);
  CHECK(got.min_ping_interval == expected.min_ping_interval);
  CHECK(got.http2_bdp_probe == expected.http2_bdp_probe);
  CHECK(got.max_connection_idle == expected.max_connection_idle);
  CHECK(got.max_connection_age == expected.max_connection_age);
  CHECK(got.max_connection_age_grace == expected.max_connection_age_grace);
  CHECK(got.max_memory_bytes == expected.max_memory_bytes);
  CHECK(config->store.max_notes == FeatureStoreOptions{}.max_notes);
  CHECK(config->store.max_notes_per_location ==
        FeatureStoreOptions{}.max_notes_per_location);
  CHECK(config->memory_trim_interval == ServerConfig{}.memory_trim_interval);
  CHECK_FALSE(config->shared_notes.has_value());  // --notes_store=memory
  // 0 threads is one per core, 0 queues one per thread.
  CHECK(got.threads == 4);
  CHECK(got.completion_queues == 4);
}

TEST_CASE("The BDP probe flag reaches the server's options, on by default as in gRPC",
          "[flags][unit]") {
  FlagDefaults defaults;
  bool probe = true;
  SECTION("by default") {}
  SECTION("turned off") {
    absl::SetFlag(&FLAGS_http2_bdp_probe, false);
    probe = false;
  }
  auto config = ServerConfigFromFlags(4);
  INFO(config.status().ToString());
  REQUIRE(config.ok());
  CHECK(config->server.http2_bdp_probe == probe);
}

TEST_CASE("A bad thread count is reported as such, not as a queue count",
          "[flags][unit]") {
  FlagDefaults defaults;
  absl::SetFlag(&FLAGS_threads, -1);
  auto config = ServerConfigFromFlags(4);
  REQUIRE_FALSE(config.ok());
  const std::string message(config.status().message());
  CAPTURE(message);
  CHECK(absl::StartsWith(message, "--threads must be at least 1"));
  CHECK(absl::StrContains(message, "-1"));
  CHECK_FALSE(absl::StrContains(message, "--cqs"));
}

TEST_CASE("Out-of-range flags name the flag and what it must be", "[flags][unit]") {
  FlagDefaults defaults;
  std::string expected;
  SECTION("more queues than threads") {
    absl::SetFlag(&FLAGS_threads, 2);
    absl::SetFlag(&FLAGS_cqs, 3);
    expected = "--cqs (3) must not be more than --threads (2)";
  }
  SECTION("a negative queue count") {
    absl::SetFlag(&FLAGS_cqs, -2);
    expected = "--cqs must be at least 1, or 0 for one per thread (got -2)";
  }
  SECTION("a message size beyond what int holds") {
    absl::SetFlag(&FLAGS_max_message_size, std::string("8GiB"));
    expected = "--max_message_size must be 1 byte to 4MiB";
  }
  SECTION("a message size that is not a size") {
    absl::SetFlag(&FLAGS_max_message_size, std::string("lots"));
    expected = "--max_message_size: 'lots' is not a size";
  }
  SECTION("a trim interval too short to be worth a heap walk") {
    absl::SetFlag(&FLAGS_memory_trim_interval, absl::Milliseconds(10));
    expected = "--memory_trim_interval must be 0 (never) or at least 100ms (got 10ms)";
  }
  SECTION("a port past 65535") {
    absl::SetFlag(&FLAGS_address, std::string("127.0.0.1:99999"));
    expected = "--address 127.0.0.1:99999: the port must be a number from 0 to 65535";
  }
  SECTION("a notes store that is neither memory nor Redis") {
    absl::SetFlag(&FLAGS_notes_store, std::string("postgres://db:5432"));
    expected = "--notes_store=postgres://db:5432: unknown store (expected memory, "
               "redis://HOST:PORT[/DB] or unix:///path/to/redis.sock)";
  }
  SECTION("a Redis timeout of zero") {
    absl::SetFlag(&FLAGS_notes_store, std::string("redis://127.0.0.1:6379"));
    absl::SetFlag(&FLAGS_notes_store_timeout, absl::ZeroDuration());
    expected = "--notes_store_timeout must be between 1ms and 1m (got 0)";
  }
  SECTION("a Redis TTL under a second") {
    absl::SetFlag(&FLAGS_notes_store, std::string("redis://127.0.0.1:6379"));
    absl::SetFlag(&FLAGS_notes_ttl, absl::Milliseconds(10));
    expected = "--notes_ttl must be at least 1s (got 10ms)";
  }
  SECTION("no pending Redis requests allowed at all") {
    absl::SetFlag(&FLAGS_notes_store, std::string("redis://127.0.0.1:6379"));
    absl::SetFlag(&FLAGS_notes_store_max_pending, int64_t{0});
    expected = "--notes_store_max_pending must be at least 1";
  }
  auto config = ServerConfigFromFlags(4);
  REQUIRE_FALSE(config.ok());
  CHECK(config.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(absl::StartsWith(config.status().message(), expected));
}

TEST_CASE("--notes_store=redis://... fills the Redis options from the flags",
          "[flags][unit][redis]") {
  FlagDefaults defaults;
  absl::SetFlag(&FLAGS_notes_store, std::string("redis://10.0.0.7:6380/3"));
  absl::SetFlag(&FLAGS_max_notes_per_location, size_t{7});
  auto config = ServerConfigFromFlags(4);
  INFO(config.status().ToString());
  REQUIRE(config.ok());
  REQUIRE(config->shared_notes.has_value());
  const RedisNotesStoreOptions& redis = *config->shared_notes;
  const RedisNotesStoreOptions defaults_of_redis;
  CHECK(redis.address.host == "10.0.0.7");
  CHECK(redis.address.port == 6380);
  CHECK(redis.address.database == 3);
  CHECK(redis.address.ToString() == "redis://10.0.0.7:6380/3");
  CHECK(redis.timeout == defaults_of_redis.timeout);
  CHECK(redis.timeout == absl::Milliseconds(500));  // What the issue asked.
  CHECK(redis.ttl == absl::Hours(24));
  CHECK(redis.max_pending == 10000);
  // The one per-location bound applies to both stores.
  CHECK(redis.max_notes_per_location == 7);
  CHECK(redis.password.empty());
}

TEST_CASE("Notes store addresses parse, or say what is accepted", "[flags][unit][redis]") {
  SECTION("memory is the in-process store") {
    auto parsed = ParseNotesStore("memory");
    REQUIRE(parsed.ok());
    CHECK_FALSE(parsed->has_value());
  }
  SECTION("redis:// without a port or database takes 6379 and 0") {
    auto parsed = ParseNotesStore("redis://cache.internal");
    REQUIRE(parsed.ok());
    REQUIRE(parsed->has_value());
    CHECK((*parsed)->host == "cache.internal");
    CHECK((*parsed)->port == 6379);
    CHECK((*parsed)->database == 0);
    CHECK((*parsed)->ToString() == "redis://cache.internal:6379");
  }
  SECTION("an IPv6 literal in brackets") {
    auto parsed = ParseNotesStore("redis://[::1]:7000/2");
    REQUIRE(parsed.ok());
    REQUIRE(parsed->has_value());
    CHECK((*parsed)->host == "::1");
    CHECK((*parsed)->port == 7000);
    CHECK((*parsed)->database == 2);
    CHECK((*parsed)->ToString() == "redis://[::1]:7000/2");
  }
  SECTION("a Unix socket") {
    auto parsed = ParseNotesStore("unix:///run/redis/redis.sock");
    REQUIRE(parsed.ok());
    REQUIRE(parsed->has_value());
    CHECK((*parsed)->unix_path == "/run/redis/redis.sock");
    CHECK((*parsed)->ToString() == "unix:///run/redis/redis.sock");
  }
  std::string bad;
  std::string why;
  SECTION("a relative socket path") {
    bad = "unix://redis.sock";
    why = "the socket path must be absolute";
  }
  SECTION("a password in the address, where logs would show it") {
    bad = "redis://:secret@127.0.0.1:6379";
    why = "put the password in --notes_store_password_file";
  }
  SECTION("a port out of range") {
    bad = "redis://127.0.0.1:70000";
    why = "the port must be 1..65535";
  }
  SECTION("a database that is not a number") {
    bad = "redis://127.0.0.1:6379/notes";
    why = "the database must be a number >= 0";
  }
  SECTION("no host") {
    bad = "redis://:6379";
    why = "no host";
  }
  if (!bad.empty()) {
    auto parsed = ParseNotesStore(bad);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(absl::StartsWith(parsed.status().message(),
                           absl::StrCat("--notes_store=", bad, ": ", why)));
  }
}

TEST_CASE("Each location's notes are one Redis key that names the point",
          "[redis][unit]") {
  CHECK(NotesKey(GeoPoint{409146138, -746188906}) ==
        "routeguide:notes:409146138:-746188906");
  CHECK(NotesKey(GeoPoint{0, 0}) == "routeguide:notes:0:0");
  // Neighbouring points never share a key.
  CHECK(NotesKey(GeoPoint{1, 23}) != NotesKey(GeoPoint{12, 3}));
}

TEST_CASE("ValidateServerOptions names the first bad field by its flag",
          "[flags][unit]") {
  ServerOptions options;
  std::string expected;
  SECTION("defaults are good") { expected = ""; }
  SECTION("threads") {
    options.threads = 0;
    expected = "--threads must be at least 1 (got 0)";
  }
  SECTION("queues") {
    options.completion_queues = 0;
    expected = "--cqs must be at least 1 (got 0)";
  }
  SECTION("the guard's nice value") {
    options.http2_guard_nice = 20;
    expected = "--http2_guard_nice must be 0 to 19 (got 20)";
  }
  SECTION("a guard spin past a second") {
    options.http2_guard_spin = absl::Seconds(2);
    expected = "--http2_guard_spin must be 0 to 1s (got 2s)";
  }
  SECTION("a negative guard spin") {
    options.http2_guard_spin = absl::Microseconds(-5);
    expected = "--http2_guard_spin must be 0 to 1s (got -5us)";
  }
  SECTION("calls per queue") {
    options.calls_per_method_per_queue = 0;
    expected = "--calls_per_queue must be at least 1 (got 0)";
  }
  SECTION("a negative drain") {
    options.health_drain = absl::Seconds(-1);
    expected = "--health_drain must not be negative (got -1s)";
  }
  SECTION("a zero idle timeout") {
    options.stream_idle_timeout = absl::ZeroDuration();
    expected = "--stream_idle_timeout must be positive (got 0)";
  }
  SECTION("a note longer than a message") {
    options.max_message_bytes = 1024;
    options.max_note_bytes = 2048;
    expected = "--max_note_size must be 1 byte to --max_message_size";
  }
  SECTION("a reflection request bound of nothing") {
    options.max_reflection_request_bytes = 0;
    expected = "--max_reflection_request_size must be at least 1";
  }
  SECTION("a memory quota too small") {
    options.max_memory_bytes = 1;
    expected = "--max_memory must be at least 1MiB";
  }
  SECTION("no quota at all is allowed") {
    options.max_memory_bytes = 0;
    expected = "";
  }
  const absl::Status status = ValidateServerOptions(options);
  CAPTURE(status.ToString());
  if (expected.empty()) {
    CHECK(status.ok());
  } else {
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK(absl::StartsWith(status.message(), expected));
  }
}

TEST_CASE("Listening addresses are checked before gRPC sees them, with TLS too",
          "[flags][unit]") {
  ServerOptions options;
  const bool tls = GENERATE(false, true);
  CAPTURE(tls);
  // Any credentials do: validation must not leave TLS addresses to gRPC,
  // which reads a port past 65535 modulo 65536.
  if (tls) options.credentials = grpc::InsecureServerCredentials();
  for (const char* bad : {"127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1", "[::1]50051",
                          "127.0.0.1:port", "unix:"}) {
    options.address = bad;
    const absl::Status status = ValidateServerOptions(options);
    CAPTURE(bad, status.ToString());
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK(absl::StartsWith(status.message(), absl::StrCat("--address ", bad, ": ")));
  }
  for (const char* good : {"127.0.0.1:0", "[::]:50051", "localhost:65535",
                           "unix:/tmp/routeguide.sock", "ipv4:0.0.0.0:1"}) {
    options.address = good;
    CAPTURE(good);
    CHECK(ValidateServerOptions(options).ok());
  }
}

TEST_CASE("A directory given as a file is called a directory", "[files][unit]") {
  const char* base = std::getenv("TMPDIR");
  const std::string dir = (base != nullptr && *base != '\0') ? base : "/tmp";
  auto read = ReadWholeFile(dir);
  CHECK(read.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(read.status().message() == dir + ": is a directory, not a file");
  auto loaded = LoadFeatureDbFile(dir);
  REQUIRE_FALSE(loaded.ok());
  CHECK(absl::StrContains(loaded.status().message(), "is a directory"));
  CHECK_FALSE(absl::StrContains(loaded.status().message(), "JSON"));
}

TEST_CASE("Byte sizes print the way the flags take them", "[flags][unit]") {
  CHECK(FormatByteSize(4 * 1024 * 1024) == "4MiB");
  CHECK(FormatByteSize(16 * 1024) == "16KiB");
  CHECK(FormatByteSize(int64_t{1} << 30) == "1GiB");
  CHECK(FormatByteSize(1000) == "1000");
  CHECK(FormatByteSize(0) == "0");
  for (int64_t bytes : {int64_t{0}, int64_t{4096}, int64_t{3} << 20, int64_t{12345}}) {
    CHECK(*ParseByteSize(FormatByteSize(bytes)) == bytes);
  }
}

// A heap whose free bytes the test sets, counting trims; each trim hands
// back `releasable` resident bytes.
struct FakeHeap {
  size_t free_bytes = 0;
  size_t resident = 0;
  size_t releasable = 0;
  int trims = 0;
  Heap AsHeap() {
    return Heap{[this] { return free_bytes; },
                [this] {
                  ++trims;
                  resident -= releasable;
                  releasable = 0;
                },
                [this] { return resident; }};
  }
};

constexpr size_t kMiB = 1024 * 1024;

TEST_CASE("The trimmer trims once 16 MiB were freed since the low point",
          "[memory][unit]") {
  FakeHeap heap;
  heap.free_bytes = 10 * kMiB;
  heap.resident = 200 * kMiB;
  HeapTrimmer trimmer(absl::Seconds(10), heap.AsHeap());
  CHECK(trimmer.tick_interval() == absl::Seconds(10));

  // Free bytes fall (a wave allocates), then rise as it ends.
  heap.free_bytes = 2 * kMiB;
  CHECK_FALSE(trimmer.OnTick());
  heap.free_bytes = 17 * kMiB;  // 15 MiB above the low point: not yet.
  CHECK_FALSE(trimmer.OnTick());
  heap.free_bytes = 18 * kMiB;  // 16 MiB above it.
  CHECK(trimmer.OnTick());
  CHECK(heap.trims == 1);
  // Trimmed pages still count as free: measured from here, no trim again
  // until another 16 MiB are freed (that trim handed nothing back, so no
  // retry comes soon).
  CHECK_FALSE(trimmer.OnTick());
  heap.free_bytes = 33 * kMiB;
  CHECK_FALSE(trimmer.OnTick());
  heap.free_bytes = 34 * kMiB;
  CHECK(trimmer.OnTick());
  CHECK(heap.trims == 2);
}

// The ticks on which `trimmer` trims among the next `ticks`, counted from 1.
std::vector<int> TrimmingTicks(HeapTrimmer& trimmer, int ticks) {
  std::vector<int> trimmed_on;
  for (int tick = 1; tick <= ticks; ++tick) {
    if (trimmer.OnTick()) trimmed_on.push_back(tick);
  }
  return trimmed_on;
}

TEST_CASE("The trimmer retries while the heap holds 16 MiB free, backing off "
          "while trims hand nothing back",
          "[memory][unit]") {
  FakeHeap heap;
  heap.resident = 200 * kMiB;
  HeapTrimmer trimmer(absl::Seconds(1), heap.AsHeap());
  // A burst ends: 90 MiB freed, of which the trim can return 40 MiB.
  heap.free_bytes = 90 * kMiB;
  heap.releasable = 40 * kMiB;
  REQUIRE(trimmer.OnTick());
  REQUIRE(heap.resident == 160 * kMiB);

  SECTION("a quiet heap: waits of 1, 2, 4, 8, then 16 ticks at most") {
    CHECK(TrimmingTicks(trimmer, 80) ==
          std::vector<int>{1, 3, 7, 15, 31, 47, 63, 79});
  }
  SECTION("pages that came free since: the wait starts over") {
    REQUIRE(TrimmingTicks(trimmer, 7) == std::vector<int>{1, 3, 7});
    // A client's last chunks are freed: 20 MiB of pages come free while
    // free bytes barely move. The next retry (8 ticks on) returns them,
    // and the one after comes on the next tick.
    heap.free_bytes += kMiB / 2;
    heap.releasable = 20 * kMiB;
    CHECK(TrimmingTicks(trimmer, 10) == std::vector<int>{8, 9});
    CHECK(heap.resident == 140 * kMiB);
  }
  SECTION("no retry once the heap holds less than 16 MiB free") {
    heap.free_bytes = 15 * kMiB;  // A new wave took most of it.
    CHECK(TrimmingTicks(trimmer, 40).empty());
  }
}

TEST_CASE("The trimmer never trims on a tick with a zero interval, but on request",
          "[memory][unit]") {
  FakeHeap heap;
  HeapTrimmer trimmer(absl::ZeroDuration(), heap.AsHeap());
  // The signal loop still wakes now and then; ticks then do nothing.
  CHECK(trimmer.tick_interval() == absl::Hours(1));
  heap.free_bytes = 100 * kMiB;
  CHECK_FALSE(trimmer.OnTick());
  CHECK(heap.trims == 0);
  trimmer.TrimNow();  // After loading, or for a status report.
  CHECK(heap.trims == 1);
}

TEST_CASE("TrimNow resets the low point", "[memory][unit]") {
  FakeHeap heap;
  HeapTrimmer trimmer(absl::Seconds(1), heap.AsHeap());
  heap.free_bytes = 20 * kMiB;
  trimmer.TrimNow();
  heap.free_bytes = 30 * kMiB;  // 10 MiB above the last trim.
  CHECK_FALSE(trimmer.OnTick());
  CHECK(heap.trims == 1);
}

}  // namespace
}  // namespace routeguide
