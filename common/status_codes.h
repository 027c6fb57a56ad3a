#ifndef ROUTEGUIDE_COMMON_STATUS_CODES_H_
#define ROUTEGUIDE_COMMON_STATUS_CODES_H_

#include <array>

namespace routeguide {

// gRPC's status codes, OK (0) to UNAUTHENTICATED (16), by name, for
// reports, metrics and logs on both sides.
inline constexpr int kNumStatusCodes = 17;
inline constexpr std::array<const char*, kNumStatusCodes> kStatusCodeNames = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
    "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};

}  // namespace routeguide

#endif  // ROUTEGUIDE_COMMON_STATUS_CODES_H_
