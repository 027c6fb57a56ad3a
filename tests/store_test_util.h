// What the FeatureStore tests share: names and messages of what the store
// answers, for comparisons, and the int32 extremes.
#ifndef ROUTEGUIDE_TESTS_STORE_TEST_UTIL_H_
#define ROUTEGUIDE_TESTS_STORE_TEST_UTIL_H_

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "feature_store.h"

namespace routeguide {

inline constexpr int32_t kInt32Min = std::numeric_limits<int32_t>::min();
inline constexpr int32_t kInt32Max = std::numeric_limits<int32_t>::max();

inline std::vector<std::string> Names(const std::vector<FeatureRecord>& features) {
  std::vector<std::string> names;
  names.reserve(features.size());
  for (const FeatureRecord& feature : features) names.push_back(feature.name);
  return names;
}

inline std::vector<std::string> Messages(const std::vector<Note>& notes) {
  std::vector<std::string> messages;
  messages.reserve(notes.size());
  for (const Note& note : notes) messages.push_back(note.message);
  return messages;
}

}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_STORE_TEST_UTIL_H_
