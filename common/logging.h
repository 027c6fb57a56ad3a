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

}  // namespace routeguide

#endif  // ROUTEGUIDE_COMMON_LOGGING_H_
