// libFuzzer target: any bytes given to the database loader either parse
// into valid features or yield an error; never a crash, a hang or a leak.
#include <cstddef>
#include <cstdint>

#include "db_loader.h"
#include "geo.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto features = routeguide::ParseFeatureDb(text, "fuzz");
  if (!features.ok()) {
    // Errors name the source first.
    if (features.status().message().substr(0, 5) != "fuzz:") __builtin_trap();
    return 0;
  }
  for (const routeguide::FeatureRecord& feature : *features) {
    if (!routeguide::ValidatePoint(feature.location).ok()) __builtin_trap();
    if (feature.name.size() > routeguide::kMaxFeatureNameBytes) __builtin_trap();
  }
  return 0;
}
