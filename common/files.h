#ifndef ROUTEGUIDE_COMMON_FILES_H_
#define ROUTEGUIDE_COMMON_FILES_H_

#include <string>

#include "absl/status/statusor.h"

namespace routeguide {

// The whole file; NOT_FOUND (or another error) naming `path` when it cannot
// be read, FAILED_PRECONDITION when it is a directory.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

}  // namespace routeguide

#endif  // ROUTEGUIDE_COMMON_FILES_H_
