// The parser's building blocks: did-you-mean, document splitting, name and path rules.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>

#include <fmt/format.h>

#include "spec/document_splitter.h"
#include "spec/names.h"
#include "spec/suggest.h"

namespace ea {
namespace {

constexpr std::array<std::string_view, 3> kTypes{"ebpf_object", "bpftrace", "user_so"};
constexpr std::array<std::string_view, 3> kKeys{"key", "value", "hash"};

TEST(SpecSuggest, ClosestMatch) {
  EXPECT_EQ(closest_match("ebpf_obj", kTypes), "ebpf_object");
  EXPECT_EQ(closest_match("bpfrtace", kTypes), "bpftrace");  // a transposition counts once
  EXPECT_EQ(closest_match("USER_SO", kTypes), "user_so");
  EXPECT_EQ(closest_match("vlaue", kKeys), "value");
  EXPECT_EQ(closest_match("x", kKeys), std::nullopt);
  EXPECT_EQ(closest_match("program", kTypes), std::nullopt);
  EXPECT_EQ(closest_match("", kKeys), std::nullopt);
  EXPECT_EQ(closest_match(std::string(1000, 'k'), kKeys), std::nullopt);
}

TEST(SpecSuggest, ClosestOfSeveralNearOnes) {
  constexpr std::array<std::string_view, 4> kNear{"abcdefghXY", "abcdefghiY", "abcdefgXYZ", "abcdefghij"};
  EXPECT_EQ(closest_match("abcdefghiZ", std::span(kNear).first(3)), "abcdefghiY");
  EXPECT_EQ(closest_match("abcdefghij", kNear), "abcdefghij");
  EXPECT_EQ(closest_match("ABCDEFGHIJ", kNear), "abcdefghij");
}

TEST(SpecSuggest, UseOneOf) {
  EXPECT_EQ(use_one_of("hsah", kKeys), " — use one of: key, value, hash (did you mean 'hash'?)");
  EXPECT_EQ(use_one_of("zzz", kKeys), " — use one of: key, value, hash");
  EXPECT_EQ(use_one_of("zzz", std::span<const std::string_view>()), "");
  std::vector<std::string> many;
  for (int i = 0; i < 20; ++i) many.push_back(fmt::format("name{:02}", i));
  std::vector<std::string_view> views(many.begin(), many.end());
  EXPECT_EQ(use_one_of("name19x", views),
            " — use one of: name00, name01, name02, name03, name04, name05, name06, name07, name08, name09, name10, "
            "name11, name12, name13, name14, name15 (and 4 more) (did you mean 'name19'?)");
}

std::vector<std::pair<std::string, int>> split(std::string_view text) {
  std::vector<std::pair<std::string, int>> documents;
  for (const DocumentText& document : split_documents(text)) documents.emplace_back(document.text, document.line_offset);
  return documents;
}

using Documents = std::vector<std::pair<std::string, int>>;

TEST(SpecSplitter, SplitsAtDocumentMarkers) {
  EXPECT_EQ(split("a: 1\n---\nb: 2\n"), (Documents{{"a: 1\n", 0}, {"---\nb: 2\n", 1}}));
  EXPECT_EQ(split("--- {a: 1}\n--- {b: 2}"), (Documents{{"--- {a: 1}\n", 0}, {"--- {b: 2}", 1}}));
  EXPECT_EQ(split("a: 1\n...\nb: 2\n"), (Documents{{"a: 1\n...\n", 0}, {"b: 2\n", 2}}));
  EXPECT_EQ(split("a: 1\r\n---\r\nb: 2\r\n"), (Documents{{"a: 1\r\n", 0}, {"---\r\nb: 2\r\n", 1}}));
}

TEST(SpecSplitter, KeepsWhatIsNotAMarker) {
  EXPECT_EQ(split("a: ----\n----\n  ---\nb: '---'\n"), (Documents{{"a: ----\n----\n  ---\nb: '---'\n", 0}}));
}

TEST(SpecSplitter, CommentsAloneAreNoDocumentAndDirectivesStayWithTheirs) {
  EXPECT_EQ(split("# header\n\n---\na: 1\n"), (Documents{{"---\na: 1\n", 2}}));
  EXPECT_EQ(split("# header\n%YAML 1.2\n---\na: 1\n---\nb: 2\n"),
            (Documents{{"# header\n%YAML 1.2\n---\na: 1\n", 0}, {"---\nb: 2\n", 4}}));
  EXPECT_EQ(split("# only\n# comments\n"), Documents{});
  EXPECT_EQ(split(""), Documents{});
  EXPECT_EQ(split("---\n---\n"), (Documents{{"---\n", 0}, {"---\n", 1}}));
}

TEST(SpecNames, SafeNamesAndIdentifiers) {
  EXPECT_TRUE(is_safe_name("tcp_connlat-1.2"));
  EXPECT_FALSE(is_safe_name(".x"));
  EXPECT_FALSE(is_safe_name("a/b"));
  EXPECT_FALSE(is_safe_name(std::string(65, 'a')));
  EXPECT_TRUE(is_c_identifier("_handle_exec2"));
  EXPECT_FALSE(is_c_identifier("2fast"));
  EXPECT_FALSE(is_c_identifier("a-b"));
  EXPECT_FALSE(is_c_identifier(""));
}

TEST(SpecNames, ProgramPaths) {
  for (std::string_view good : {"file:///a.o", "FILE:///a.o", "file://a.o", "http://h/a.o", "https://h/a", "ftp://h/a",
                                "/abs/a.o", "rel/a.o", "a.o", "weird:name.o"})
    EXPECT_EQ(program_path_problem(good), std::nullopt) << good;
  EXPECT_EQ(program_path_problem("s3://bucket/a.o"),
            "unsupported scheme 's3://' — use file://, http://, https://, ftp:// or a plain path");
  EXPECT_EQ(program_path_problem("http:///a.o"), "http:// needs a host, e.g. http://example.com/oom.bpf.o");
  EXPECT_EQ(program_path_problem("file://"), "file:// needs a path after it, e.g. file:///opt/probes/oom.bpf.o");
  EXPECT_EQ(program_path_problem(""), "the path is empty — give a file path or a file://, http(s):// or ftp:// URL");
  EXPECT_EQ(program_path_problem("a\nb"), "the path contains control characters — remove them");
}

TEST(SpecNames, AbsolutePaths) {
  EXPECT_EQ(absolute_path_problem("/var/lib/ebpf-agent/x/output"), std::nullopt);
  EXPECT_EQ(absolute_path_problem("/var/lib/..x/y"), std::nullopt);
  EXPECT_EQ(absolute_path_problem("/var/../x"), "must not contain '..' — write the resolved path");
  EXPECT_EQ(absolute_path_problem("/var/.."), "must not contain '..' — write the resolved path");
  EXPECT_EQ(absolute_path_problem("var/x"), "must be an absolute path (starting with '/')");
  EXPECT_EQ(absolute_path_problem("/var/x/"), "names a directory — give the file's path");
}

TEST(SpecNames, InterfacesAndDigests) {
  EXPECT_EQ(interface_name_problem("bond0.1234"), std::nullopt);
  EXPECT_NE(interface_name_problem("a_very_long_name0"), std::nullopt);
  EXPECT_NE(interface_name_problem("eth 0"), std::nullopt);
  EXPECT_NE(interface_name_problem(".."), std::nullopt);
  EXPECT_EQ(normalize_sha256(std::string(64, 'F')), std::string(64, 'f'));
  EXPECT_EQ(normalize_sha256(std::string(63, 'f')), std::nullopt);
  EXPECT_EQ(normalize_sha256(std::string(63, 'f') + "g"), std::nullopt);
}

}  // namespace
}  // namespace ea
