#include "flags.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "config.h"
#include "google/protobuf/stubs/common.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/version_info.h"

namespace routeguide {
namespace {

std::string& ProgramName() {
  static std::string* name = new std::string("routeguide");
  return *name;
}

std::vector<std::pair<std::string, std::string>>& GivenValues() {
  static auto* values = new std::vector<std::pair<std::string, std::string>>();
  return *values;
}

// Flags absl handles itself (help output, flag files).
bool IsAbslBuiltin(absl::string_view name) {
  for (absl::string_view builtin :
       {"help", "helpfull", "helpshort", "helppackage", "version",
        "only_check_args", "flagfile", "fromenv", "tryfromenv", "undefok"}) {
    if (name == builtin) return true;
  }
  return false;
}

// Flag names are C++ identifiers, so absl knows --max_notes; people type
// --max-notes as well. Rewrites the name part of each flag to underscores.
void NormalizeFlagNames(std::vector<std::string>& args) {
  for (size_t i = 1; i < args.size(); ++i) {
    std::string& arg = args[i];
    if (arg == "--") return;
    if (arg.size() < 2 || arg[0] != '-') continue;
    const size_t start = arg[1] == '-' ? 2 : 1;
    const size_t end = std::min(arg.find('='), arg.size());
    for (size_t c = start; c < end; ++c) {
      if (arg[c] == '-') arg[c] = '_';
    }
  }
}

void CheckFlags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") return;  // The rest is positional.
    if (arg.size() < 2 || arg[0] != '-') continue;
    arg.remove_prefix(arg[1] == '-' ? 2 : 1);
    const size_t equals = arg.find('=');
    const absl::string_view name = arg.substr(0, equals);
    if (IsAbslBuiltin(name)) continue;

    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    bool negated = false;
    if (flag == nullptr && absl::StartsWith(name, "no")) {
      flag = absl::FindCommandLineFlag(name.substr(2));
      negated = flag != nullptr && flag->IsOfType<bool>();
      if (!negated) flag = nullptr;
    }
    if (flag == nullptr || flag->IsRetired()) {
      ExitWithUsageError(absl::StrCat("unknown flag --", name,
                                      " (see --help)"));
    }
    std::string value;
    if (equals != absl::string_view::npos) {
      value = std::string(arg.substr(equals + 1));
    } else if (negated) {
      value = "false";
    } else if (flag->IsOfType<bool>()) {
      value = "true";
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      ExitWithUsageError(absl::StrCat("flag --", name, " needs a value"));
    }
    // Parsing into a copy of the flag would be cleaner, but ParseFrom is
    // the only public way to check a value; absl parses it again anyway.
    GivenValues().emplace_back(std::string(flag->Name()), value);
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      ExitWithUsageError(absl::StrCat("bad value '", value, "' for --", name,
                                      ": ", error));
    }
  }
}

}  // namespace

std::vector<char*> ParseFlagsOrExit(int argc, char** argv,
                                    absl::string_view usage) {
  if (argc > 0) {
    absl::string_view path = argv[0];
    if (size_t slash = path.rfind('/'); slash != path.npos) {
      path.remove_prefix(slash + 1);
    }
    ProgramName() = std::string(path);
  }
  absl::SetProgramUsageMessage(usage);
  // absl's --help lists only flags defined in a file named after the
  // program; ours live in each binary's main.cc or <binary>_flags.cc.
  absl::FlagsUsageConfig config;
  config.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "main.cc") || absl::EndsWith(file, "_flags.cc");
  };
  config.contains_helpshort_flags = config.contains_help_flags;
  config.version_string = [] { return VersionText(); };
  absl::SetFlagsUsageConfig(config);
  // absl keeps pointers into argv, so the rewritten copy lives forever.
  static auto* args = new std::vector<std::string>(argv, argv + argc);
  static auto* pointers = new std::vector<char*>();
  NormalizeFlagNames(*args);
  for (std::string& arg : *args) pointers->push_back(arg.data());
  pointers->push_back(nullptr);
  CheckFlags(argc, pointers->data());
  return absl::ParseCommandLine(argc, pointers->data());
}

std::vector<std::string> GivenFlagNames() {
  std::vector<std::string> names;
  for (const auto& given : GivenValues()) names.push_back(given.first);
  return names;
}

std::vector<std::string> RepeatedFlagValues(absl::string_view name) {
  std::vector<std::string> values;
  for (const auto& [flag, value] : GivenValues()) {
    if (flag == name) values.push_back(value);
  }
  return values;
}

absl::StatusOr<int64_t> ParseByteSize(absl::string_view text) {
  struct Unit {
    absl::string_view suffix;
    int64_t factor;
  };
  static constexpr Unit kUnits[] = {
      {"KiB", int64_t{1} << 10}, {"MiB", int64_t{1} << 20},
      {"GiB", int64_t{1} << 30}, {"KB", 1000},
      {"MB", 1000 * 1000},       {"GB", 1000 * 1000 * 1000},
      {"B", 1},
  };
  int64_t factor = 1;
  absl::string_view number = text;
  for (const Unit& unit : kUnits) {
    if (absl::EndsWith(number, unit.suffix)) {
      number.remove_suffix(unit.suffix.size());
      factor = unit.factor;
      break;
    }
  }
  int64_t value = 0;
  if (!absl::SimpleAtoi(number, &value) || value < 0 ||
      value > INT64_MAX / factor) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", text, "' is not a size (such as 4096, 64KiB, 512MiB or 1GiB)"));
  }
  return value * factor;
}

std::string FormatByteSize(int64_t bytes) {
  for (const auto& [suffix, shift] :
       {std::pair<const char*, int>{"GiB", 30}, {"MiB", 20}, {"KiB", 10}}) {
    const int64_t unit = int64_t{1} << shift;
    if (bytes != 0 && bytes % unit == 0) return absl::StrCat(bytes / unit, suffix);
  }
  return absl::StrCat(bytes);
}

std::string VersionText() {
  // protobuf offers no way to ask the library its version; each generated
  // file checks at start-up (GOOGLE_PROTOBUF_VERIFY_VERSION) that the
  // library is compatible with the headers.
  return absl::StrCat(
      ProgramName(), " ", ROUTEGUIDE_VERSION, "\n",  //
      "gRPC ", grpc::Version(), " (built with ", GRPC_CPP_VERSION_STRING, ")\n",
      "protobuf ", google::protobuf::internal::VersionString(GOOGLE_PROTOBUF_VERSION),
      " (built with; the library is checked compatible at start-up)\n");
}

void ExitWithUsageError(absl::string_view message) {
  std::fprintf(stderr, "%s: error: %.*s\n", ProgramName().c_str(),
               static_cast<int>(message.size()), message.data());
  std::cout.flush();
  std::fflush(nullptr);
  // Not std::exit: a run that fails after it made channels (a server that
  // cannot be reached, say) still has gRPC's threads at work, and static
  // destructors running under them made the exit code a race (once in a
  // CI run, the client ended otherwise than with 2 after printing this).
  // Nothing is left to clean up that the kernel does not.
  std::_Exit(kExitUsage);
}

}  // namespace routeguide
