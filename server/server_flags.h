#ifndef ROUTEGUIDE_SERVER_SERVER_FLAGS_H_
#define ROUTEGUIDE_SERVER_SERVER_FLAGS_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "feature_store.h"
#include "redis_notes_store.h"
#include "server_options.h"
#include "spdlog/common.h"

namespace routeguide {

// What routeguide-server's command line asks for, checked: the server's
// options, and what the binary itself does around the server.
struct ServerConfig {
  ServerOptions server;
  FeatureStoreOptions store;
  // Set when RouteChat's notes are shared through Redis (--notes_store).
  std::optional<RedisNotesStoreOptions> shared_notes;
  spdlog::level::level_enum log_level = spdlog::level::info;
  std::string db_path;          // Empty: the built-in database.
  std::string metrics_address;  // Empty: no metrics.
  // How often to hand freed heap memory back (zero: never).
  absl::Duration memory_trim_interval = absl::Seconds(10);
};

// The server binary's flags (defined in server_flags.cc, defaults from
// ServerOptions{}) as a ServerConfig; InvalidArgument naming the flag when
// a value is out of range. `cores` resolves --threads=0. Reads no file.
// Call after ParseFlagsOrExit.
absl::StatusOr<ServerConfig> ServerConfigFromFlags(int cores);

// Fills in `options`' TLS credentials and bearer token from the files the
// flags name (--tls_cert, --tls_key, --tls_client_ca, --auth_token_file);
// the error names the file and what is wrong with it.
absl::Status ReadServerCredentials(ServerOptions& options);

// Fills in the Redis password from --notes_store_password_file, when set
// (an error without a Redis store, or when the file is unreadable).
absl::Status ReadNotesStorePassword(ServerConfig& config);

// The memory-trim interval is the binary's own, checked here rather than
// in ValidateServerOptions.
absl::Status ValidateMemoryTrimInterval(absl::Duration interval);

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_SERVER_FLAGS_H_
