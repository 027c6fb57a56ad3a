#ifndef ROUTEGUIDE_COMMON_LOGGING_H_
#define ROUTEGUIDE_COMMON_LOGGING_H_

#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "spdlog/common.h"

namespace routeguide {

// "trace", "debug", "info", "warn", "error", "critical" or "off".
absl::StatusOr<spdlog::level::level_enum> ParseLogLevel(absl::string_view name);

// Sends the default logger to stderr (stdout is the client's output) at
// `level`.
void InitLogging(spdlog::level::level_enum level);

// Sends gRPC's own log lines through the default logger in our format,
// filtered by the same `level` (gRPC's errors at error, its info and
// debug lines at debug), naming gRPC's file and line. Call after InitLogging
// and before gRPC is first used. protobuf's log lines (it logs each
// message that fails to parse) come through alike, at warn, and both
// share a budget of 20 lines a second, since a client can cause them.
void RouteGrpcLogs(spdlog::level::level_enum level);

// Called with the text of every error gRPC logs, whatever the log level,
// on the thread that logs it: lets a binary react to failures that gRPC
// reports only in its log. Must be quick and must not log through gRPC.
using GrpcErrorWatcher = void (*)(absl::string_view message);
void WatchGrpcErrors(GrpcErrorWatcher watcher);

}  // namespace routeguide

#endif  // ROUTEGUIDE_COMMON_LOGGING_H_
