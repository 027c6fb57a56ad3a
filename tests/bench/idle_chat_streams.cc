// idle-chat-streams: opens many RouteChat streams to a server and keeps them
// open and idle, so a benchmark can measure what idle streams cost the
// server (its memory, above all). The streams are spread over several
// connections, because a server limits the streams of one connection.
//
// Output on stdout is two lines, for scripts to wait on:
//   open <N> streams            (once every stream has started)
//   closed <N> streams, <K> ok  (once every stream has finished)
// Between them it holds the streams until a line (or EOF) on stdin, or for
// --hold. Details and errors go to stderr.
//
// Exit code 0 when every stream opened and closed with OK, 1 when one failed
// to start, was ended by the server before we closed it, or finished with
// another status, or when a phase passed --timeout; 2 for bad flags or a
// server that cannot be reached.
//
// Threads: one. The main thread posts every operation on one completion
// queue and handles the completions itself, so no state needs a lock.
#include <poll.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "call_tags.h"
#include "flags.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "idle_chat_streams.h"
#include "logging.h"
#include "route_guide.grpc.pb.h"
#include "spdlog/spdlog.h"
#include "status_codes.h"

ABSL_FLAG(std::string, target, "", "Server to call, HOST:PORT");
ABSL_FLAG(int, streams, 10000, "RouteChat streams to open");
ABSL_FLAG(int, channels, 20,
          "Separate connections to spread the streams over (routeguide-server "
          "allows 1000 streams per connection by default)");
ABSL_FLAG(bool, send_note, false,
          "Send one small note on each stream right after it starts (at a "
          "location of its own, so the server answers nothing); otherwise "
          "the streams carry only headers");
ABSL_FLAG(absl::Duration, hold, absl::ZeroDuration(),
          "How long to hold the streams open; 0 to hold until a line or EOF "
          "on stdin");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(60),
          "Limit of each phase: connecting, opening, closing");

namespace routeguide {
namespace {

constexpr char kUsage[] =
    "idle-chat-streams --target=HOST:PORT [flags]\n\n"
    "Opens --streams RouteChat streams over --channels connections, prints\n"
    "'open <N> streams', holds them (until a line or EOF on stdin, or for\n"
    "--hold), closes each cleanly (WritesDone, then Finish) and prints\n"
    "'closed <N> streams, <K> ok'. Exit code 0 when all closed with OK, 1\n"
    "when a stream failed or a phase timed out, 2 for bad flags or a server\n"
    "that cannot be reached.";

// The limit of concurrent streams per connection routeguide-server sets by
// default; more streams than this on one channel wait for a free slot.
constexpr int kServerStreamsPerConnection = 1000;

Config ConfigFromFlags() {
  Config config;
  config.target = absl::GetFlag(FLAGS_target);
  config.streams = absl::GetFlag(FLAGS_streams);
  config.channels = absl::GetFlag(FLAGS_channels);
  config.send_note = absl::GetFlag(FLAGS_send_note);
  config.hold = absl::GetFlag(FLAGS_hold);
  config.timeout = absl::GetFlag(FLAGS_timeout);
  if (config.target.empty()) ExitWithUsageError("--target is required");
  if (config.streams < 1) ExitWithUsageError("--streams must be at least 1");
  if (config.channels < 1) ExitWithUsageError("--channels must be at least 1");
  if (config.hold < absl::ZeroDuration()) {
    ExitWithUsageError("--hold must not be negative");
  }
  if (config.timeout <= absl::ZeroDuration()) {
    ExitWithUsageError("--timeout must be positive");
  }
  if (config.channels > config.streams) config.channels = config.streams;
  const int per_channel =
      (config.streams + config.channels - 1) / config.channels;
  if (per_channel > kServerStreamsPerConnection) {
    spdlog::warn("{} streams per connection: routeguide-server allows {} by "
                 "default, the rest wait (raise --channels)",
                 per_channel, kServerStreamsPerConnection);
  }
  return config;
}

int Run(int argc, char** argv) {
  const std::vector<char*> args = ParseFlagsOrExit(argc, argv, kUsage);
  if (args.size() > 1) {
    ExitWithUsageError(absl::StrCat("unexpected argument '", args[1], "'"));
  }
  InitLogging(spdlog::level::info);
  IdleChatStreams streams(ConfigFromFlags());
  return streams.Run();
}

}  // namespace
}  // namespace routeguide

int main(int argc, char** argv) { return routeguide::Run(argc, argv); }
