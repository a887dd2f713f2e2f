// What uprobes need from an ELF file, read with libelf: the GNU build-id, function symbols with
// their file offsets, and whether an offset lies in executable code. The file is untrusted: one
// that is not ELF, is cut short, or has tables pointing outside itself is refused with an error
// that says so, never read past its end.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

struct Elf;

namespace ea {

// One definition of a function symbol.
struct ElfFunction {
  uint64_t address = 0;  // st_value: the virtual address (relative to the load base for PIE/.so)
  // What a uprobe on this file wants: the address converted through its section or segment to a
  // position in the file, as libbpf computes it; nullopt when the file holds no code for it (a
  // separate debug file keeps the symbols but not the code).
  std::optional<uint64_t> file_offset;
  uint64_t size = 0;
  int binding = 0;  // STB_GLOBAL / STB_WEAK / STB_LOCAL
};

struct ElfSymbolCounts {
  size_t dynsym = 0;  // defined functions in .dynsym
  size_t symtab = 0;  // defined functions in .symtab (0 when stripped)
};

class ElfFile {
 public:
  static Result<ElfFile> open(const std::string& path);
  ElfFile(ElfFile&& other) noexcept;
  ElfFile& operator=(ElfFile&& other) noexcept;
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;
  ~ElfFile();

  const std::string& path() const { return path_; }
  int fd() const { return fd_; }
  uint64_t size() const { return size_; }

  // Lowercase hex of the NT_GNU_BUILD_ID note; "" when the file has none.
  std::string build_id() const;

  // Every defined function symbol of .dynsym and .symtab by name ("name@VERSION" kept as written),
  // each with its distinct definitions.
  std::map<std::string, std::vector<ElfFunction>> functions() const;
  ElfSymbolCounts symbol_counts() const;

  // The file offset of function `name`, as libbpf resolves it: "name" also matches "name@VER";
  // a global definition wins over weak ones; two global (or local) ones at different offsets are
  // ambiguous (an error). nullopt when no table defines it.
  Result<std::optional<uint64_t>> find_function(std::string_view name) const;

  // True when [offset, offset + length) is file content mapped executable (a PT_LOAD with PF_X).
  bool in_executable_code(uint64_t offset, uint64_t length = 1) const;

  // Where this file holds the bytes of `address` (a section with content, else a loadable
  // segment's file part); nullopt when it holds none. Converts an address read from another copy
  // of the same build (e.g. its debug file) to an offset in this one.
  std::optional<uint64_t> file_offset_of_address(uint64_t address) const;

 private:
  ElfFile(std::string path, int fd, uint64_t size, Elf* elf) : path_(std::move(path)), fd_(fd), size_(size), elf_(elf) {}
  std::optional<uint64_t> file_offset(uint64_t address, size_t section_index) const;
  void release();

  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  Elf* elf_ = nullptr;
};

// Picks the definition a uprobe on `name` uses among `candidates` (all for that one name), with
// libbpf's rule; the error names the competing addresses.
Result<ElfFunction> choose_definition(std::string_view name, const std::vector<ElfFunction>& candidates);

}  // namespace ea
