#include "logging.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace routeguide {

absl::StatusOr<spdlog::level::level_enum> ParseLogLevel(absl::string_view name) {
  static constexpr absl::string_view kNames[] = {
      "trace", "debug", "info", "warn", "error", "critical", "off"};
  for (size_t i = 0; i < std::size(kNames); ++i) {
    if (name == kNames[i]) return static_cast<spdlog::level::level_enum>(i);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown log level '", name,
      "' (expected trace, debug, info, warn, error, critical or off)"));
}

void InitLogging(spdlog::level::level_enum level) {
  auto logger = spdlog::stderr_color_mt("routeguide");
  logger->set_level(level);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace routeguide
