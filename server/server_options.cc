#include "server_options.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "listen_sockets.h"

namespace routeguide {
namespace {

absl::Status Bad(absl::string_view flag, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, " ", what));
}

template <typename T>
absl::Status AtLeast(absl::string_view flag, T value, T minimum) {
  if (value >= minimum) return absl::OkStatus();
  return Bad(flag, absl::StrCat("must be at least ", minimum, " (got ", value, ")"));
}

absl::Status Positive(absl::string_view flag, absl::Duration value) {
  if (value > absl::ZeroDuration()) return absl::OkStatus();
  return Bad(flag, absl::StrCat("must be positive (got ", absl::FormatDuration(value), ")"));
}

absl::Status NotNegative(absl::string_view flag, absl::Duration value) {
  if (value >= absl::ZeroDuration()) return absl::OkStatus();
  return Bad(flag, absl::StrCat("must not be negative (got ", absl::FormatDuration(value), ")"));
}

}  // namespace

absl::Status ValidateServerOptions(const ServerOptions& options) {
  if (auto address = ParseListenAddress(options.address); !address.ok()) {
    return address.status();
  }
  const absl::Status checks[] = {
      AtLeast<int64_t>("max_client_resets", options.max_client_resets, 1),
      options.http2_guard_nice >= 0 && options.http2_guard_nice <= 19
          ? absl::OkStatus()
          : Bad("http2_guard_nice",
                absl::StrCat("must be 0 to 19 (got ", options.http2_guard_nice, ")")),
      options.http2_guard_spin >= absl::ZeroDuration() &&
              options.http2_guard_spin <= kMaxGuardSpin
          ? absl::OkStatus()
          : Bad("http2_guard_spin",
                absl::StrCat("must be 0 to ", absl::FormatDuration(kMaxGuardSpin), " (got ",
                             absl::FormatDuration(options.http2_guard_spin), ")")),
      Positive("handshake_timeout", options.handshake_timeout),
      AtLeast("threads", options.threads, 1),
      AtLeast("cqs", options.completion_queues, 1),
      options.completion_queues <= options.threads
          ? absl::OkStatus()
          : Bad("cqs", absl::StrCat("(", options.completion_queues,
                                    ") must not be more than --threads (",
                                    options.threads, "): each queue needs a thread")),
      AtLeast("calls_per_queue", options.calls_per_method_per_queue, 1),
      NotNegative("grace", options.grace),
      Positive("stream_idle_timeout", options.stream_idle_timeout),
      NotNegative("health_drain", options.health_drain),
      options.max_message_bytes >= 1 && options.max_message_bytes <= kMaxMessageBytesLimit
          ? absl::OkStatus()
          : Bad("max_message_size", "must be 1 byte to 4MiB"),
      options.max_metadata_bytes >= 1024 && options.max_metadata_bytes <= 1024 * 1024
          ? absl::OkStatus()
          : Bad("max_metadata_size", "must be 1KiB to 1MiB"),
      options.max_note_bytes >= 1 &&
              options.max_note_bytes <= static_cast<size_t>(options.max_message_bytes)
          ? absl::OkStatus()
          : Bad("max_note_size", "must be 1 byte to --max_message_size"),
      // Over --max_message_size it changes nothing (gRPC refuses such a
      // message first), so a smaller message bound needs no change here.
      AtLeast<size_t>("max_reflection_request_size",
                      options.max_reflection_request_bytes, 1),
      AtLeast<size_t>("max_queued_replies", options.max_queued_replies, 1),
      AtLeast("max_concurrent_streams", options.max_concurrent_streams, 1),
      NotNegative("min_ping_interval", options.min_ping_interval),
      Positive("max_connection_idle", options.max_connection_idle),
      Positive("max_connection_age", options.max_connection_age),
      NotNegative("max_connection_age_grace", options.max_connection_age_grace),
      options.max_memory_bytes == 0 || options.max_memory_bytes >= kMinMemoryQuotaBytes
          ? absl::OkStatus()
          : Bad("max_memory",
                "must be at least 1MiB (below that gRPC refuses every "
                "connection), or 0 for no quota"),
  };
  for (const absl::Status& check : checks) {
    if (!check.ok()) return check;
  }
  return absl::OkStatus();
}

}  // namespace routeguide
