// ElfFile and file identity on programs compiled by the test: build-ids as the linker wrote them,
// XXH3 against the one-shot hash, function offsets checked against the code the CPU runs, and
// files that are not ELF or are cut short refused with a clear error.
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <xxhash.h>

#include "elf_test_build.h"
#include "l7/elf_file.h"
#include "l7/file_identity.h"

namespace ea {
namespace {

using test::compile_c;
using test::read_all;
using test::run_command;
using test::TempDir;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string error_of(const std::string& path) {
  auto file = ElfFile::open(path);
  EXPECT_FALSE(file) << path << " was accepted";
  return file ? std::string() : file.error().message;
}

TEST(ElfIdentity, BuildIdIsTheOneTheLinkerWrote) {
  TempDir dir;
  std::string program = dir.file("with_id");
  ASSERT_TRUE(compile_c(dir, "p.c", test::kProbeProgram, program, "-Wl,--build-id=0x0123456789abcdeffedcba98"));
  auto identity = identify_file(program);
  ASSERT_TRUE(identity) << identity.error().message;
  EXPECT_EQ(identity->build_id, "0123456789abcdeffedcba98");
  EXPECT_EQ(identity->build_id_or_none(), "0123456789abcdeffedcba98");

  std::string sha1 = dir.file("sha1");
  ASSERT_TRUE(compile_c(dir, "p.c", test::kProbeProgram, sha1, "-Wl,--build-id=sha1"));
  std::string readelf = run_command("readelf -n '" + sha1 + "'").output;
  auto sha1_identity = identify_file(sha1);
  ASSERT_TRUE(sha1_identity) << sha1_identity.error().message;
  EXPECT_EQ(sha1_identity->build_id.size(), 40u);
  EXPECT_TRUE(contains(readelf, "Build ID: " + sha1_identity->build_id)) << readelf;
}

TEST(ElfIdentity, NoBuildIdIsNone) {
  TempDir dir;
  std::string program = dir.file("no_id");
  ASSERT_TRUE(compile_c(dir, "p.c", test::kProbeProgram, program, "-Wl,--build-id=none"));
  auto identity = identify_file(program);
  ASSERT_TRUE(identity) << identity.error().message;
  EXPECT_EQ(identity->build_id, "");
  EXPECT_EQ(identity->build_id_or_none(), "none");
  EXPECT_EQ(identity->xxh3.size(), 16u);
}

TEST(ElfIdentity, BuildIdFromProgramHeadersWhenSectionHeadersAreGone) {
  TempDir dir;
  std::string program = dir.file("no_sections");
  ASSERT_TRUE(compile_c(dir, "p.c", test::kProbeProgram, program, "-Wl,--build-id=0xfeedface00112233"));
  // Cut the section header table off the way sstrip does: e_shoff/e_shnum/e_shstrndx zeroed.
  int fd = open(program.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  Elf64_Ehdr header;
  ASSERT_EQ(pread(fd, &header, sizeof(header), 0), static_cast<ssize_t>(sizeof(header)));
  header.e_shoff = 0;
  header.e_shnum = 0;
  header.e_shstrndx = 0;
  ASSERT_EQ(pwrite(fd, &header, sizeof(header), 0), static_cast<ssize_t>(sizeof(header)));
  close(fd);
  auto identity = identify_file(program);
  ASSERT_TRUE(identity) << identity.error().message;
  EXPECT_EQ(identity->build_id, "feedface00112233");
}

TEST(ElfIdentity, Xxh3IsTheHashOfTheWholeFile) {
  TempDir dir;
  // Empty input has a published XXH3-64 value.
  std::string empty = dir.write("empty", "");
  int fd = open(empty.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  auto empty_hash = xxh3_of_fd(fd);
  close(fd);
  ASSERT_TRUE(empty_hash) << empty_hash.error().message;
  EXPECT_EQ(*empty_hash, "2d06800538d394c2");

  // Larger than the read buffer, so chunking is exercised; equal to the one-shot hash.
  std::string content;
  for (int i = 0; i < (3 << 20) + 12345; ++i) content.push_back(static_cast<char>((i * 2654435761u) >> 13));
  std::string big = dir.write("big", content);
  fd = open(big.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  auto hash = xxh3_of_fd(fd);
  close(fd);
  ASSERT_TRUE(hash) << hash.error().message;
  EXPECT_EQ(*hash, fmt::format("{:016x}", XXH3_64bits(content.data(), content.size())));
}

TEST(ElfIdentity, StrippingKeepsTheBuildIdButChangesTheHash) {
  TempDir dir;
  std::string program = dir.file("full");
  ASSERT_TRUE(compile_c(dir, "p.c", test::kProbeProgram, program, ""));
  std::string stripped = dir.file("stripped");
  ASSERT_EQ(run_command("strip -o '" + stripped + "' '" + program + "'").status, 0);
  auto full_identity = identify_file(program);
  auto stripped_identity = identify_file(stripped);
  ASSERT_TRUE(full_identity && stripped_identity);
  EXPECT_FALSE(full_identity->build_id.empty()) << "Debian's gcc links with a build-id by default";
  EXPECT_EQ(full_identity->build_id, stripped_identity->build_id);
  EXPECT_NE(full_identity->xxh3, stripped_identity->xxh3);

  auto full = ElfFile::open(program);
  auto bare = ElfFile::open(stripped);
  ASSERT_TRUE(full && bare);
  EXPECT_GT(full->symbol_counts().symtab, 0u);
  EXPECT_EQ(bare->symbol_counts().symtab, 0u);
  auto found = full->find_function("ea_probe_target");
  ASSERT_TRUE(found && *found);
  auto gone = bare->find_function("ea_probe_target");
  ASSERT_TRUE(gone) << gone.error().message;
  EXPECT_FALSE(*gone) << "a stripped program has no symbol for it";
}

// The offset ElfFile computes holds exactly the bytes the running program executes.
TEST(ElfFunctions, OffsetHoldsTheCodeTheCpuRuns) {
  TempDir dir;
  for (const char* flags : {"-fPIE -pie", "-no-pie"}) {
    SCOPED_TRACE(flags);
    std::string program = dir.file("probe");
    ASSERT_TRUE(compile_c(dir, "p.c", test::kProbeProgram, program, flags));
    test::CommandResult ran = run_command("'" + program + "'");
    ASSERT_EQ(ran.status, 0) << ran.output;
    std::string in_memory = ran.output.substr(0, 32);

    auto file = ElfFile::open(program);
    ASSERT_TRUE(file) << file.error().message;
    auto offset = file->find_function("ea_probe_target");
    ASSERT_TRUE(offset && *offset);
    EXPECT_TRUE(file->in_executable_code(**offset, 16));
    std::string bytes = read_all(program).substr(**offset, 16);
    EXPECT_EQ(test::hex_of(bytes), in_memory);
  }
}

TEST(ElfFunctions, SharedLibraryOffsetMatchesTheLoadedCode) {
  TempDir dir;
  std::string library = dir.file("libprobe.so");
  ASSERT_TRUE(compile_c(dir, "l.c",
                        "__attribute__((noinline)) int ea_lib_target(int x) { __asm__ volatile(\"\"); return x * 5; }\n",
                        library, "-shared -fPIC"));
  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr) << dlerror();
  auto* code = static_cast<const unsigned char*>(dlsym(handle, "ea_lib_target"));
  ASSERT_NE(code, nullptr);
  std::string loaded(reinterpret_cast<const char*>(code), 16);
  dlclose(handle);

  auto file = ElfFile::open(library);
  ASSERT_TRUE(file) << file.error().message;
  auto offset = file->find_function("ea_lib_target");
  ASSERT_TRUE(offset && *offset);
  EXPECT_EQ(test::hex_of(read_all(library).substr(**offset, 16)), test::hex_of(loaded));
  EXPECT_GT(file->symbol_counts().dynsym, 0u);
}

TEST(ElfFunctions, LocalWeakAndVersionedSymbols) {
  TempDir dir;
  std::string program = dir.file("probe");
  ASSERT_TRUE(compile_c(dir, "p.c", test::kProbeProgram, program, ""));
  auto file = ElfFile::open(program);
  ASSERT_TRUE(file);
  auto functions = file->functions();
  ASSERT_TRUE(functions.contains("ea_local_helper"));
  EXPECT_EQ(functions["ea_local_helper"].at(0).binding, STB_LOCAL);
  ASSERT_TRUE(functions.contains("ea_weak_target"));
  EXPECT_EQ(functions["ea_weak_target"].at(0).binding, STB_WEAK);
  auto weak = file->find_function("ea_weak_target");
  ASSERT_TRUE(weak && *weak);
  EXPECT_EQ(*weak, functions["ea_weak_target"].at(0).file_offset);
  auto missing = file->find_function("ea_probe");  // a prefix of a real name is not a match
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);

  // "name" matches "name@VERSION", as libbpf's lookup does.
  std::string library = dir.file("libversioned.so");
  std::string map = dir.write("v.map", "EA_1 { global: ea_versioned; local: *; };\n");
  ASSERT_TRUE(compile_c(dir, "v.c", "__attribute__((noinline)) int ea_versioned(int x) { return x + 1; }\n", library,
                        "-shared -fPIC -Wl,--version-script=" + map));
  auto versioned = ElfFile::open(library);
  ASSERT_TRUE(versioned);
  auto found = versioned->find_function("ea_versioned");
  ASSERT_TRUE(found && *found) << "the versioned definition is found by its plain name";
}

TEST(ElfFunctions, TwoStaticFunctionsOfOneNameAreAmbiguous) {
  TempDir dir;
  std::string a = dir.write("a.c", "__attribute__((noinline)) static int twin(int x) { __asm__ volatile(\"\"); return x + 1; }\n"
                                   "int call_a(int x) { return twin(x); }\n");
  std::string b = dir.write("b.c", "__attribute__((noinline)) static int twin(int x) { __asm__ volatile(\"\"); return x * 2; }\n"
                                   "int call_b(int x) { return twin(x); }\n"
                                   "int main(void) { return 0; }\n");
  std::string program = dir.file("twins");
  ASSERT_EQ(run_command("gcc -O2 -o '" + program + "' '" + a + "' '" + b + "'").status, 0);
  auto file = ElfFile::open(program);
  ASSERT_TRUE(file);
  auto twin = file->find_function("twin");
  ASSERT_FALSE(twin);
  EXPECT_TRUE(contains(twin.error().message, "'twin' is defined 2 times at different offsets")) << twin.error().message;
  EXPECT_TRUE(contains(twin.error().message, "give `offset:`")) << twin.error().message;
}

// A separate debug file (objcopy --only-keep-debug) keeps the symbols but neither the code nor the
// segments' file offsets: its addresses, converted through the original's layout, give the
// original's offsets.
TEST(ElfFunctions, DebugFileAddressesThroughTheOriginalLayout) {
  TempDir dir;
  std::string program = dir.file("probe");
  ASSERT_TRUE(compile_c(dir, "p.c", test::kProbeProgram, program, ""));
  std::string debug = dir.file("probe.debug");
  ASSERT_EQ(run_command("objcopy --only-keep-debug '" + program + "' '" + debug + "'").status, 0);
  std::string stripped = dir.file("probe.stripped");
  ASSERT_EQ(run_command("strip -o '" + stripped + "' '" + program + "'").status, 0);
  auto original = ElfFile::open(program);
  auto debug_file = ElfFile::open(debug);
  auto deployed = ElfFile::open(stripped);
  ASSERT_TRUE(original && debug_file && deployed) << (debug_file ? "" : debug_file.error().message);
  EXPECT_EQ(original->build_id(), debug_file->build_id());
  auto debug_functions = debug_file->functions();
  for (const char* name : {"ea_probe_target", "ea_local_helper", "main"}) {
    SCOPED_TRACE(name);
    auto want = original->find_function(name);
    ASSERT_TRUE(want && *want);
    ASSERT_EQ(debug_functions[name].size(), 1u);
    const ElfFunction& in_debug = debug_functions[name][0];
    EXPECT_FALSE(in_debug.file_offset) << "the debug file holds no code";
    EXPECT_EQ(deployed->file_offset_of_address(in_debug.address), **want);
    EXPECT_EQ(original->file_offset_of_address(in_debug.address), **want);
  }
  auto nothing = debug_file->find_function("ea_probe_target");
  ASSERT_TRUE(nothing);
  EXPECT_FALSE(*nothing) << "no uprobe can go into a file without code";
}

TEST(ElfFile, RefusesWhatIsNotAnElfFile) {
  TempDir dir;
  EXPECT_TRUE(contains(error_of(dir.write("text", "#!/bin/sh\necho hi\n")),
                       "is not an ELF file (it starts with 23 21 2f 62, an ELF file with 7f 45 4c 46)"));
  EXPECT_TRUE(contains(error_of(dir.write("empty", "")), "is not an ELF file: it is empty"));
  EXPECT_TRUE(contains(error_of(dir.file("missing")), "cannot open"));
  EXPECT_TRUE(contains(error_of(dir.path().string()), "is not a regular file"));

  std::string object = dir.file("p.o");
  ASSERT_TRUE(compile_c(dir, "p.c", test::kProbeProgram, object, "-c"));
  EXPECT_TRUE(contains(error_of(object), "is a relocatable object (.o): uprobes attach to executables and shared libraries"));
}

TEST(ElfFile, RefusesATruncatedFile) {
  TempDir dir;
  std::string program = dir.file("probe");
  ASSERT_TRUE(compile_c(dir, "p.c", test::kProbeProgram, program, ""));
  std::string whole = read_all(program);
  // Cut at many points: the header, the middle, just before the section headers. Every cut is
  // refused with a message that says what is wrong, and nothing reads past the end.
  for (size_t cut : {size_t{4}, size_t{20}, size_t{63}, size_t{64}, size_t{200}, whole.size() / 3, whole.size() / 2,
                     whole.size() - 1}) {
    SCOPED_TRACE(cut);
    std::string path = dir.write("cut", whole.substr(0, cut));
    std::string error = error_of(path);
    EXPECT_TRUE(contains(error, "truncated") || contains(error, "corrupt") || contains(error, "not a readable ELF"))
        << error;
  }
}

// Random damage to the headers must give an error or a readable file, never a crash or a read
// past the end (run under ASan in the sanitizer build).
TEST(ElfFile, SurvivesDamagedHeaders) {
  TempDir dir;
  std::string program = dir.file("probe");
  ASSERT_TRUE(compile_c(dir, "p.c", test::kProbeProgram, program, ""));
  std::string whole = read_all(program);
  uint32_t seed = 12345;
  auto next = [&seed] { return seed = seed * 1103515245u + 12345u; };
  for (int round = 0; round < 300; ++round) {
    std::string damaged = whole;
    for (int i = 0; i < 8; ++i) {
      size_t at = next() % 64;  // the ELF header
      if (round % 2) at = next() % damaged.size();
      damaged[at] = static_cast<char>(next() >> 16);
    }
    std::string path = dir.write("damaged", damaged);
    auto file = ElfFile::open(path);
    if (!file) continue;
    (void)file->build_id();
    (void)file->functions();
    (void)file->find_function("ea_probe_target");
  }
}

}  // namespace
}  // namespace ea
