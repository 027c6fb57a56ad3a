#include "server_flags.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "credentials.h"
#include "flags.h"
#include "logging.h"

namespace {

// Every default comes from the structs the flags fill in.
const routeguide::ServerOptions kDefaults;
const routeguide::FeatureStoreOptions kStoreDefaults;
const routeguide::ServerConfig kConfigDefaults;
const routeguide::RedisNotesStoreOptions kRedisDefaults;

using routeguide::FormatByteSize;

}  // namespace

ABSL_FLAG(std::string, address, kDefaults.address,
          "HOST:PORT, [V6]:PORT or unix:PATH to listen on (port 0 picks a "
          "free port)");
ABSL_FLAG(bool, reuseport, kDefaults.reuse_port,
          "Share the port with other servers started with --reuseport "
          "(SO_REUSEPORT: the kernel spreads new connections over them); "
          "without it a port in use stops start-up");
ABSL_FLAG(bool, http2_guard, kDefaults.http2_guard,
          "Plaintext: relay each connection through a guard that closes "
          "clients resetting streams faster than the server completes them "
          "(HTTP/2 rapid reset, which gRPC 1.51 cannot withstand) or not "
          "acknowledging SETTINGS within --handshake_timeout");
ABSL_FLAG(int64_t, max_client_resets, kDefaults.max_client_resets,
          "HTTP/2 guard: close a connection whose client resets more than "
          "this many streams within a second, and more than the server "
          "completed on it in that second");
ABSL_FLAG(int, http2_guard_nice, kDefaults.http2_guard_nice,
          "HTTP/2 guard: how much nicer its thread runs than the server's "
          "(0 to 19; nice 19 at most); below the pollers it relays in larger "
          "batches (faster on a busy core)");
ABSL_FLAG(absl::Duration, http2_guard_spin, kDefaults.http2_guard_spin,
          "HTTP/2 guard: the longest its thread keeps polling, once idle, "
          "before it sleeps (0 to 1s; 0: off); within it, only as long as "
          "recent gaps between events suggest it pays. Calls made one at a "
          "time answer sooner; events closer together than this keep its "
          "core busy (plaintext with --http2_guard only)");
ABSL_FLAG(absl::Duration, handshake_timeout, kDefaults.handshake_timeout,
          "Close a connection that has not completed its handshake (TLS, and "
          "HTTP/2's client preface) within this long");
ABSL_FLAG(std::string, db, "",
          "Feature database, a JSON file in the tutorial's format; empty for "
          "the built-in 100 features of the tutorial");
ABSL_FLAG(int, threads, 0,
          "Poller threads in all; 0 for one per core the process may use "
          "(its CPU affinity)");
ABSL_FLAG(int, cqs, 0,
          "Completion queues, each polled by threads/cqs of the threads; 0 "
          "for one per thread");
ABSL_FLAG(int, calls_per_queue, kDefaults.calls_per_method_per_queue,
          "Requests kept posted per method per completion queue");
ABSL_FLAG(absl::Duration, grace, kDefaults.grace,
          "On SIGINT/SIGTERM, how long calls in flight may take to finish "
          "before they are cancelled");
ABSL_FLAG(absl::Duration, health_drain, kDefaults.health_drain,
          "On SIGINT/SIGTERM, how long health checks answer NOT_SERVING while "
          "calls are still accepted, before the server stops accepting (part "
          "of --grace)");
ABSL_FLAG(absl::Duration, stream_idle_timeout, kDefaults.stream_idle_timeout,
          "End a RecordRoute, RouteChat or server reflection stream whose "
          "client makes no progress for this long with DEADLINE_EXCEEDED "
          "(inf: never)");
ABSL_FLAG(size_t, max_notes_per_location, kStoreDefaults.max_notes_per_location,
          "RouteChat: notes kept per location, oldest dropped first");
ABSL_FLAG(size_t, max_notes, kStoreDefaults.max_notes,
          "RouteChat: notes kept in all, oldest dropped first (the memory "
          "store; with Redis, --notes_ttl and Redis's maxmemory bound them)");
ABSL_FLAG(std::string, notes_store, "memory",
          "Where RouteChat's notes live: memory (this process), or shared by "
          "every replica pointing at the same Redis: redis://HOST:PORT[/DB] "
          "or unix:///path/to/redis.sock");
ABSL_FLAG(std::string, notes_store_password_file, "",
          "Redis: a file whose first line is the password to AUTH with");
ABSL_FLAG(absl::Duration, notes_store_timeout, kRedisDefaults.timeout,
          "Redis: a note the store has not answered within this ends its "
          "RouteChat with UNAVAILABLE");
ABSL_FLAG(absl::Duration, notes_ttl, kRedisDefaults.ttl,
          "Redis: a location's notes expire this long after its last note");
ABSL_FLAG(int64_t, notes_store_max_pending, kRedisDefaults.max_pending,
          "Redis: notes sent and not yet answered; past it RouteChat gets "
          "RESOURCE_EXHAUSTED");
ABSL_FLAG(std::string, log_level, "info",
          "trace, debug, info, warn, error, critical or off");
ABSL_FLAG(std::string, metrics_address, "",
          "Serve Prometheus metrics at http://HOST:PORT/metrics (off when "
          "empty; needs a build with prometheus-cpp)");
ABSL_FLAG(bool, reflection, kDefaults.reflection,
          "Serve gRPC server reflection, so generic tools (grpcurl, grpc_cli) "
          "can list and call the service");
ABSL_FLAG(std::string, tls_cert, "", "TLS: the server's certificate chain (PEM)");
ABSL_FLAG(std::string, tls_key, "", "TLS: the server's private key (PEM)");
ABSL_FLAG(std::string, tls_client_ca, "",
          "Mutual TLS: only clients with a certificate signed by this CA "
          "(PEM) get in");
ABSL_FLAG(std::string, auth_token_file, "",
          "When set, every RouteGuide call must carry 'authorization: Bearer "
          "<token>' with the token on this file's first line (health checks "
          "are exempt)");
ABSL_FLAG(std::string, max_message_size, FormatByteSize(kDefaults.max_message_bytes),
          "Largest message received; bigger ones get RESOURCE_EXHAUSTED");
ABSL_FLAG(std::string, max_metadata_size, FormatByteSize(kDefaults.max_metadata_bytes),
          "Largest request metadata (headers) a call may carry; a bigger one "
          "is refused with RESOURCE_EXHAUSTED");
ABSL_FLAG(std::string, max_note_size, FormatByteSize(kDefaults.max_note_bytes),
          "Longest RouteChat note; a longer one ends the call with "
          "INVALID_ARGUMENT");
ABSL_FLAG(std::string, max_reflection_request_size,
          FormatByteSize(kDefaults.max_reflection_request_bytes),
          "Largest server reflection request; a bigger one ends the call with "
          "INVALID_ARGUMENT");
ABSL_FLAG(size_t, max_queued_replies, kDefaults.max_queued_replies,
          "RouteChat: replies one call may queue before it stops reading the "
          "client's notes until they are sent");
ABSL_FLAG(int, max_concurrent_streams, kDefaults.max_concurrent_streams,
          "Calls in flight per connection; more wait for a free stream");
ABSL_FLAG(absl::Duration, min_ping_interval, kDefaults.min_ping_interval,
          "Keepalive enforcement: pings without data closer than this are "
          "strikes, two strikes close the connection");
ABSL_FLAG(bool, http2_bdp_probe, kDefaults.http2_bdp_probe,
          "Probe each connection's bandwidth-delay product with pings and "
          "widen its receive window to match (gRPC's BDP probing)");
ABSL_FLAG(absl::Duration, max_connection_idle, kDefaults.max_connection_idle,
          "Close connections with no call for this long (inf: never)");
ABSL_FLAG(absl::Duration, max_connection_age, kDefaults.max_connection_age,
          "Close connections this old, gracefully (inf: never)");
ABSL_FLAG(absl::Duration, max_connection_age_grace, kDefaults.max_connection_age_grace,
          "After --max_connection_age, how long calls still open may go on "
          "before the connection is closed under them (inf: until they end)");
ABSL_FLAG(std::string, max_memory, FormatByteSize(kDefaults.max_memory_bytes),
          "gRPC resource quota for the server's buffers; near it, gRPC sheds "
          "load by closing connections (GOAWAY) and resetting busy streams "
          "with RESOURCE_EXHAUSTED; new connections are still accepted. At "
          "least 1MiB; 0 means no quota at all, which leaves the server's "
          "memory unbounded against hostile clients (unsafe)");
ABSL_FLAG(absl::Duration, memory_trim_interval, kConfigDefaults.memory_trim_interval,
          "How often to check whether 16MiB or more of the heap has been "
          "freed (a wave of calls or connections, a large message), and if "
          "so hand it back to the system; while 16MiB stay free, trims are "
          "retried, less often while they hand nothing back (0: never; else "
          "at least 100ms)");

namespace routeguide {
namespace {

absl::Status AtLeastOne(absl::string_view flag, int64_t value) {
  if (value >= 1) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, " must be at least 1 (got ", value, ")"));
}

// A size flag's value as bytes, clamped to int's range: the caller's range
// check then names the flag rather than an overflow.
absl::StatusOr<int64_t> SizeFlag(absl::string_view flag, const std::string& text) {
  auto bytes = ParseByteSize(text);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", bytes.status().message()));
  }
  return *bytes;
}

int ClampToInt(int64_t value) { return static_cast<int>(std::min<int64_t>(value, INT_MAX)); }

// --threads and --cqs take 0 for "one per core" and "one per thread".
absl::Status ResolveThreads(int cores, ServerOptions& options) {
  options.threads = absl::GetFlag(FLAGS_threads);
  options.completion_queues = absl::GetFlag(FLAGS_cqs);
  if (options.threads < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--threads must be at least 1, or 0 for one per core (got ", options.threads, ")"));
  }
  if (options.completion_queues < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--cqs must be at least 1, or 0 for one per thread (got ",
                     options.completion_queues, ")"));
  }
  if (options.threads == 0) options.threads = cores;
  if (options.completion_queues == 0) options.completion_queues = options.threads;
  return absl::OkStatus();
}

absl::Status ReadSizes(ServerOptions& options) {
  auto message = SizeFlag("max_message_size", absl::GetFlag(FLAGS_max_message_size));
  if (!message.ok()) return message.status();
  auto metadata = SizeFlag("max_metadata_size", absl::GetFlag(FLAGS_max_metadata_size));
  if (!metadata.ok()) return metadata.status();
  auto note = SizeFlag("max_note_size", absl::GetFlag(FLAGS_max_note_size));
  if (!note.ok()) return note.status();
  auto reflection_request = SizeFlag("max_reflection_request_size",
                                     absl::GetFlag(FLAGS_max_reflection_request_size));
  if (!reflection_request.ok()) return reflection_request.status();
  auto memory = SizeFlag("max_memory", absl::GetFlag(FLAGS_max_memory));
  if (!memory.ok()) return memory.status();
  options.max_message_bytes = ClampToInt(*message);
  options.max_metadata_bytes = ClampToInt(*metadata);
  options.max_note_bytes = static_cast<size_t>(*note);
  options.max_reflection_request_bytes = static_cast<size_t>(*reflection_request);
  options.max_memory_bytes = *memory;
  return absl::OkStatus();
}

}  // namespace

absl::Status ReadServerCredentials(ServerOptions& options) {
  const std::string tls_cert = absl::GetFlag(FLAGS_tls_cert);
  const std::string tls_key = absl::GetFlag(FLAGS_tls_key);
  const std::string tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  if (!tls_cert.empty() || !tls_key.empty() || !tls_client_ca.empty()) {
    auto credentials = ServerTls(tls_cert, tls_key, tls_client_ca);
    if (!credentials.ok()) return credentials.status();
    options.credentials = *credentials;
  }
  if (const std::string path = absl::GetFlag(FLAGS_auth_token_file); !path.empty()) {
    auto token = ReadTokenFile(path);
    if (!token.ok()) return token.status();
    options.auth_token = *token;
  }
  return absl::OkStatus();
}

absl::Status ReadNotesStorePassword(ServerConfig& config) {
  const std::string path = absl::GetFlag(FLAGS_notes_store_password_file);
  if (path.empty()) return absl::OkStatus();
  if (!config.shared_notes.has_value()) {
    return absl::InvalidArgumentError(
        "--notes_store_password_file needs --notes_store=redis://... or unix://...");
  }
  auto password = ReadTokenFile(path);
  if (!password.ok()) return password.status();
  config.shared_notes->password = *password;
  return absl::OkStatus();
}

absl::Status ValidateMemoryTrimInterval(absl::Duration interval) {
  if (interval == absl::ZeroDuration() || interval >= absl::Milliseconds(100)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--memory_trim_interval must be 0 (never) or at least 100ms (got ",
      absl::FormatDuration(interval), ")"));
}

absl::StatusOr<ServerConfig> ServerConfigFromFlags(int cores) {
  ServerConfig config;
  auto level = ParseLogLevel(absl::GetFlag(FLAGS_log_level));
  if (!level.ok()) return level.status();
  config.log_level = *level;
  config.db_path = absl::GetFlag(FLAGS_db);
  config.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  config.memory_trim_interval = absl::GetFlag(FLAGS_memory_trim_interval);
  config.store.max_notes_per_location = absl::GetFlag(FLAGS_max_notes_per_location);
  config.store.max_notes = absl::GetFlag(FLAGS_max_notes);
  auto shared_notes = ParseNotesStore(absl::GetFlag(FLAGS_notes_store));
  if (!shared_notes.ok()) return shared_notes.status();
  if (shared_notes->has_value()) {
    RedisNotesStoreOptions& redis = config.shared_notes.emplace();
    redis.address = **shared_notes;
    redis.timeout = absl::GetFlag(FLAGS_notes_store_timeout);
    redis.ttl = absl::GetFlag(FLAGS_notes_ttl);
    redis.max_pending = absl::GetFlag(FLAGS_notes_store_max_pending);
    redis.max_notes_per_location = config.store.max_notes_per_location;
    if (absl::Status valid = ValidateRedisNotesStoreOptions(redis); !valid.ok()) {
      return valid;
    }
  }

  ServerOptions& options = config.server;
  options.address = absl::GetFlag(FLAGS_address);
  options.reuse_port = absl::GetFlag(FLAGS_reuseport);
  options.http2_guard = absl::GetFlag(FLAGS_http2_guard);
  options.max_client_resets = absl::GetFlag(FLAGS_max_client_resets);
  options.http2_guard_nice = absl::GetFlag(FLAGS_http2_guard_nice);
  options.http2_guard_spin = absl::GetFlag(FLAGS_http2_guard_spin);
  options.handshake_timeout = absl::GetFlag(FLAGS_handshake_timeout);
  options.calls_per_method_per_queue = absl::GetFlag(FLAGS_calls_per_queue);
  options.grace = absl::GetFlag(FLAGS_grace);
  options.health_drain = absl::GetFlag(FLAGS_health_drain);
  options.stream_idle_timeout = absl::GetFlag(FLAGS_stream_idle_timeout);
  options.reflection = absl::GetFlag(FLAGS_reflection);
  options.max_queued_replies = absl::GetFlag(FLAGS_max_queued_replies);
  options.max_concurrent_streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  options.min_ping_interval = absl::GetFlag(FLAGS_min_ping_interval);
  options.http2_bdp_probe = absl::GetFlag(FLAGS_http2_bdp_probe);
  options.max_connection_idle = absl::GetFlag(FLAGS_max_connection_idle);
  options.max_connection_age = absl::GetFlag(FLAGS_max_connection_age);
  options.max_connection_age_grace = absl::GetFlag(FLAGS_max_connection_age_grace);

  for (absl::Status status : {
           ResolveThreads(cores, options),
           ReadSizes(options),
           ValidateServerOptions(options),
           AtLeastOne("max_notes_per_location",
                      static_cast<int64_t>(config.store.max_notes_per_location)),
           AtLeastOne("max_notes", static_cast<int64_t>(config.store.max_notes)),
           ValidateMemoryTrimInterval(config.memory_trim_interval),
       }) {
    if (!status.ok()) return status;
  }
  return config;
}

}  // namespace routeguide
