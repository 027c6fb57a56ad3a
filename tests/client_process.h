// routeguide-client as a child process, for the tests that run it as a
// user does: its path (from meson's ROUTEGUIDE_CLIENT), a run of it, and a
// scratch directory for the reports it writes.
#ifndef ROUTEGUIDE_TESTS_CLIENT_PROCESS_H_
#define ROUTEGUIDE_TESTS_CLIENT_PROCESS_H_

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "subprocess.h"

namespace routeguide {
namespace testing {

inline std::string ClientBinary() {
  const char* path = std::getenv("ROUTEGUIDE_CLIENT");
  REQUIRE(path != nullptr);
  return path;
}

// routeguide-client with `args` (the command first), to its end or
// `timeout`.
inline RunResult RunClient(const std::vector<std::string>& args,
                           absl::Duration timeout = absl::Seconds(60)) {
  std::vector<std::string> argv = {ClientBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  INFO("running " << absl::StrJoin(argv, " "));
  auto result = Run(argv, timeout);
  REQUIRE(result.ok());
  return *std::move(result);
}

// The whole file; empty when it cannot be read.
inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// A directory under /tmp, removed with everything in it.
class ScratchDir {
 public:
  ScratchDir() {
    char pattern[] = "/tmp/routeguide-test-XXXXXX";
    REQUIRE(mkdtemp(pattern) != nullptr);
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace testing
}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_CLIENT_PROCESS_H_
