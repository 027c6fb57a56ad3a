#include "logging.h"

#include <atomic>
#include <string>
#include <string_view>

#include "google/protobuf/stubs/logging.h"
#include "grpc/support/log.h"

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
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

namespace {

std::atomic<GrpcErrorWatcher> grpc_error_watcher{nullptr};

// gRPC logs an error for each malformed request (a bad header, say), so a
// client could fill the disk through our log: a budget of lines per
// second, with what was held back counted in the next line let through.
constexpr int kGrpcLinesPerSecond = 20;

class LineBudget {
 public:
  // Whether a line may be logged now; `suppressed` gets how many were
  // held back since the last one that was.
  bool Take(int64_t& suppressed) {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    if (now - window_start_ >= absl::Seconds(1)) {
      window_start_ = now;
      used_ = 0;
    }
    if (used_ >= kGrpcLinesPerSecond) {
      ++suppressed_;
      return false;
    }
    ++used_;
    suppressed = suppressed_;
    suppressed_ = 0;
    return true;
  }

 private:
  absl::Mutex mu_;
  absl::Time window_start_ ABSL_GUARDED_BY(mu_);
  int used_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t suppressed_ ABSL_GUARDED_BY(mu_) = 0;
};

LineBudget& GrpcLineBudget() {
  static auto* budget = new LineBudget;  // Never destroyed: gRPC logs late.
  return *budget;
}

// Logs one line of a library's (`library`: "grpc" or "protobuf") at
// `level`, under the shared budget, naming the file by its base name.
void LogLibraryLine(spdlog::level::level_enum level, absl::string_view library,
                    const char* path, int line, absl::string_view message) {
  if (!spdlog::should_log(level)) return;
  int64_t suppressed = 0;
  if (!GrpcLineBudget().Take(suppressed)) return;
  if (suppressed > 0) {
    spdlog::warn("{} gRPC and protobuf log lines suppressed (more than {} a second)",
                 suppressed, kGrpcLinesPerSecond);
  }
  absl::string_view file = path != nullptr ? path : "?";
  if (const size_t slash = file.rfind('/'); slash != absl::string_view::npos) {
    file.remove_prefix(slash + 1);
  }
  spdlog::log(level, "{} {}:{}: {}", std::string_view(library.data(), library.size()),
              std::string_view(file.data(), file.size()), line,
              std::string_view(message.data(), message.size()));
}

void LogGrpcLine(gpr_log_func_args* line) {
  const absl::string_view message = line->message != nullptr ? line->message : "";
  if (line->severity == GPR_LOG_SEVERITY_ERROR) {
    if (GrpcErrorWatcher watcher = grpc_error_watcher.load(std::memory_order_acquire)) {
      watcher(message);
    }
  }
  // gRPC's info lines are start-up details (poller, queue counts): debug
  // for us.
  LogLibraryLine(line->severity == GPR_LOG_SEVERITY_ERROR ? spdlog::level::err
                                                          : spdlog::level::debug,
                 "grpc", line->file, line->line, message);
}

// protobuf logs an error for every message it cannot parse (a string
// that is not UTF-8, say): client input, so it shares gRPC's budget.
void LogProtobufLine(google::protobuf::LogLevel severity, const char* filename,
                     int line, const std::string& message) {
  LogLibraryLine(severity >= google::protobuf::LOGLEVEL_FATAL     ? spdlog::level::critical
                 : severity >= google::protobuf::LOGLEVEL_WARNING ? spdlog::level::warn
                                                                  : spdlog::level::debug,
                 "protobuf", filename, line, message);
}

}  // namespace

void RouteGrpcLogs(spdlog::level::level_enum level) {
  google::protobuf::SetLogHandler(LogProtobufLine);
  // gRPC drops what is below its own verbosity before the hook sees it;
  // errors always pass, so WatchGrpcErrors works at any level.
  gpr_set_log_verbosity(level <= spdlog::level::debug ? GPR_LOG_SEVERITY_DEBUG
                                                      : GPR_LOG_SEVERITY_ERROR);
  gpr_set_log_function(LogGrpcLine);
}

void WatchGrpcErrors(GrpcErrorWatcher watcher) {
  grpc_error_watcher.store(watcher, std::memory_order_release);
}

}  // namespace routeguide
