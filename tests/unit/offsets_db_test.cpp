// The offsets database: its file format, every error an operator can make (with file:line and the
// fix, and the rest of the database still loaded), lookups by build-id and hash, directory
// search order, and the generated file read back.
#include <gtest/gtest.h>

#include "elf_test_build.h"
#include "l7/offsets_db.h"
#include "l7/offsets_search_path.h"

namespace ea {
namespace {

using test::TempDir;
namespace fs = std::filesystem;

constexpr const char* kBuildId = "0123456789abcdef0123456789abcdef01234567";

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Test YAML is written as R"(\n...)": line 1 is the line after R"(.
OffsetsDatabase parse(std::string_view text, const std::string& file = "db.yaml") {
  if (text.starts_with('\n')) text.remove_prefix(1);
  OffsetsDatabase database;
  database.add_text(text, file);
  return database;
}

std::string problems_of(const OffsetsDatabase& database) {
  std::string text;
  for (const std::string& problem : database.problems()) text += problem + "\n";
  return text;
}

TEST(OffsetsDatabase, ReadsEntriesAndFindsThemByIdentity) {
  auto database = parse(R"Y(
# Header comments are welcome.
kind: offsets
entries:
  - name: OpenSSL 3.0.15 libssl.so.3
    build_id: 0123456789ABCDEF0123456789abcdef01234567
    symbols:
      SSL_read: 0x35a40
      SSL_write: 220016
  - name: "grpc cygrpc (no build-id)"
    xxh3: "0XFEDCBA9876543210"
    symbols: {PyInit_cygrpc: 0x80aae, "_ZN4grpc4core3Foo@@V1": 0x1000}
)Y");
  ASSERT_EQ(database.problems().size(), 0u) << problems_of(database);
  ASSERT_EQ(database.entries().size(), 2u);
  const OffsetsEntry& ssl = database.entries()[0];
  EXPECT_EQ(ssl.name, "OpenSSL 3.0.15 libssl.so.3");
  EXPECT_EQ(ssl.build_id, kBuildId) << "build-ids are kept lowercase";
  EXPECT_EQ(ssl.symbols.at("SSL_read"), 0x35a40u);
  EXPECT_EQ(ssl.symbols.at("SSL_write"), 220016u);
  EXPECT_EQ(ssl.pos.str(), "db.yaml:4:5");

  auto by_id = database.find(FileIdentity{kBuildId, "1111111111111111"});
  ASSERT_TRUE(by_id);
  EXPECT_EQ(by_id->entry, &ssl);
  EXPECT_EQ(by_id->by, "build-id");

  auto by_hash = database.find(FileIdentity{"", "fedcba9876543210"});
  ASSERT_TRUE(by_hash);
  EXPECT_EQ(by_hash->entry->name, "grpc cygrpc (no build-id)");
  EXPECT_EQ(by_hash->by, "xxh3");
  EXPECT_EQ(by_hash->entry->symbols.at("_ZN4grpc4core3Foo@@V1"), 0x1000u);

  // A file with a build-id the database does not know is still found by its hash.
  auto fallback = database.find(FileIdentity{"aaaa", "fedcba9876543210"});
  ASSERT_TRUE(fallback);
  EXPECT_EQ(fallback->by, "xxh3");
  EXPECT_FALSE(database.find(FileIdentity{"aaaa", "0000000000000000"}));
}

// Every mistake names file:line:col and the field, says how to fix it, and costs only its own
// entry: the good entry after the bad ones still loads.
TEST(OffsetsDatabase, BadEntriesAreReportedAndSkipped) {
  auto database = parse(R"Y(
kind: offsets
entries:
  - name: bad build-id
    build_id: xyz
    symbols: {f: 0x10}
  - name: odd build-id
    build_id: abc
    symbols: {f: 0x10}
  - name: short hash
    xxh3: 1234
    symbols: {f: 0x10}
  - build_id: aabb
    symbols: {f: 0x10}
  - name: no identity
    symbols: {f: 0x10}
  - name: no symbols
    build_id: aabb
  - name: empty symbols
    build_id: aabb
    symbols: {}
  - name: bad offsets
    build_id: aabb
    symbols:
      zero: 0
      negative: -5
      text: here
      "two words": 0x10
  - name: typo
    build_ids: aabb
    symbols: {f: 0x10}
  - name: duplicate symbol
    build_id: aabb
    symbols:
      f: 0x10
      f: 0x20
  - name: good
    build_id: ccdd
    symbols: {SSL_read: 0x35a40}
)Y");
  std::string problems = problems_of(database);
  ASSERT_EQ(database.entries().size(), 1u) << problems;
  EXPECT_EQ(database.entries()[0].name, "good");
  for (const char* expected : {
           "db.yaml:4:15: field 'entries[0].build_id': 'xyz' is not a build-id: give its hex digits (`ebpf-agent offsets "
           "identify FILE` prints it, as does `readelf -n FILE`)",
           "db.yaml:7:15: field 'entries[1].build_id': 'abc' is not a build-id",
           "db.yaml:10:11: field 'entries[2].xxh3': '1234' is not an XXH3-64 hash: give its 16 hex digits",
           "db.yaml:12:5: field 'entries[3].name': missing — add 'name: ...' saying which build this is",
           "db.yaml:14:5: field 'entries[4].build_id': missing — an entry needs 'build_id' (or 'xxh3' for a file "
           "without one)",
           "db.yaml:16:5: field 'entries[5].symbols': missing — add 'symbols:' with 'FUNCTION: 0xOFFSET' lines",
           "db.yaml:20:14: field 'entries[6].symbols': lists no symbols",
           "db.yaml:24:13: field 'entries[7].symbols.zero': offset 0 is the ELF header, not a function",
           "db.yaml:25:17: field 'entries[7].symbols.negative': expected an integer from 0 to",
           "db.yaml:26:13: field 'entries[7].symbols.text': expected an integer",
           "db.yaml:27:7: field 'entries[7].symbols.two words': 'two words' is not a symbol name",
           "db.yaml:29:5: field 'entries[8].build_ids': unknown field 'build_ids' — use one of: name, build_id, xxh3, symbols (did you mean 'build_id'?)",
           "db.yaml:35:7: field 'entries[9].symbols.f': duplicate field 'f' (first written at line 34) — keep only one",
       }) {
    EXPECT_TRUE(contains(problems, expected)) << "missing: " << expected << "\nin:\n" << problems;
  }
}

TEST(OffsetsDatabase, FileLevelMistakes) {
  struct Case {
    const char* text;
    const char* expected;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"entries: []\n", "db.yaml:1:1: field 'kind': missing — add 'kind: offsets' at the top of the file"},
           {"kind: ebpfprogram\nname: x\n",
            "db.yaml:1:7: field 'kind': is 'ebpfprogram', not 'offsets' — this is a spec: move it out of the offsets "
            "directory"},
           {"kind: offsets\n", "field 'entries': missing — add 'entries:'"},
           {"kind: offsets\nentries:\n  - name: x\n    symbols: {a: 1\n",
            "YAML syntax error: end of map flow not found — check the indentation and quoting here (no entry of this "
            "file is used)"},
           {"- just\n- a list\n", "db.yaml:1:1: expected 'kind: offsets' and 'entries:' — is this an offsets database file?"},
           {"kind: offsets\nentries: {a: 1}\n", "db.yaml:2:10: field 'entries': expected a list"},
           {"# only a comment\n", "db.yaml: no entries — an offsets file holds 'kind: offsets' and an 'entries:' list"},
           {"kind: offsets\nentries: []\n---\nkind: offsets\n", "db.yaml:3:1: a second YAML document"},
       }) {
    auto database = parse(c.text);
    EXPECT_TRUE(contains(problems_of(database), c.expected)) << c.text << "\ngave:\n" << problems_of(database);
    EXPECT_TRUE(database.entries().empty());
  }
  constexpr char kWithNul[] = "kind: offsets\nentries:\n  - name: x\0y\n";
  std::string binary(kWithNul, sizeof(kWithNul) - 1);
  OffsetsDatabase with_nul;
  with_nul.add_text(binary, "bin.yaml");
  EXPECT_TRUE(contains(problems_of(with_nul), "bin.yaml:3: a NUL byte — an offsets file is YAML text"))
      << problems_of(with_nul);
}

TEST(OffsetsDatabase, DirectoriesInOrderBadFilesSkipped) {
  TempDir first;
  TempDir second;
  first.write("10-broken.yaml", "kind: offsets\nentries: [ {name: x\n");
  first.write("20-mine.yaml", fmt::format("kind: offsets\nentries:\n  - name: mine\n    build_id: {}\n    symbols: {{f: 0x20}}\n",
                                          kBuildId));
  first.write("README.md", "not read");
  first.write(".hidden.yaml", "not read either");
  second.write("shipped.yml", fmt::format("kind: offsets\nentries:\n  - name: shipped\n    build_id: {}\n    symbols: {{f: 0x10}}\n"
                                          "  - name: other\n    xxh3: 00000000000000aa\n    symbols: {{g: 0x30}}\n",
                                          kBuildId));
  auto database = OffsetsDatabase::load({first.path().string(), "/nonexistent/ea-offsets", second.path().string()});
  EXPECT_EQ(database.dirs(), (std::vector<std::string>{first.path().string(), second.path().string()}));
  EXPECT_EQ(database.files().size(), 3u);
  ASSERT_EQ(database.problems().size(), 1u) << problems_of(database);
  EXPECT_TRUE(contains(database.problems()[0], first.file("10-broken.yaml") + ":3:1: YAML syntax error")) << database.problems()[0];
  auto match = database.find(FileIdentity{kBuildId, ""});
  ASSERT_TRUE(match);
  EXPECT_EQ(match->entry->name, "mine") << "an earlier directory overrides a later one, silently";
  EXPECT_TRUE(database.find(FileIdentity{"", "00000000000000aa"}));
}

TEST(OffsetsDatabase, TwoEntriesForOneBuildInOneDirectoryIsAMistake) {
  TempDir dir;
  std::string entry = fmt::format("kind: offsets\nentries:\n  - name: NAME\n    build_id: {}\n    symbols: {{f: 0x20}}\n", kBuildId);
  dir.write("a.yaml", std::string(entry).replace(entry.find("NAME"), 4, "first"));
  dir.write("b.yaml", std::string(entry).replace(entry.find("NAME"), 4, "second"));
  auto database = OffsetsDatabase::load({dir.path().string()});
  ASSERT_EQ(database.problems().size(), 1u);
  EXPECT_EQ(database.problems()[0],
            fmt::format("{}:3:5: entry 'second' has the same build-id as entry 'first' at {}:3:5 — keep one (the first "
                        "is used)",
                        dir.file("b.yaml"), dir.file("a.yaml")));
  EXPECT_EQ(database.find(FileIdentity{kBuildId, ""})->entry->name, "first");
}

TEST(OffsetsDatabase, RenderedFileReadsBack) {
  OffsetsEntry entry{.name = "odd \"name\" \\ with: colon # and hash, and long: " + std::string(150, 'x'),
                     .build_id = kBuildId,
                     .symbols = {{"SSL_read", 0x35a40}, {"foo@@VERS_1", 0x10}, {"_Z3barv", 0x20}, {"x:y", 0x30},
                                 {"-dash", 0x40}, {"$dollar", 0x50}}};
  std::string text = render_offsets_file(entry, {"first line", "", "third"});
  EXPECT_TRUE(text.starts_with("# first line\n#\n# third\nkind: offsets\n")) << text;
  auto database = parse(text, "generated.yaml");
  ASSERT_TRUE(database.problems().empty()) << problems_of(database) << text;
  ASSERT_EQ(database.entries().size(), 1u);
  EXPECT_EQ(database.entries()[0].name, entry.name);
  EXPECT_EQ(database.entries()[0].build_id, entry.build_id);
  EXPECT_EQ(database.entries()[0].symbols, entry.symbols);

  OffsetsEntry hashed{.name = "h", .xxh3 = "00ff00ff00ff00ff", .symbols = {{"f", 1}}};
  auto reread = parse(render_offsets_file(hashed, {}));
  ASSERT_EQ(reread.entries().size(), 1u) << problems_of(reread);
  EXPECT_EQ(reread.entries()[0].xxh3, "00ff00ff00ff00ff");
  EXPECT_EQ(reread.entries()[0].build_id, "");
}

TEST(OffsetsDatabase, LimitsHoldOnHugeInput) {
  std::string many = "kind: offsets\nentries:\n";
  for (size_t i = 0; i <= kMaxOffsetsEntries; ++i) many += "  - {name: x, xxh3: 00000000000000aa, symbols: {f: 1}}\n";
  auto database = parse(many);
  EXPECT_TRUE(database.entries().empty());
  EXPECT_TRUE(contains(problems_of(database), "more than the 10000 a file may have — split it into several files"));

  OffsetsDatabase too_big;
  too_big.add_text(std::string(kMaxOffsetsFileBytes + 1, '#'), "big.yaml");
  EXPECT_TRUE(contains(problems_of(too_big), "big.yaml: 8388609 bytes, more than the 8388608"));

}

TEST(OffsetsSearchPath, OrderAndReloadOnChange) {
  TempDir given;
  TempDir from_env;
  const char* old_env = getenv("EBPF_AGENT_OFFSETS_PATH");
  std::string saved = old_env ? old_env : "";
  setenv("EBPF_AGENT_OFFSETS_PATH", (from_env.path().string() + "::" + given.path().string()).c_str(), 1);
  set_offsets_dirs({given.path().string()});

  std::vector<std::string> dirs = offsets_search_path();
  ASSERT_GE(dirs.size(), 4u);
  EXPECT_EQ(dirs[0], given.path().string());
  EXPECT_EQ(dirs[1], from_env.path().string()) << "empty and repeated entries are dropped";
  EXPECT_EQ(dirs[2], "/etc/ebpf-agent/offsets.d");
  EXPECT_TRUE(dirs[3].ends_with("/share/ebpf-agent/offsets")) << dirs[3];

  auto entry = [](const std::string& name, const std::string& hash) {
    return fmt::format("kind: offsets\nentries:\n  - {{name: {}, xxh3: {}, symbols: {{f: 0x10}}}}\n", name, hash);
  };
  from_env.write("a.yaml", entry("env", "00000000000000e1"));
  auto first = current_offsets_database();
  ASSERT_TRUE(first->find(FileIdentity{"", "00000000000000e1"}));
  EXPECT_EQ(current_offsets_database(), first) << "unchanged files are not read again";

  given.write("b.yaml", entry("given", "00000000000000e2"));
  auto second = current_offsets_database();
  EXPECT_NE(second, first) << "a new file is picked up";
  EXPECT_TRUE(second->find(FileIdentity{"", "00000000000000e2"}));
  fs::remove(given.path() / "b.yaml");
  EXPECT_FALSE(current_offsets_database()->find(FileIdentity{"", "00000000000000e2"})) << "a removed file is dropped";

  set_offsets_dirs({});
  if (old_env) setenv("EBPF_AGENT_OFFSETS_PATH", saved.c_str(), 1);
  else unsetenv("EBPF_AGENT_OFFSETS_PATH");
}

TEST(OffsetsIdentityText, Normalization) {
  EXPECT_EQ(normalize_build_id("ABcd"), "abcd");
  EXPECT_FALSE(normalize_build_id("a"));
  EXPECT_FALSE(normalize_build_id("abc"));
  EXPECT_FALSE(normalize_build_id("zz"));
  EXPECT_FALSE(normalize_build_id(std::string(130, 'a')));
  EXPECT_EQ(normalize_xxh3("0x00112233445566AA"), "00112233445566aa");
  EXPECT_FALSE(normalize_xxh3("00112233445566a"));
  EXPECT_FALSE(normalize_xxh3("00112233445566ag"));
}

}  // namespace
}  // namespace ea
