// Where a uprobe goes: `binary` candidates resolved like libbpf resolves names, the spec syntax
// for them, and a symbol placed from the file's own tables or, for a stripped file, from the
// offsets database — with the error an operator can act on when neither has it.
#include <stdlib.h>

#include <gtest/gtest.h>

#include "elf_test_build.h"
#include "l7/elf_file.h"
#include "l7/file_identity.h"
#include "loader/uprobe_target.h"
#include "spec_test_util.h"

namespace ea {
namespace {

using test::compile_c;
namespace fs = std::filesystem;
using test::run_command;
using test::TempDir;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) setenv(name_, old_->c_str(), 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(UprobeBinary, ResolvedLikeLibbpf) {
  TempDir dir;
  // A path is taken as it is.
  std::string library = dir.write("libea_probe.so.1", "x");
  EXPECT_EQ(resolve_uprobe_binary(library), library);
  EXPECT_FALSE(resolve_uprobe_binary(dir.file("libnothing.so")));
  EXPECT_FALSE(resolve_uprobe_binary(dir.path().string())) << "a directory is not a binary";

  // Library names: $LD_LIBRARY_PATH first, then the system directories.
  {
    ScopedEnv env("LD_LIBRARY_PATH", "/nonexistent:" + dir.path().string());
    EXPECT_EQ(resolve_uprobe_binary("libea_probe.so.1"), library);
  }
  auto libc = resolve_uprobe_binary("libc.so.6");
  ASSERT_TRUE(libc);
  EXPECT_TRUE(*libc == "/lib/x86_64-linux-gnu/libc.so.6" || *libc == "/usr/lib/x86_64-linux-gnu/libc.so.6") << *libc;
  EXPECT_FALSE(resolve_uprobe_binary("libea_never_installed.so.9"));
  EXPECT_TRUE(contains(uprobe_binary_search_description("libea_never_installed.so.9"),
                       "looked in /usr/lib64:/usr/lib:/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu"));

  // Program names: $PATH, and only executable files.
  std::string tool = dir.write("ea_tool", "#!/bin/sh\n");
  {
    ScopedEnv env("PATH", dir.path().string());
    EXPECT_FALSE(resolve_uprobe_binary("ea_tool")) << "not executable";
    fs::permissions(tool, fs::perms::owner_exec, fs::perm_options::add);
    EXPECT_EQ(resolve_uprobe_binary("ea_tool"), tool);
  }
}

// `binary` as one string or a list of candidates, and the mistakes in it.
TEST(UprobeBinarySpec, OneOrAList) {
  auto binaries_of = [](const std::string& binary) -> std::vector<std::string> {
    std::string yaml = fmt::format(R"(
kind: ebpfprogram
name: t
spec:
  programs:
    - name: p
      path: p.bpf.o
      type: ebpf_object
      properties:
        attach:
          probe: {{binary: {}, symbol: SSL_read}}
)",
                                   binary);
    auto specs = parse_test_yaml(yaml);
    EXPECT_TRUE(specs) << (specs ? "" : specs.error().message);
    if (!specs) return {};
    return std::get<EbpfObjectProps>(specs->at(0).programs.at(0).props).attach.at(0).binary;
  };
  EXPECT_EQ(binaries_of("libssl.so.3"), std::vector<std::string>{"libssl.so.3"});
  std::string long_path = "/opt/" + std::string(120, 'a') + "/lib/libssl.so.3";
  EXPECT_EQ(binaries_of(long_path), std::vector<std::string>{long_path});
  EXPECT_EQ(binaries_of("[libssl.so.3, libssl.so.1.1, /opt/app/lib/libssl.so]"),
            (std::vector<std::string>{"libssl.so.3", "libssl.so.1.1", "/opt/app/lib/libssl.so"}));

  auto error_for = [](const std::string& binary) {
    return errors_of(fmt::format(R"(
kind: ebpfprogram
name: t
spec:
  programs:
    - name: p
      path: p.bpf.o
      type: ebpf_object
      properties:
        attach:
          probe:
            symbol: SSL_read
            binary: {}
)",
                                 binary));
  };
  EXPECT_TRUE(contains(error_for("[]"), "t.yaml:12:21: field 'spec.programs[0].properties.attach.probe.binary': lists "
                                        "no binaries — give a path or library name"))
      << error_for("[]");
  EXPECT_TRUE(contains(error_for("[libssl.so.3, libssl.so.3]"),
                       "t.yaml:12:35: field 'spec.programs[0].properties.attach.probe.binary[1]': 'libssl.so.3' is "
                       "listed twice — keep one"))
      << error_for("[libssl.so.3, libssl.so.3]");
  EXPECT_TRUE(contains(error_for("{path: x}"), "field 'spec.programs[0].properties.attach.probe.binary': expected a path "
                                               "or library name, or a list of them, e.g."));
  EXPECT_TRUE(contains(error_for("[libssl.so.3, \"\"]"), "binary[1]': is empty — give a path or a library name"));
  EXPECT_TRUE(contains(error_for("\"\""), "binary': is empty"));
  EXPECT_TRUE(contains(error_for("[libssl.so.3, [nested]]"), "binary[1]': expected a string"));
  EXPECT_TRUE(contains(error_for("\"lib\\nssl\""), "'lib\\x0assl' is not a file path or library name"));
  std::string many = "[";
  for (int i = 0; i < 17; ++i) many += fmt::format("{}lib{}.so", i ? ", " : "", i);
  EXPECT_TRUE(contains(error_for(many + "]"), "lists 17 binaries, more than the 16 a uprobe may try"));
}

// A program and its stripped copy, built once for the tests below.
class StrippedProgram : public ::testing::Test {
 protected:
  void SetUp() override {
    full_ = dir_.file("probe");
    stripped_ = dir_.file("probe.stripped");
    ASSERT_TRUE(compile_c(dir_, "p.c", test::kProbeProgram, full_, ""));
    ASSERT_EQ(run_command("strip -o '" + stripped_ + "' '" + full_ + "'").status, 0);
    auto file = ElfFile::open(full_);
    ASSERT_TRUE(file);
    auto offset = file->find_function("ea_probe_target");
    ASSERT_TRUE(offset && *offset);
    offset_ = **offset;
    auto identity = identify_file(stripped_);
    ASSERT_TRUE(identity);
    identity_ = *identity;
  }

  OffsetsDatabaseSource database_with(const std::string& yaml) {
    auto database = std::make_shared<OffsetsDatabase>();
    database->add_text(yaml, "db.yaml");
    EXPECT_TRUE(database->problems().empty()) << database->problems().at(0);
    return [database] { return database; };
  }

  TempDir dir_;
  std::string full_;
  std::string stripped_;
  uint64_t offset_ = 0;
  FileIdentity identity_;
};

TEST_F(StrippedProgram, OwnSymbolTableFirstDatabaseNotRead) {
  bool asked = false;
  auto located = locate_uprobe_symbol(full_, "ea_probe_target", [&asked] {
    asked = true;
    return std::shared_ptr<const OffsetsDatabase>();
  });
  ASSERT_TRUE(located) << located.error().message;
  EXPECT_FALSE(located->database_offset) << "libbpf resolves a symbol the file has";
  EXPECT_FALSE(asked) << "the database is only read for symbols the file lacks";
}

TEST_F(StrippedProgram, DatabaseGivesTheOffsetByBuildId) {
  auto located = locate_uprobe_symbol(
      stripped_, "ea_probe_target",
      database_with(fmt::format("kind: offsets\nentries:\n  - name: test probe\n    build_id: {}\n    symbols: "
                                "{{ea_probe_target: 0x{:x}}}\n",
                                identity_.build_id, offset_)));
  ASSERT_TRUE(located) << located.error().message;
  EXPECT_EQ(located->database_offset, offset_);
  EXPECT_EQ(located->source, fmt::format("offsets entry 'test probe' (db.yaml:3:5, by build-id {})", identity_.build_id));
}

TEST_F(StrippedProgram, DatabaseGivesTheOffsetByHash) {
  auto located = locate_uprobe_symbol(
      stripped_, "ea_probe_target",
      database_with(fmt::format("kind: offsets\nentries:\n  - name: hashed\n    xxh3: {}\n    symbols: "
                                "{{ea_probe_target: 0x{:x}}}\n",
                                identity_.xxh3, offset_)));
  ASSERT_TRUE(located) << located.error().message;
  EXPECT_EQ(located->database_offset, offset_);
  EXPECT_TRUE(contains(located->source, "by xxh3 " + identity_.xxh3)) << located->source;
}

TEST_F(StrippedProgram, NeitherSymbolNorEntryIsAClearError) {
  auto located = locate_uprobe_symbol(stripped_, "ea_probe_target", database_with("kind: offsets\nentries: []\n"));
  ASSERT_FALSE(located);
  EXPECT_TRUE(contains(located.error().message,
                       fmt::format("symbol 'ea_probe_target' not found in {} (build-id {}, xxh3 {}), not in the offsets "
                                   "database either",
                                   stripped_, identity_.build_id, identity_.xxh3)))
      << located.error().message;
  EXPECT_TRUE(contains(located.error().message,
                       "run `ebpf-agent offsets generate UNSTRIPPED_COPY --symbols ea_probe_target --identity-from " +
                           stripped_))
      << located.error().message;
}

TEST_F(StrippedProgram, EntryWithoutTheSymbolOrWithABadOffset) {
  std::string entry = fmt::format("kind: offsets\nentries:\n  - name: partial\n    build_id: {}\n    symbols: ", identity_.build_id);
  auto lacking = locate_uprobe_symbol(stripped_, "ea_probe_target", database_with(entry + "{other: 0x10}\n"));
  ASSERT_FALSE(lacking);
  EXPECT_TRUE(contains(lacking.error().message,
                       "the offsets database knows this file as 'partial' (db.yaml:3:5) but that entry has no "
                       "'ea_probe_target'"))
      << lacking.error().message;

  auto outside = locate_uprobe_symbol(stripped_, "ea_probe_target", database_with(entry + "{ea_probe_target: 0x40}\n"));
  ASSERT_FALSE(outside);
  EXPECT_TRUE(contains(outside.error().message,
                       "offsets entry 'partial' (db.yaml:3:5) puts 'ea_probe_target' at 0x40, outside the executable "
                       "code of"))
      << outside.error().message;
}

TEST_F(StrippedProgram, NotAnElfFileIsSaidSo) {
  std::string script = dir_.write("script.sh", "#!/bin/sh\n");
  auto located = locate_uprobe_symbol(script, "main", nullptr);
  ASSERT_FALSE(located);
  EXPECT_TRUE(contains(located.error().message, "is not an ELF file")) << located.error().message;
}

}  // namespace
}  // namespace ea
