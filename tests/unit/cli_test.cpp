#include <gtest/gtest.h>

#include "core/units.h"

namespace ea::cli {
namespace {

TEST(Duration, ParsesUnits) {
  EXPECT_EQ(parse_duration("30s").value().count(), 30'000);
  EXPECT_EQ(parse_duration("2m").value().count(), 120'000);
  EXPECT_EQ(parse_duration("250ms").value().count(), 250);
  EXPECT_EQ(parse_duration("1.5").value().count(), 1'500);
  EXPECT_EQ(parse_duration("0").value().count(), 0);
}

TEST(Duration, RejectsJunkWithExamples) {
  auto bad = parse_duration("soon");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("examples"), std::string::npos);
  EXPECT_FALSE(parse_duration("5 parsecs"));
  EXPECT_FALSE(parse_duration("-1s"));
}

}  // namespace
}  // namespace ea::cli
