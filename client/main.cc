// routeguide-client: the RouteGuide tutorial walkthrough and a load
// generator, both on gRPC's completion-queue API.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <random>
#include <string>

#include "absl/algorithm/container.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "credentials.h"
#include "files.h"
#include "flags.h"
#include "logging.h"
#include "mutex_mode.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "hgrm_writer.h"
#include "load_generator.h"
#include "load_report.h"
#include "report_command.h"
#include "target_check.h"
#include "tutorial.h"

// Both commands.
ABSL_FLAG(std::string, target, "localhost:50051",
          "Server to call: HOST:PORT, a gRPC target URI, or (load) a comma "
          "list of IP:PORT spread round-robin");
ABSL_FLAG(std::string, log_level, "warn",
          "Diagnostics on stderr (gRPC's own included): trace, debug, info, "
          "warn, error, critical or off");
ABSL_FLAG(absl::Duration, deadline, absl::Seconds(10), "Deadline of each call");
ABSL_FLAG(absl::Duration, connect_timeout, absl::Seconds(5),
          "How long to wait for the first connection before giving up");
ABSL_FLAG(uint64_t, seed, 0,
          "Seed for the random choices (routes, points, mix); 0 for a fresh "
          "one each run");

ABSL_FLAG(std::string, tls_ca, "",
          "TLS: trust servers whose certificate this CA (PEM) signed");
ABSL_FLAG(std::string, tls_server_name, "",
          "TLS: the name to check the server's certificate against, when "
          "not the target's host");
ABSL_FLAG(std::string, tls_cert, "",
          "Mutual TLS: the client's certificate chain (PEM)");
ABSL_FLAG(std::string, tls_key, "", "Mutual TLS: the client's private key (PEM)");
ABSL_FLAG(std::string, auth_token_file, "",
          "Send 'authorization: Bearer <token>' with the token on this "
          "file's first line");

// load.
ABSL_FLAG(int, threads, 1, "load: completion queues, each with one thread");
ABSL_FLAG(int, channels, 0,
          "load: separate HTTP/2 connections (per target); 0 for one per thread");
ABSL_FLAG(std::string, mix, "get:70,list:10,record:10,chat:10",
          "load: relative weights of the call kinds; a kind at 0 is not sent");
ABSL_FLAG(int, concurrency, 64, "load: closed loop, calls kept in flight");
ABSL_FLAG(double, rps, 0,
          "load: open loop when > 0, call starts per second (latency counts "
          "from each call's scheduled start)");
ABSL_FLAG(std::string, arrival, "uniform",
          "load: open-loop spacing of starts, uniform or poisson");
ABSL_FLAG(int, max_in_flight, 10000,
          "load: open loop, starts wait above this many calls in flight");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(30),
          "load: how long to measure (after the warm-up)");
ABSL_FLAG(int64_t, requests, 0,
          "load: when > 0, end after this many measured calls");
ABSL_FLAG(absl::Duration, warmup, absl::ZeroDuration(),
          "load: run this long first without counting");
ABSL_FLAG(std::string, start_at, "",
          "load: RFC 3339 wall-clock time (2026-12-02T15:04:05Z) to wait "
          "for, after connecting, before warming up and measuring, so that "
          "generators started apart begin together; at most 1h ahead. "
          "SIGINT or SIGTERM while waiting exits 3 with no report");
ABSL_FLAG(double, hit_ratio, 0.9,
          "load: share of GetFeature/RecordRoute points that are stored features");
ABSL_FLAG(double, rect_degrees, 0.5,
          "load: side of ListFeatures' square, in degrees, around a feature");
ABSL_FLAG(std::string, list_rect, "",
          "load: LO_LAT,LO_LON,HI_LAT,HI_LON in degrees; when set, every "
          "ListFeatures asks for this rectangle (40,-75,42,-74 holds all 100 "
          "built-in features)");
ABSL_FLAG(int, route_points, 10, "load: points per RecordRoute");
ABSL_FLAG(int, chat_notes, 10, "load: notes per RouteChat");
ABSL_FLAG(int, chat_locations, 5,
          "load: distinct locations of one RouteChat's notes");
ABSL_FLAG(bool, batch_writes, routeguide::LoadOptions().batch_writes,
          "load: write each RecordRoute's points and RouteChat's notes with "
          "gRPC's buffer hint, so that gRPC sends them together with the "
          "half-close (or each 64 KiB), as a client holding them all would; "
          "without it each message is a send of its own, as from a client "
          "sending each as it comes");
ABSL_FLAG(absl::Duration, learn_deadline,
          routeguide::LoadOptions().learn_deadline,
          "load: deadline of the first call, the ListFeatures over the world "
          "that learns the server's features (exit 2 when it passes)");
ABSL_FLAG(int64_t, max_features_learnt,
          routeguide::LoadOptions().max_features_learnt,
          "load: give up (exit 2) on a server whose ListFeatures over the "
          "world sends more features than this");
ABSL_FLAG(std::string, metadata, "",
          "load: key:value added to every call; repeat for more");
ABSL_FLAG(std::string, hgrm, "",
          "load: write each kind's latency distribution, in milliseconds, "
          "as HdrHistogram percentile text to PREFIX.<kind>.hgrm (get, list, "
          "record, chat, all, list_first_message, chat_reply; docs/hgrm.md)");
ABSL_FLAG(double, max_error_rate, 0,
          "load: exit 1 when failed plus wrong calls exceed this share");
ABSL_FLAG(std::string, json, "",
          "load, report merge: write the report as JSON to this file");
ABSL_FLAG(std::string, html, "",
          "load, report merge|compare: write a self-contained HTML report to "
          "this file");

// report.
ABSL_FLAG(bool, force, false,
          "report merge: merge runs whose settings (mix, target, call shapes) "
          "differ");
ABSL_FLAG(std::string, max_regression, "",
          "report compare: limits, e.g. p99:10%,calls_per_second:5% (figures "
          "calls_per_second, p50, p90, p99, p99_9, max, error_rate); exit 1 "
          "past one. error_rate's limit is in percentage points (error_rate:1% "
          "allows 0.5% -> 1.5%) and is 0 unless named: any rise of the error "
          "rate is a regression. None: report only");

namespace routeguide {
namespace {

constexpr char kUsage[] =
    "routeguide-client tutorial|load [flags]\n"
    "routeguide-client report merge A.json B.json... [--json=OUT] [--html=OUT] [--force]\n"
    "routeguide-client report compare BASE.json NEW.json [--max_regression=p99:10%,...]"
    " [--html=OUT]\n\n"
    "tutorial: runs the RouteGuide tutorial's walkthrough against --target\n"
    "  and prints it as the tutorial's client does.\n"
    "load: drives all four RPC kinds against --target and reports calls/s,\n"
    "  messages/s, errors by status, wrong answers and latency percentiles.\n"
    "Exit code 0 on success, 1 when a call fails (tutorial) or the error rate\n"
    "passes --max_error_rate (load), 2 for bad flags, a --json, --html or --hgrm file\n"
    "that cannot be written (found before the run), or a server that cannot\n"
    "be reached or used, 3 when SIGINT or SIGTERM ended a load run early (the\n"
    "report is still printed and written; 1 instead if its error rate passed\n"
    "--max_error_rate; no report when it came while waiting for --start_at).\n"
    "report merge: one report of load runs made at the same time (--json\n"
    "  reports of this client), histograms merged exactly; exit 2 for runs\n"
    "  whose settings differ unless --force.\n"
    "report compare: each kind's calls/s, percentiles and error rate in both\n"
    "  runs and the change; exit 1 when one passes its --max_regression\n"
    "  limit, 2 for unreadable reports or bad flags. See docs/load-report.md.\n"
    "Flag names take '-' or '_' alike.";

std::atomic<bool> interrupted{false};

// SIGINT (Ctrl-C) and SIGTERM (kill, CI timeouts, container stops) alike
// end the run early and still write the reports.
void OnInterrupt(int signal_number) {
  interrupted.store(true);
  signal(signal_number, SIG_DFL);  // A second one ends the process at once.
}

uint64_t SeedFromFlag() {
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  return seed != 0 ? seed : (uint64_t{std::random_device()()} << 32) | std::random_device()();
}

template <typename T>
T OrExit(absl::StatusOr<T> value) {
  if (!value.ok()) ExitWithUsageError(value.status().message());
  return *std::move(value);
}

// TLS from the flags; null (insecure) when none is given.
std::shared_ptr<grpc::ChannelCredentials> CredentialsFromFlags() {
  const std::string ca = absl::GetFlag(FLAGS_tls_ca);
  const std::string cert = absl::GetFlag(FLAGS_tls_cert);
  const std::string key = absl::GetFlag(FLAGS_tls_key);
  if (ca.empty() && cert.empty() && key.empty()) {
    if (!absl::GetFlag(FLAGS_tls_server_name).empty()) {
      ExitWithUsageError("--tls_server_name needs TLS (--tls_ca)");
    }
    return nullptr;
  }
  return OrExit(ClientTls(ca, cert, key));
}

// "authorization: Bearer <token>" when --auth_token_file is given.
std::vector<std::pair<std::string, std::string>> AuthMetadataFromFlags() {
  const std::string path = absl::GetFlag(FLAGS_auth_token_file);
  if (path.empty()) return {};
  return {{"authorization", "Bearer " + OrExit(ReadTokenFile(path))}};
}

int RunTutorialCommand() {
  const std::string target = absl::GetFlag(FLAGS_target);
  const absl::Duration connect_timeout = absl::GetFlag(FLAGS_connect_timeout);
  auto credentials = CredentialsFromFlags();
  grpc::ChannelArguments args;
  if (const std::string name = absl::GetFlag(FLAGS_tls_server_name); !name.empty()) {
    args.SetSslTargetNameOverride(name);
  }
  auto channel = grpc::CreateCustomChannel(
      target,
      credentials != nullptr ? credentials : grpc::InsecureChannelCredentials(),
      args);
  if (absl::Status connected =
          WaitForConnectedOrExplain(*channel, target,
                                    absl::Now() + connect_timeout,
                                    connect_timeout, credentials != nullptr);
      !connected.ok()) {
    ExitWithUsageError(connected.message());
  }
  TutorialOptions options;
  options.call.deadline = absl::GetFlag(FLAGS_deadline);
  options.call.metadata = AuthMetadataFromFlags();
  options.seed = SeedFromFlag();
  const absl::Status status = RunTutorial(channel, options, std::cout);
  std::cout.flush();
  if (!status.ok()) {
    std::fprintf(stderr, "routeguide-client: error: %s\n",
                 status.ToString().c_str());
    return 1;
  }
  return 0;
}

// Exits 2 unless a report can be written to `path` (empty: no report),
// so a path that cannot be written is found before a long run rather than
// after it. An existing file is left as it is; a new one is removed again.
void CheckReportPathOrExit(const char* flag, const std::string& path) {
  if (path.empty()) return;
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd >= 0) {
    close(fd);
    unlink(path.c_str());
    return;
  }
  if (errno == EEXIST) fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    ExitWithUsageError(absl::StrCat("cannot write ", flag, " report ", path,
                                    ": ", std::strerror(error)));
  }
  close(fd);
}

int RunLoadCommand() {
  LoadOptions options;
  options.target = absl::GetFlag(FLAGS_target);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.channels = absl::GetFlag(FLAGS_channels);
  options.mix = OrExit(ParseMix(absl::GetFlag(FLAGS_mix)));
  options.concurrency = absl::GetFlag(FLAGS_concurrency);
  options.rps = absl::GetFlag(FLAGS_rps);
  options.arrival = OrExit(ParseArrival(absl::GetFlag(FLAGS_arrival)));
  if (options.rps <= 0) options.arrival = Arrival::kClosedLoop;
  options.max_in_flight = absl::GetFlag(FLAGS_max_in_flight);
  options.duration = absl::GetFlag(FLAGS_duration);
  options.requests = absl::GetFlag(FLAGS_requests);
  options.warmup = absl::GetFlag(FLAGS_warmup);
  options.hit_ratio = absl::GetFlag(FLAGS_hit_ratio);
  options.rect_degrees = absl::GetFlag(FLAGS_rect_degrees);
  if (!absl::GetFlag(FLAGS_list_rect).empty()) {
    options.list_rect = OrExit(ParseRect(absl::GetFlag(FLAGS_list_rect)));
  }
  options.route_points = absl::GetFlag(FLAGS_route_points);
  options.chat_notes = absl::GetFlag(FLAGS_chat_notes);
  options.chat_locations = absl::GetFlag(FLAGS_chat_locations);
  options.batch_writes = absl::GetFlag(FLAGS_batch_writes);
  options.deadline = absl::GetFlag(FLAGS_deadline);
  options.connect_timeout = absl::GetFlag(FLAGS_connect_timeout);
  options.learn_deadline = absl::GetFlag(FLAGS_learn_deadline);
  options.max_features_learnt = absl::GetFlag(FLAGS_max_features_learnt);
  options.credentials = CredentialsFromFlags();
  options.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  options.metadata = AuthMetadataFromFlags();
  for (const std::string& item : RepeatedFlagValues("metadata")) {
    if (!item.empty()) options.metadata.push_back(OrExit(ParseMetadata(item)));
  }
  options.seed = SeedFromFlag();
  options.max_error_rate = absl::GetFlag(FLAGS_max_error_rate);
  options.json_path = absl::GetFlag(FLAGS_json);
  options.html_path = absl::GetFlag(FLAGS_html);
  options.hgrm_prefix = absl::GetFlag(FLAGS_hgrm);
  if (const std::string at = absl::GetFlag(FLAGS_start_at); !at.empty()) {
    options.start_at = OrExit(ParseStartAt(at, absl::Now()));
  }
  options.progress = isatty(STDERR_FILENO) == 1;
  if (absl::Status valid = ValidateLoadOptions(options); !valid.ok()) {
    ExitWithUsageError(valid.message());
  }
  CheckReportPathOrExit("--json", options.json_path);
  CheckReportPathOrExit("--html", options.html_path);
  if (!options.hgrm_prefix.empty()) {
    for (const std::string& path : HgrmPaths(options.hgrm_prefix)) {
      CheckReportPathOrExit("--hgrm", path);
    }
  }

  signal(SIGINT, OnInterrupt);
  signal(SIGTERM, OnInterrupt);
  absl::StatusOr<LoadReport> report = RunLoad(options, interrupted);
  if (absl::IsCancelled(report.status())) {
    // Stopped before measuring (while learning the server's features or
    // waiting for --start_at): nothing to report, so none is printed or
    // written.
    std::fprintf(stderr, "routeguide-client: %s; nothing measured, no report\n",
                 std::string(report.status().message()).c_str());
    return kExitInterrupted;
  }
  if (!report.ok()) ExitWithUsageError(report.status().message());

  std::cout << FormatReportTable(*report);
  std::cout.flush();
  if (!options.json_path.empty() &&
      !WriteWholeFile(options.json_path, FormatReportJson(*report))) {
    ExitWithUsageError(absl::StrCat("cannot write ", options.json_path));
  }
  if (!options.html_path.empty() &&
      !WriteWholeFile(options.html_path, FormatReportHtml(*report))) {
    ExitWithUsageError(absl::StrCat("cannot write ", options.html_path));
  }
  if (!options.hgrm_prefix.empty()) {
    if (absl::Status written = WriteHgrmFiles(options.hgrm_prefix, *report);
        !written.ok()) {
      ExitWithUsageError(written.message());
    }
  }
  if (report->total.completed() == 0) {
    std::fprintf(stderr, "routeguide-client: no call completed\n");
  }
  return LoadExitCode(*report, options.max_error_rate);
}

// A flag of another command would be ignored without a word: a typo or a
// mix-up, so it is refused.
void RefuseOtherCommandsFlags(bool report) {
  static constexpr absl::string_view kReportFlags[] = {"json", "html", "force",
                                                       "max_regression", "log_level"};
  for (const std::string& name : GivenFlagNames()) {
    const bool report_flag = absl::c_linear_search(kReportFlags, name);
    if (report && !report_flag) {
      ExitWithUsageError(absl::StrCat(
          "--", name, " is not a report flag (report takes --json, --html, "
          "--force, --max_regression and --log_level)"));
    }
    if (!report && (name == "force" || name == "max_regression")) {
      ExitWithUsageError(absl::StrCat("--", name, " is a report flag (see --help)"));
    }
  }
}

int Run(int argc, char** argv) {
  DisableMutexDeadlockDetection();
  const std::vector<char*> args = ParseFlagsOrExit(argc, argv, kUsage);
  auto level = ParseLogLevel(absl::GetFlag(FLAGS_log_level));
  if (!level.ok()) ExitWithUsageError(level.status().message());
  InitLogging(*level);
  RouteGrpcLogs(*level);
  // Output piped into a reader that stops early (| head) must not kill
  // the client mid-report; writes then just fail.
  signal(SIGPIPE, SIG_IGN);
  const bool report = args.size() >= 2 && std::string(args[1]) == "report";
  RefuseOtherCommandsFlags(report);
  if (report) {
    return RunReportCommand(
        std::vector<std::string>(args.begin() + 2, args.end()),
        {absl::GetFlag(FLAGS_json), absl::GetFlag(FLAGS_html),
         absl::GetFlag(FLAGS_force), absl::GetFlag(FLAGS_max_regression)},
        std::cout, std::cerr);
  }
  const std::string command = args.size() == 2 ? args[1] : "";
  if (command != "tutorial" && command != "load") {
    ExitWithUsageError(
        "expected one command, tutorial, load or report (see routeguide-client "
        "--help)");
  }
  if (absl::GetFlag(FLAGS_deadline) <= absl::ZeroDuration() ||
      absl::GetFlag(FLAGS_connect_timeout) <= absl::ZeroDuration()) {
    ExitWithUsageError("--deadline and --connect_timeout must be positive");
  }
  const std::string target = absl::GetFlag(FLAGS_target);
  if (target.empty()) ExitWithUsageError("--target must not be empty");
  // A list's items are checked with the list (ChannelTarget); a URI is
  // gRPC's to read.
  if (target.find(',') == std::string::npos && !IsTargetUri(target)) {
    if (absl::Status address = CheckHostPort(target); !address.ok()) {
      ExitWithUsageError(address.message());
    }
  }
  return command == "tutorial" ? RunTutorialCommand() : RunLoadCommand();
}

}  // namespace
}  // namespace routeguide

int main(int argc, char** argv) { return routeguide::Run(argc, argv); }
