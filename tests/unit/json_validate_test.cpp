// check_json_object: the gate a plugin's result passes before it is embedded in an envelope line.
#include <gtest/gtest.h>

#include <string>

#include "core/json_validate.h"

namespace ea {
namespace {

TEST(JsonCheck, AcceptsObjectsOfEveryValueKind) {
  for (std::string_view text : {
           R"({})",
           R"(  {"a":1}  )",
           R"({"s":"x\"y\\z\/\b\f\n\r\t\u00e9\uD83D\uDE00","n":-0.5e+10,"z":0,"t":true,"f":false,"u":null})",
           R"({"nested":{"list":[1,[2,{}],[],"é日本😀"]}})",
           "{\n\t\"a\" : [ 1 , 2 ]\r\n}",
       }) {
    JsonCheck check = check_json_object(text);
    EXPECT_TRUE(check.ok) << text << ": " << check.problem << " at " << check.offset;
  }
}

TEST(JsonCheck, ReportsLineBreaksBetweenTokens) {
  EXPECT_FALSE(check_json_object(R"({"a":"b"})").has_line_breaks);
  EXPECT_TRUE(check_json_object("{\"a\":\n1}").has_line_breaks);
  EXPECT_TRUE(check_json_object("{\"a\":1}\r").has_line_breaks);
}

struct BadCase {
  std::string text;
  size_t offset;
  std::string_view problem_part;
};

TEST(JsonCheck, RefusesWhatWouldCorruptAnEnvelope) {
  const BadCase cases[] = {
      {"", 0, "expected '{'"},
      {"[1]", 0, "expected '{'"},
      {"\"x\"", 0, "expected '{'"},
      {"{", 1, "member name"},
      {"{\"a\"}", 4, "':'"},
      {"{\"a\":1,}", 7, "member name"},
      {"{\"a\":1 \"b\":2}", 7, "',' or '}'"},
      {"{\"a\":1}{}", 7, "after the object"},
      {"{\"a\":01}", 6, "',' or '}'"},
      {"{\"a\":1.}", 7, "after '.'"},
      {"{\"a\":1e}", 7, "exponent"},
      {"{\"a\":+1}", 5, "invalid value"},
      {"{\"a\":tru}", 5, "literal"},
      {"{\"a\":[1,]}", 8, "invalid value"},
      {"{\"a\":\"x", 7, "unterminated"},
      {"{\"a\":\"\\x\"}", 7, "escape"},
      {"{\"a\":\"\\u12G4\"}", 10, "four hex"},
      {std::string("{\"a\":\"x\ny\"}"), 7, "control character"},
      {std::string("{\"a\":\"\0\"}", 9), 6, "control character"},
      {"{\"a\":\"\xff\"}", 6, "UTF-8"},
      {"{\"a\":\"\xc0\xaf\"}", 6, "UTF-8"},          // overlong '/'
      {"{\"a\":\"\xed\xa0\x80\"}", 6, "UTF-8"},      // a surrogate
      {"{\"a\":\"\xf4\x90\x80\x80\"}", 6, "UTF-8"},  // beyond U+10FFFF
      {"{\"a\":\"\xe6\x97\"}", 6, "UTF-8"},          // truncated sequence
  };
  for (const BadCase& bad : cases) {
    JsonCheck check = check_json_object(bad.text);
    EXPECT_FALSE(check.ok) << bad.text;
    EXPECT_EQ(check.offset, bad.offset) << bad.text << ": " << check.problem;
    EXPECT_NE(check.problem.find(bad.problem_part), std::string_view::npos) << bad.text << ": " << check.problem;
  }
}

TEST(JsonCheck, BoundsNesting) {
  auto nested = [](int depth) {
    std::string text = "{\"a\":";
    for (int i = 1; i < depth; ++i) text += "[";
    text += "1";
    for (int i = 1; i < depth; ++i) text += "]";
    return text + "}";
  };
  EXPECT_TRUE(check_json_object(nested(kMaxJsonDepth)).ok);
  JsonCheck deep = check_json_object(nested(kMaxJsonDepth + 1));
  EXPECT_FALSE(deep.ok);
  EXPECT_EQ(deep.problem, "nested too deeply");
  EXPECT_FALSE(check_json_object("{\"a\":" + std::string(100000, '[')).ok) << "no stack overflow on hostile depth";
}

}  // namespace
}  // namespace ea
