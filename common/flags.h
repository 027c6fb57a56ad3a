#ifndef ROUTEGUIDE_COMMON_FLAGS_H_
#define ROUTEGUIDE_COMMON_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace routeguide {

// Exit code for bad flags or arguments, and for a target or file that
// cannot be used, in both binaries.
inline constexpr int kExitUsage = 2;

// Parses the command line with absl/flags, but checks every flag first so
// that an unknown flag or a bad value prints a clear message and exits with
// kExitUsage (absl alone exits with 1). --help and friends behave as absl
// has them; --version prints VersionText(). Returns the positional arguments, argv[0] first.
std::vector<char*> ParseFlagsOrExit(int argc, char** argv,
                                    absl::string_view usage);

// The names of the flags given on the command line, in order (a flag
// given twice, twice). Valid after ParseFlagsOrExit.
std::vector<std::string> GivenFlagNames();

// Every value given for the flag `name`, in order, for flags that may be
// repeated (absl keeps only the last). Valid after ParseFlagsOrExit.
std::vector<std::string> RepeatedFlagValues(absl::string_view name);

// "4096", "64KiB", "512MiB", "1GiB" (also KB/MB/GB as powers of 1000) as a
// byte count.
absl::StatusOr<int64_t> ParseByteSize(absl::string_view text);

// The inverse, for flag defaults: "4MiB" rather than "4194304".
std::string FormatByteSize(int64_t bytes);

// What --version prints: this project's version and the gRPC and protobuf
// versions it was built with and runs with.
std::string VersionText();

// Prints "<program>: error: <message>" to stderr and exits with kExitUsage.
[[noreturn]] void ExitWithUsageError(absl::string_view message);

}  // namespace routeguide

#endif  // ROUTEGUIDE_COMMON_FLAGS_H_
