#include "expected_answers.h"

#include <algorithm>
#include <utility>

#include "proto_convert.h"

namespace routeguide {
namespace {

uint64_t PointKey(int32_t latitude, int32_t longitude) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(latitude)) << 32) |
         static_cast<uint32_t>(longitude);
}

}  // namespace

uint64_t FeatureHash(int32_t latitude, int32_t longitude,
                     absl::string_view name) {
  uint64_t h = PointKey(latitude, longitude) * 0x9e3779b97f4a7c15ULL;
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  h ^= h >> 29;
  return h * 0xbf58476d1ce4e5b9ULL;
}

void KnownFeatures::Add(const Feature& feature) {
  FeatureRecord record{feature.name(), FromProto(feature.location())};
  by_point_.try_emplace(
      PointKey(record.location.latitude, record.location.longitude),
      features_.size());
  by_latitude_.push_back(
      {record.location, FeatureHash(record.location.latitude,
                                    record.location.longitude, record.name)});
  features_.push_back(std::move(record));
}

void KnownFeatures::Seal() {
  std::sort(by_latitude_.begin(), by_latitude_.end(),
            [](const Located& a, const Located& b) {
              return a.location.latitude < b.location.latitude;
            });
}

void KnownFeatures::Expect(const GeoRect& rect, uint64_t* count,
                           uint64_t* hash) const {
  auto it = std::lower_bound(by_latitude_.begin(), by_latitude_.end(),
                             rect.lo.latitude,
                             [](const Located& a, int32_t latitude) {
                               return a.location.latitude < latitude;
                             });
  for (; it != by_latitude_.end() && it->location.latitude <= rect.hi.latitude;
       ++it) {
    if (rect.Contains(it->location)) {
      ++*count;
      *hash += it->hash;
    }
  }
}

const FeatureRecord* KnownFeatures::Find(const Point& point) const {
  auto it = by_point_.find(PointKey(point.latitude(), point.longitude()));
  return it == by_point_.end() ? nullptr : &features_[it->second];
}

}  // namespace routeguide
