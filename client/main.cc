// routeguide-client: the RouteGuide tutorial walkthrough (and, later, a load
// generator), on gRPC's completion-queue API.
#include <cstdio>
#include <iostream>
#include <memory>
#include <random>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "flags.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "tutorial.h"

ABSL_FLAG(std::string, target, "localhost:50051",
          "Server to call: HOST:PORT or a gRPC target URI");
ABSL_FLAG(absl::Duration, deadline, absl::Seconds(10), "Deadline of each call");
ABSL_FLAG(absl::Duration, connect_timeout, absl::Seconds(5),
          "How long to wait for the first connection before giving up");
ABSL_FLAG(uint64_t, seed, 0,
          "Seed for RecordRoute's random points; 0 for a fresh one each run");

namespace routeguide {
namespace {

constexpr char kUsage[] =
    "routeguide-client tutorial [flags]\n\n"
    "tutorial: runs the RouteGuide tutorial's walkthrough against --target\n"
    "and prints it as the tutorial's client does. Exit code 0 on success, 1\n"
    "when a call fails, 2 for bad flags or a server that cannot be reached.\n"
    "Flag names take '-' or '_' alike.";

int Run(int argc, char** argv) {
  const std::vector<char*> args = ParseFlagsOrExit(argc, argv, kUsage);
  if (args.size() != 2 || std::string(args[1]) != "tutorial") {
    ExitWithUsageError(
        "expected one command: tutorial (see routeguide-client --help)");
  }
  const absl::Duration deadline = absl::GetFlag(FLAGS_deadline);
  const absl::Duration connect_timeout = absl::GetFlag(FLAGS_connect_timeout);
  if (deadline <= absl::ZeroDuration() ||
      connect_timeout <= absl::ZeroDuration()) {
    ExitWithUsageError("--deadline and --connect_timeout must be positive");
  }
  const std::string target = absl::GetFlag(FLAGS_target);
  if (target.empty()) ExitWithUsageError("--target must not be empty");

  auto channel =
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(
          absl::ToChronoTime(absl::Now() + connect_timeout))) {
    ExitWithUsageError(absl::StrCat("cannot reach a server at ", target,
                                    " within ",
                                    absl::FormatDuration(connect_timeout)));
  }

  TutorialOptions options;
  options.call.deadline = deadline;
  options.seed = absl::GetFlag(FLAGS_seed);
  if (options.seed == 0) options.seed = std::random_device()();

  const absl::Status status = RunTutorial(channel, options, std::cout);
  std::cout.flush();
  if (!status.ok()) {
    std::fprintf(stderr, "routeguide-client: error: %s\n",
                 status.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace routeguide

int main(int argc, char** argv) { return routeguide::Run(argc, argv); }
