// Selector parsing and matching, and the time arguments of `ebpf-agent query`.
#include <gtest/gtest.h>

#include "tsdb/label_text.h"
#include "tsdb/selector.h"
#include "tsdb/time_text.h"

namespace ea::tsdb {
namespace {

Selector parse(std::string_view text) {
  auto selector = parse_selector(text);
  EXPECT_TRUE(selector.has_value()) << text << ": " << (selector ? "" : selector.error().message);
  return selector ? *selector : Selector{};
}

std::string parse_error(std::string_view text) {
  auto selector = parse_selector(text);
  EXPECT_FALSE(selector.has_value()) << text;
  return selector ? "" : selector.error().message;
}

TEST(TsdbSelector, ParsesNameAndEveryOperator) {
  Selector selector = parse(R"(http_requests{route="/api", status=~"5..",method!="GET" , le!~'\+Inf',})");
  ASSERT_EQ(selector.matchers.size(), 5u);
  EXPECT_EQ(selector.literal_name(), "http_requests");
  EXPECT_EQ(selector.matchers[1].name, "route");
  EXPECT_EQ(selector.matchers[2].op, LabelMatcher::Op::Regex);
  EXPECT_EQ(selector.matchers[3].op, LabelMatcher::Op::NotEqual);
  EXPECT_EQ(selector.matchers[4].op, LabelMatcher::Op::NotRegex);
  EXPECT_EQ(selector.matchers[4].value, R"(\+Inf)");
  EXPECT_TRUE(selector.matches_labels({{"le", "0.5"}, {"method", "POST"}, {"route", "/api"}, {"status", "503"}}));
  EXPECT_FALSE(selector.matches_labels({{"le", "+Inf"}, {"method", "POST"}, {"route", "/api"}, {"status", "503"}}));
  EXPECT_FALSE(selector.matches_labels({{"method", "GET"}, {"route", "/api"}, {"status", "503"}}));
  EXPECT_FALSE(selector.matches_labels({{"route", "/api"}, {"status", "5030"}}));  // anchored
}

TEST(TsdbSelector, NameOnlyAndMatchersOnly) {
  Selector name_only = parse("up");
  EXPECT_TRUE(name_only.matches_labels({{"anything", "x"}}));
  EXPECT_TRUE(name_only.matches_name("up", "up"));
  EXPECT_FALSE(name_only.matches_name("upx", "upx"));
  Selector by_name = parse(R"({__name__=~"ebpf_agent_.*", spec="oom"})");
  EXPECT_EQ(by_name.literal_name(), "");
  EXPECT_TRUE(by_name.matches_name("ebpf_agent_records_total", "ebpf_agent_records"));
  EXPECT_FALSE(by_name.matches_name("process_rss", "process_rss"));
  parse("name:with:colons{}");
  parse("  spaced  { a = \"b\" }  ");
  parse("x{a=`raw\\string`}");
}

TEST(TsdbSelector, FamilyNameSelectsAllItsSeries) {
  Selector selector = parse("request_duration_seconds");
  EXPECT_TRUE(selector.matches_name("request_duration_seconds_bucket", "request_duration_seconds"));
  EXPECT_TRUE(selector.matches_name("request_duration_seconds_count", "request_duration_seconds"));
  Selector bucket_only = parse("request_duration_seconds_bucket");
  EXPECT_TRUE(bucket_only.matches_name("request_duration_seconds_bucket", "request_duration_seconds"));
  EXPECT_FALSE(bucket_only.matches_name("request_duration_seconds_sum", "request_duration_seconds"));
}

TEST(TsdbSelector, MissingLabelsAreEmpty) {
  Selector without = parse(R"(m{zone=""})");
  EXPECT_TRUE(without.matches_labels({{"a", "b"}}));
  EXPECT_FALSE(without.matches_labels({{"zone", "eu"}}));
  Selector not_equal = parse(R"(m{zone!="eu"})");
  EXPECT_TRUE(not_equal.matches_labels({}));
}

TEST(TsdbSelector, EscapesInValues) {
  Selector selector = parse(R"(m{path="a\"b\\c\nd"})");
  EXPECT_EQ(selector.matchers[1].value, "a\"b\\c\nd");
}

TEST(TsdbSelector, ErrorsPointAtTheColumn) {
  std::string error = parse_error(R"(m{a="b" c="d"})");
  EXPECT_NE(error.find("column 9"), std::string::npos) << error;
  EXPECT_NE(error.find("expected ',' or '}'"), std::string::npos) << error;
  EXPECT_NE(error.find("\n  m{a=\"b\" c=\"d\"}\n          ^"), std::string::npos) << error;
  EXPECT_NE(parse_error("m{a=\"b}").find("unterminated string"), std::string::npos);
  EXPECT_NE(parse_error("m{a=b}").find("expected a quoted value"), std::string::npos);
  EXPECT_NE(parse_error("m{a~\"b\"}").find("expected one of = != =~ !~"), std::string::npos);
  EXPECT_NE(parse_error("m{a=~\"(\"}").find("invalid regular expression"), std::string::npos);
  EXPECT_NE(parse_error("m{1a=\"b\"}").find("expected a label name"), std::string::npos);
  EXPECT_NE(parse_error("m{a=\"b\"").find("expected ',' or '}'"), std::string::npos);
  EXPECT_NE(parse_error("m x").find("unexpected 'x'"), std::string::npos);
  EXPECT_NE(parse_error("").find("expected a metric name"), std::string::npos);
  EXPECT_NE(parse_error("{}").find("needs a metric name"), std::string::npos);
  EXPECT_NE(parse_error("{a=~\".*\"}").find("also matches an empty value"), std::string::npos);
  EXPECT_NE(parse_error("9metric").find("expected a metric name or '{'"), std::string::npos);
}

TEST(TsdbLabelText, CanonicalFormRoundTripsAnyBytes) {
  LabelSet labels = {{"a", ""}, {"comm", std::string("x\"y\\z\n\xff\x01,}=", 11)}, {"le", "+Inf"}};
  std::string text = canonical_labels(labels);
  EXPECT_EQ(text.front(), '{');
  auto parsed = parse_canonical_labels(text);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(*parsed, labels);
  EXPECT_EQ(canonical_labels({}), "{}");
  EXPECT_TRUE(parse_canonical_labels("{}")->empty());
  EXPECT_FALSE(parse_canonical_labels("{a=\"b}").has_value());
  EXPECT_FALSE(parse_canonical_labels("a=\"b\"").has_value());
  EXPECT_FALSE(parse_canonical_labels("{a=\"b\"c=\"d\"}").has_value());
}

TEST(TsdbLabelText, Values) {
  EXPECT_EQ(format_bound(0.005), "0.005");
  EXPECT_EQ(format_bound(1), "1");
  EXPECT_EQ(format_bound(250000), "250000");
  EXPECT_EQ(format_bound(1e20), "1e+20");
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_value(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(format_value(-0.0), "-0");
  EXPECT_EQ(format_value(0.1 + 0.2), "0.30000000000000004");
}

TEST(TsdbTimeText, ParsesEveryForm) {
  const int64_t now = 1'746'093'600'000'000'000;  // 2025-05-01T10:00:00Z
  EXPECT_EQ(*parse_time_argument("now", now), now);
  EXPECT_EQ(*parse_time_argument("-1h", now), now - 3'600'000'000'000);
  EXPECT_EQ(*parse_time_argument("now-30m", now), now - 1'800'000'000'000);
  EXPECT_EQ(*parse_time_argument("2025-05-01T10:00:00Z", now), now);
  EXPECT_EQ(*parse_time_argument("2025-05-01T12:00:00+02:00", now), now);
  EXPECT_EQ(*parse_time_argument("2025-05-01T09:30:00-00:30", now), now);
  EXPECT_EQ(*parse_time_argument("2025-05-01T10:00:00.25Z", now), now + 250'000'000);
  EXPECT_EQ(*parse_time_argument("2025-05-01t10:00:00.123456789z", now), now + 123'456'789);
  EXPECT_EQ(*parse_time_argument("2025-05-01", now), now - 10 * 3'600'000'000'000);
  EXPECT_EQ(*parse_time_argument("1746093600", now), now);
  EXPECT_EQ(*parse_time_argument("1746093600.5", now), now + 500'000'000);
  EXPECT_EQ(*parse_time_argument("1746093600000", now), now);        // ms
  EXPECT_EQ(*parse_time_argument("1746093600000000000", now), now);  // ns
  EXPECT_EQ(*parse_time_argument("0", now), 0);
  EXPECT_EQ(*parse_time_argument("1970-01-01T00:00:00Z", now), 0);
  EXPECT_EQ(*parse_time_argument("2000-02-29T00:00:00Z", now), 951'782'400'000'000'000);
  for (const char* bad : {"", "yesterday", "-1x", "2025-13-01", "2025-05-01T10:00:00", "2025-05-01T10:00Zjunk",
                          "2025-05-01T25:00:00Z", "12abc", "2025/05/01", "1e300"}) {
    auto parsed = parse_time_argument(bad, now);
    EXPECT_FALSE(parsed.has_value()) << bad;
  }
}

TEST(TsdbTimeText, FormatsRfc3339) {
  EXPECT_EQ(format_rfc3339(1'746'093'600'123'456'789, 3), "2025-05-01T10:00:00.123Z");
  EXPECT_EQ(format_rfc3339(1'746'093'600'123'456'789, 6), "2025-05-01T10:00:00.123456Z");
  EXPECT_EQ(format_rfc3339(1'746'093'600'123'456'789, 9), "2025-05-01T10:00:00.123456789Z");
  EXPECT_EQ(format_rfc3339(0, 0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_rfc3339(-1, 3), "1969-12-31T23:59:59.999Z");
}

}  // namespace
}  // namespace ea::tsdb
