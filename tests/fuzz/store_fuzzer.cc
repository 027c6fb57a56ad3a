// libFuzzer target: a byte string is read as a list of FeatureStore
// operations, and every answer is checked against a plain model (a list of
// features scanned in full, and the note bounds).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "feature_store.h"
#include "geo.h"

namespace {

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return offset_ >= size_; }
  uint8_t Byte() { return offset_ < size_ ? data_[offset_++] : 0; }
  int32_t Int32() {
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) value = (value << 8) | Byte();
    return static_cast<int32_t>(value);
  }
  // Coordinates drawn from a small range most of the time, so points and
  // rectangles collide; sometimes anything at all.
  int32_t Coordinate() {
    const uint8_t kind = Byte();
    if (kind < 200) return static_cast<int32_t>(kind % 40) - 20;
    return Int32();
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t offset_ = 0;
};

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  routeguide::FeatureStoreOptions options;
  options.cell_size_e7 = 1 + in.Byte() % 16;
  options.max_notes_per_location = 1 + in.Byte() % 4;
  options.max_notes = 1 + in.Byte() % 8;
  routeguide::FeatureStore store(options);
  std::vector<routeguide::FeatureRecord> model;

  for (int step = 0; step < 256 && !in.empty(); ++step) {
    switch (in.Byte() % 4) {
      case 0: {  // Add a feature.
        routeguide::FeatureRecord feature{std::to_string(step),
                                          {in.Coordinate(), in.Coordinate()}};
        store.AddFeature(feature);
        model.push_back(feature);
        break;
      }
      case 1: {  // Look a point up.
        const routeguide::GeoPoint p{in.Coordinate(), in.Coordinate()};
        auto first = std::find_if(model.begin(), model.end(),
                                  [&](const auto& f) { return f.location == p; });
        auto found = store.Find(p);
        Check(found.has_value() == (first != model.end()));
        Check(store.Contains(p) == found.has_value());
        if (found) Check(found->name == first->name);
        break;
      }
      case 2: {  // A rectangle.
        const routeguide::GeoRect rect = routeguide::GeoRect::FromCorners(
            {in.Coordinate(), in.Coordinate()}, {in.Coordinate(), in.Coordinate()});
        std::vector<std::string> expected;
        for (const auto& f : model) {
          if (rect.Contains(f.location)) expected.push_back(f.name);
        }
        std::vector<std::string> got;
        for (const auto& f : store.FeaturesIn(rect)) got.push_back(f.name);
        Check(got == expected);
        break;
      }
      case 3: {  // A note.
        const routeguide::GeoPoint p{in.Coordinate(), in.Coordinate()};
        auto previous = store.AddNote({p, std::to_string(step)});
        Check(previous.size() < options.max_notes_per_location + 1);
        for (const auto& note : previous) Check(note.location == p);
        Check(store.note_count() <= options.max_notes);
        const auto kept = store.NotesAt(p);
        Check(!kept.empty() && kept.back().message == std::to_string(step));
        break;
      }
    }
  }
  Check(store.feature_count() == model.size());
  return 0;
}
