#ifndef ROUTEGUIDE_COMMON_FILES_H_
#define ROUTEGUIDE_COMMON_FILES_H_

#include <string>

#include "absl/status/statusor.h"

namespace routeguide {

// The whole file; NOT_FOUND (or another error) naming `path` when it cannot
// be read, FAILED_PRECONDITION when it is a directory.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

// Writes `contents` as the whole file at `path` (created or truncated);
// false when it cannot be opened or written.
bool WriteWholeFile(const std::string& path, const std::string& contents);

}  // namespace routeguide

#endif  // ROUTEGUIDE_COMMON_FILES_H_
