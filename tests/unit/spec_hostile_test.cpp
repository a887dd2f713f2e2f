// Hostile and broken input: every one gives an error (or a spec), never a crash or a hang.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include <fmt/format.h>

#include "spec_test_util.h"

namespace ea {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Every line of an error names the file first (the last may count the problems left out).
void expect_every_line_located(const std::string& errors) {
  size_t start = 0;
  while (start < errors.size()) {
    size_t end = std::min(errors.find('\n', start), errors.size());
    std::string_view line(errors.data() + start, end - start);
    if (!line.starts_with("... and ")) {
      EXPECT_TRUE(line.starts_with("t.yaml")) << line;
    }
    start = end + 1;
  }
}

std::string read_fixture(const std::string& name) {
  std::ifstream in(std::string(EA_SOURCE_DIR) + "/tests/fixtures/specs/" + name);
  return {std::istreambuf_iterator<char>(in), {}};
}

// A temporary file removed at scope exit.
struct TempFile {
  std::string path;
  explicit TempFile(std::string_view content) {
    char name[] = "/tmp/ea_spec_test_XXXXXX";
    int fd = mkstemp(name);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    close(fd);
    path = name;
  }
  ~TempFile() { std::filesystem::remove(path); }
};

TEST(SpecHostile, DeepFlowNesting) {
  std::string errors = errors_of("kind: ebpfprogram\nname: x\nspec: " + std::string(200'000, '['));
  EXPECT_THAT(errors, StartsWith("t.yaml:"));
  EXPECT_THAT(errors, HasSubstr("YAML syntax error"));
}

TEST(SpecHostile, DeepBlockNestingInAValue) {
  std::string yaml = program_yaml("path: x.o") + "      properties:\n        variables:\n";
  std::string indent = "          ";
  for (int level = 0; level < 100; ++level, indent += ' ') yaml += indent + fmt::format("k{}:\n", level);
  std::string errors = errors_of(yaml);
  EXPECT_THAT(errors, HasSubstr("nested deeper than 64 levels — flatten the value"));
  EXPECT_THAT(errors, StartsWith("t.yaml:76:"));  // the value of k65 (line 75) starts at line 76
}

// yaml-cpp 0.7 reads a stray ',' at block level as an empty document (and YAML::LoadAll loops
// on it forever, yaml-cpp#1040).
TEST(SpecHostile, StrayFlowTokensAreSyntaxErrors) {
  EXPECT_EQ(errors_of("# comment\n  , x\nkind: ebpfprogram\n"),
            "t.yaml:2:3: YAML syntax error: unexpected ',' here — check the indentation and quoting here");
  EXPECT_EQ(errors_of(std::string("kind: ebpfprogram\nname: x\n") + kMinimalBody + "---\n, x\n"),
            "t.yaml:7:1: YAML syntax error: unexpected ',' here — check the indentation and quoting here");
}

TEST(SpecHostile, AliasBombIsCutByTheNodeBudget) {
  // Nine levels of ten aliases each: 10^9 values if expanded.
  std::string yaml = program_yaml("path: x.o") + "      properties:\n        variables:\n          l0: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n";
  for (int level = 1; level < 9; ++level) {
    std::string alias = fmt::format("*l{}", level - 1);
    yaml += fmt::format("          l{}: &l{} [{}]\n", level, level,
                        fmt::join(std::vector<std::string>(10, alias), ", "));
  }
  auto started = std::chrono::steady_clock::now();
  std::string errors = errors_of(yaml);
  EXPECT_THAT(errors, HasSubstr("the document expands to more than 1048576 values (through aliases?)"));
  expect_every_line_located(errors);
  // Not a timing assertion on the code's speed: a bound that only an unbounded expansion breaks.
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
}

TEST(SpecHostile, AliasedProgramsAreReadOncePerUse) {
  auto specs = parse_test_yaml(R"(
kind: ebpfprogram
name: aliases
spec:
  programs:
    - &obj {name: obj, path: obj.bpf.o, type: ebpf_object}
    - *obj
)");
  ASSERT_FALSE(specs);
  EXPECT_THAT(specs.error().message, HasSubstr("t.yaml:5:19: field 'spec.programs[1].name': a program named 'obj' is "
                                               "already declared at line 5"));
}

TEST(SpecHostile, BinaryJunk) {
  std::mt19937 random(12345);
  for (int round = 0; round < 200; ++round) {
    std::string junk(1 + random() % 4096, '\0');
    for (char& c : junk) c = static_cast<char>(random());
    auto specs = parse_test_yaml(junk);
    ASSERT_FALSE(specs);
    expect_every_line_located(specs.error().message);
  }
  EXPECT_EQ(errors_of(std::string("kind: ebpfprogram\nna\0me: x\n", 26)),
            "t.yaml:2:3: a NUL byte — a spec is UTF-8 YAML text; is this a binary file?");
  EXPECT_EQ(errors_of("kind: ebpf\xc0\x80program\n"),
            "t.yaml:1:11: a byte that is not valid UTF-8 — a spec is UTF-8 YAML text; is this a binary file?");
  EXPECT_THAT(errors_of("name: \xed\xa0\x80\n"), HasSubstr("t.yaml:1:7: a byte that is not valid UTF-8"));
}

TEST(SpecHostile, MutatedSpecsNeverCrash) {
  const std::string sources[] = {read_fixture("oom.yaml"), read_fixture("tcp_tracer.yaml"),
                                 read_fixture("bpftrace_openfile.yaml"), read_fixture("attach_options.yaml"),
                                 read_fixture("multi.yaml")};
  const std::string_view inserts[] = {"[", "]", "{", "}", ":", "- ", "*a", "&a ", "\n", "  ", "---\n", "'", "\"",
                                      "!!str ", "? ", "|\n", "#", ",", "\t", "%", "@", "\\"};
  std::mt19937 random(4242);
  int accepted = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string text = sources[random() % std::size(sources)];
    for (int edit = 1 + random() % 4; edit > 0 && !text.empty(); --edit) {
      size_t at = random() % text.size();
      switch (random() % 4) {
        case 0: text.insert(at, inserts[random() % std::size(inserts)]); break;
        case 1: text.erase(at, 1 + random() % 8); break;
        case 2: text[at] = static_cast<char>(0x20 + random() % 0x5f); break;
        case 3: text.insert(at, text.substr(random() % text.size(), 1 + random() % 40)); break;
      }
    }
    auto specs = parse_test_yaml(text);
    if (specs)
      ++accepted;
    else
      expect_every_line_located(specs.error().message);
  }
  EXPECT_GT(accepted, 0);  // some mutations (comments, values) leave a valid spec
}

TEST(SpecHostile, OversizedText) {
  std::string big = std::string("kind: ebpfprogram\nname: x\n#") + std::string(kMaxSpecBytes, 'x');
  EXPECT_THAT(errors_of(big),
              StartsWith(fmt::format("t.yaml: the spec text is {} bytes, more than the 1048576 allowed — split it",
                                     big.size())));
  TempFile file(big);
  auto specs = parse_spec_file(file.path);
  ASSERT_FALSE(specs);
  EXPECT_EQ(specs.error().message,
            fmt::format("{}: the spec file is {} bytes, more than the 1048576 allowed — split it into several files",
                        file.path, big.size()));
}

TEST(SpecHostile, TooManyProblemsAreCounted) {
  std::string yaml = std::string("kind: ebpfprogram\nname: x\n") + kMinimalBody;
  for (int i = 0; i < 20'000; ++i) yaml += fmt::format("unknown{}: 1\n", i);
  std::string errors = errors_of(yaml);
  EXPECT_THAT(errors, StartsWith("t.yaml:6:1: field 'unknown0': unknown field 'unknown0'"));
  EXPECT_THAT(errors, HasSubstr("\n... and 19950 more problems"));
  EXPECT_EQ(std::ranges::count(errors, '\n'), 50);
}

TEST(SpecHostile, ListsAreBounded) {
  std::string programs = "kind: ebpfprogram\nname: x\nspec:\n  programs:\n";
  for (int i = 0; i <= 256; ++i) programs += fmt::format("    - {{name: p{}, path: p.o, type: ebpf_object}}\n", i);
  EXPECT_EQ(errors_of(programs),
            "t.yaml:5:5: field 'spec.programs': has 257 entries, more than the 256 a spec may have — split it into several "
            "specs");

  // Program-level channels add up: 2 x 200 channels.
  std::string channels = "kind: ebpfprogram\nname: x\nspec:\n  programs:\n";
  for (int program = 0; program < 2; ++program) {
    channels += fmt::format("    - name: u{}\n      path: u.so\n      type: user_so\n      channels:\n", program);
    for (int i = 0; i < 200; ++i) channels += fmt::format("        c{}_{}: {{type: ring_buffer}}\n", program, i);
  }
  EXPECT_EQ(errors_of(channels),
            "t.yaml:269:9: field 'spec.programs[1].channels.c1_56': the spec has 400 channels, more than the 256 allowed "
            "— split it into several specs");

  std::string progs = program_yaml("path: x.o") + "      properties:\n        progs: \"" + std::string(2000, ',') + "\"\n";
  EXPECT_THAT(errors_of(progs), HasSubstr("names 2001 programs, more than the 1024 a spec may have"));
}

TEST(SpecHostile, NotASpecAtAll) {
  EXPECT_EQ(errors_of(""), "t.yaml: no spec found — the text holds no YAML document with 'kind: ebpfprogram'");
  EXPECT_EQ(errors_of("# only a comment\n---\n...\n"),
            "t.yaml: no spec found — the text holds no YAML document with 'kind: ebpfprogram'");
  EXPECT_EQ(errors_of("just text"), "t.yaml:1:1: expected a map (indented 'key: value' lines), got 'just text'");
  EXPECT_EQ(errors_of("- a\n- b\n"), "t.yaml:1:1: expected a map (indented 'key: value' lines), got a list");
  EXPECT_EQ(errors_of("kind: ebpfprogram\n\tname: x\n"),
            "t.yaml:2:1: YAML syntax error: illegal tab when looking for indentation — check the indentation and quoting "
            "here");
}

TEST(SpecHostile, UnreadableFiles) {
  auto missing = parse_spec_file("/nonexistent/spec.yaml");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message,
            "/nonexistent/spec.yaml: cannot read the spec: No such file or directory — check the path");
  auto directory = parse_spec_file("/tmp");
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.error().message, "/tmp: is not a regular file — give the path of a YAML spec");
  auto device = parse_spec_file("/dev/zero");
  ASSERT_FALSE(device);
  EXPECT_THAT(device.error().message, HasSubstr("is not a regular file"));
}

TEST(SpecHostile, FileBaseDirIsAbsolute) {
  TempFile file(std::string("kind: ebpfprogram\nname: x\n") + kMinimalBody);
  auto cwd = std::filesystem::current_path();
  std::filesystem::current_path("/tmp");
  auto specs = parse_spec_file(std::filesystem::path(file.path).filename().string());
  std::filesystem::current_path(cwd);
  ASSERT_TRUE(specs) << specs.error().message;
  EXPECT_EQ(specs->at(0).base_dir, "/tmp");
  EXPECT_EQ(specs->at(0).source_file, std::filesystem::path(file.path).filename().string());
}

}  // namespace
}  // namespace ea
