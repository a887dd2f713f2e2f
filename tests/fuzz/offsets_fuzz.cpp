// libFuzzer target for what the offsets database reads from untrusted files: database YAML text
// (first byte even) and ELF files (first byte odd; the rest is written to a memfd and opened as a
// library would be). Any bytes must give entries/problems or an error, never a crash, a hang, a
// read past the end or unbounded memory; every database problem names its file. Not part of the
// default build (needs clang 19 for std::expected with libstdc++). From the repository root:
//
//   clang++-19 -std=c++23 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
//     -Isrc -Iinclude tests/fuzz/offsets_fuzz.cpp src/l7/elf_file.cpp src/l7/file_identity.cpp \
//     src/l7/offsets_db.cpp src/spec/diagnostics.cpp src/spec/document_splitter.cpp \
//     src/spec/yaml_load.cpp src/spec/yaml_reader.cpp src/spec/suggest.cpp src/spec/spec.cpp \
//     -lyaml-cpp -lfmt -lspdlog -lelf -lxxhash -o /tmp/offsets_fuzz
//   mkdir -p /tmp/offsets_corpus && /tmp/offsets_fuzz -max_len=65536 -timeout=10 \
//     -rss_limit_mb=2048 /tmp/offsets_corpus
// Seeds: database files with a leading '\0' byte, and small ELF files with a leading '\1'.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "l7/elf_file.h"
#include "l7/file_identity.h"
#include "l7/offsets_db.h"

namespace {

void fuzz_database(std::string_view text) {
  ea::OffsetsDatabase database;
  database.add_text(text, "fuzz.yaml");
  for (const std::string& problem : database.problems())
    if (!problem.starts_with("fuzz.yaml")) __builtin_trap();
  for (const ea::OffsetsEntry& entry : database.entries()) {
    if (entry.symbols.empty() || (entry.build_id.empty() && entry.xxh3.empty())) __builtin_trap();
    // What generate writes reads back the same.
    ea::OffsetsDatabase reread;
    reread.add_text(ea::render_offsets_file(entry, {"fuzz"}), "again.yaml");
    if (reread.entries().size() != 1 || reread.entries()[0].symbols != entry.symbols ||
        reread.entries()[0].name != entry.name)
      __builtin_trap();
  }
}

void fuzz_elf(std::string_view bytes) {
  int fd = memfd_create("offsets_fuzz", MFD_CLOEXEC);
  if (fd < 0) return;
  if (write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size())) {
    std::string path = "/proc/self/fd/" + std::to_string(fd);
    if (auto file = ea::ElfFile::open(path)) {
      (void)file->build_id();
      (void)file->symbol_counts();
      for (const auto& [name, definitions] : file->functions()) {
        (void)ea::choose_definition(name, definitions);
        for (const ea::ElfFunction& function : definitions) {
          (void)file->file_offset_of_address(function.address);
          if (function.file_offset) (void)file->in_executable_code(*function.file_offset, 16);
        }
      }
      (void)file->find_function("main");
      (void)ea::xxh3_of_fd(file->fd());
    }
  }
  close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) fuzz_database(rest);
  else fuzz_elf(rest);
  return 0;
}
