#ifndef ROUTEGUIDE_COMMON_CONSTANT_TIME_H_
#define ROUTEGUIDE_COMMON_CONSTANT_TIME_H_

#include "absl/strings/string_view.h"

namespace routeguide {

// Whether a equals b, taking the same time whatever bytes differ and
// where, so a secret cannot be guessed byte by byte from response times.
// (The time still depends on the lengths.)
inline bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  const size_t n = a.size() > b.size() ? a.size() : b.size();
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    difference |= static_cast<unsigned char>(x ^ y);
  }
  return difference == 0;
}

}  // namespace routeguide

#endif  // ROUTEGUIDE_COMMON_CONSTANT_TIME_H_
