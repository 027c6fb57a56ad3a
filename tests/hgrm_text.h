#ifndef ROUTEGUIDE_TESTS_HGRM_TEXT_H_
#define ROUTEGUIDE_TESTS_HGRM_TEXT_H_

// Reads back a .hgrm file (client/hgrm_writer.h) as a plotter would, and
// fails the test where it does not follow the format.
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "catch2/catch.hpp"

namespace routeguide {
namespace testing {

struct HgrmRow {
  double value_ms = 0;
  double fraction = 0;
  uint64_t count = 0;
  std::string inverse;  // The 1/(1-Percentile) column as written.
};

struct HgrmText {
  std::vector<HgrmRow> rows;
  double mean_ms = -1, stddev_ms = -1, max_ms = -1;
  uint64_t total = 0;
  int buckets = 0, sub_buckets = 0;
};

inline HgrmText ParseHgrm(const std::string& text) {
  INFO(text);
  HgrmText parsed;
  std::istringstream in(text);
  std::string line;
  REQUIRE(std::getline(in, line));
  CHECK(line == "       Value     Percentile TotalCount 1/(1-Percentile)");
  REQUIRE(std::getline(in, line));
  CHECK(line.empty());
  int footer_lines = 0;
  while (std::getline(in, line)) {
    INFO("line: " << line);
    if (line.rfind("#[", 0) == 0) {
      int fields = 0;
      unsigned long long total = 0;
      if (line.rfind("#[Mean", 0) == 0) {
        fields = std::sscanf(line.c_str(), "#[Mean = %lf, StdDeviation = %lf]",
                             &parsed.mean_ms, &parsed.stddev_ms);
      } else if (line.rfind("#[Max", 0) == 0) {
        fields = std::sscanf(line.c_str(), "#[Max = %lf, Total count = %llu]",
                             &parsed.max_ms, &total);
        parsed.total = total;
      } else if (line.rfind("#[Buckets", 0) == 0) {
        fields = std::sscanf(line.c_str(), "#[Buckets = %d, SubBuckets = %d]",
                             &parsed.buckets, &parsed.sub_buckets);
      }
      CHECK(fields == 2);
      ++footer_lines;
      continue;
    }
    REQUIRE(footer_lines == 0);  // No row after the footer.
    HgrmRow row;
    unsigned long long count = 0;
    char inverse[32] = {0};
    REQUIRE(std::sscanf(line.c_str(), "%lf %lf %llu %31s", &row.value_ms,
                        &row.fraction, &count, inverse) == 4);
    row.count = count;
    row.inverse = inverse;
    parsed.rows.push_back(row);
  }
  CHECK(footer_lines == 3);
  for (size_t i = 1; i < parsed.rows.size(); ++i) {
    INFO("row " << i);
    CHECK(parsed.rows[i].fraction > parsed.rows[i - 1].fraction);
    CHECK(parsed.rows[i].value_ms >= parsed.rows[i - 1].value_ms);
    CHECK(parsed.rows[i].count >= parsed.rows[i - 1].count);
  }
  if (!parsed.rows.empty()) {
    CHECK(parsed.rows.front().fraction == 0.0);
    CHECK(parsed.rows.back().fraction == 1.0);
    CHECK(parsed.rows.back().inverse == "inf");
    CHECK(parsed.rows.back().count == parsed.total);
    CHECK(parsed.rows.back().value_ms <= parsed.max_ms);
  }
  return parsed;
}

}  // namespace testing
}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_HGRM_TEXT_H_
