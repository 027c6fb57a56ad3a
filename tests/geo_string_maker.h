#ifndef ROUTEGUIDE_TESTS_GEO_STRING_MAKER_H_
#define ROUTEGUIDE_TESTS_GEO_STRING_MAKER_H_

#include <string>

#include "catch2/catch.hpp"
#include "geo.h"

// Catch2 prints GeoPoints in failed assertions as "(latitude, longitude)".
namespace Catch {
template <>
struct StringMaker<routeguide::GeoPoint> {
  static std::string convert(const routeguide::GeoPoint& p) {
    return "(" + std::to_string(p.latitude) + ", " + std::to_string(p.longitude) +
           ")";
  }
};
}  // namespace Catch

#endif  // ROUTEGUIDE_TESTS_GEO_STRING_MAKER_H_
