#include <gtest/gtest.h>

#include "core/units.h"
#include "sink/output_description.h"
#include "sink/sink.h"

namespace ea {
namespace {

TEST(OutputDescription, KindTargetAndOptions) {
  auto out = parse_output_description("kafka:b1:9092,b2:9092,spool=/run/x,spool_max_bytes=64M");
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->kind, "kafka");
  EXPECT_EQ(out->target, "b1:9092,b2:9092");
  EXPECT_EQ(out->option("spool", ""), "/run/x");
  EXPECT_EQ(out->size_option("spool_max_bytes", 0).value(), 64ull << 20);
  EXPECT_EQ(out->size_option("absent", 7).value(), 7u);

  auto bare = parse_output_description("tsdb");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->kind, "tsdb");
  EXPECT_TRUE(bare->target.empty());

  auto options_only = parse_output_description("tmpfs,max_bytes=1M");
  ASSERT_TRUE(options_only);
  EXPECT_EQ(options_only->kind, "tmpfs");
  EXPECT_TRUE(options_only->target.empty());
  EXPECT_EQ(options_only->option("max_bytes", ""), "1M");
}

TEST(OutputDescription, ErrorsSayWhatAndHow) {
  EXPECT_FALSE(parse_output_description(":x"));
  auto twice = parse_output_description("file:/x,keep=1,keep=2");
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message.find("given twice"), std::string::npos);
  auto stray = parse_output_description("tsdb,oops");
  ASSERT_FALSE(stray);
  EXPECT_NE(stray.error().message.find("not an option"), std::string::npos);
  auto parsed = parse_output_description("file:/x,colour=red");
  ASSERT_TRUE(parsed);
  auto checked = parsed->check_options({"max_bytes", "keep"}, "file:PATH");
  ASSERT_FALSE(checked);
  EXPECT_NE(checked.error().message.find("unknown option 'colour'"), std::string::npos);
  EXPECT_FALSE(parse_output_description("x:y,flag=maybe")->bool_option("flag", false));
  EXPECT_FALSE(parse_output_description("x:y,every=soon")->duration_option("every", {}));
}

TEST(OutputDescription, MakeSinkRefusesUnknownKindsAndBadOptions) {
  auto unknown = make_sink("carrier-pigeon:home");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("unknown output kind 'carrier-pigeon'"), std::string::npos);
  EXPECT_FALSE(make_sink("file:/tmp/x.jsonl,keep=lots"));
  EXPECT_FALSE(make_sink("stdout:somewhere"));
  EXPECT_FALSE(make_sink("file"));
}

TEST(Units, SizesAndDurations) {
  EXPECT_EQ(parse_size("512MiB").value(), 512ull << 20);
  EXPECT_EQ(parse_size("1G").value(), 1ull << 30);
  EXPECT_EQ(parse_size("10").value(), 10u);
  EXPECT_FALSE(parse_size("M"));
  EXPECT_FALSE(parse_size("-1"));
  EXPECT_FALSE(parse_size("99999999999T"));
  EXPECT_EQ(parse_duration("7d").value().count(), 7ll * 86'400'000);
}

}  // namespace
}  // namespace ea
