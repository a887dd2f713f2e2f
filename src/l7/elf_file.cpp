#include "l7/elf_file.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <mutex>
#include <utility>

#include <fmt/format.h>

namespace ea {
namespace {

const char* elf_error() {
  const char* message = elf_errmsg(-1);  // NULL when libelf recorded no error
  return message ? message : "no detail from libelf";
}

// `offset + length <= limit` without overflowing.
bool fits(uint64_t offset, uint64_t length, uint64_t limit) { return offset <= limit && length <= limit - offset; }

std::string describe_start(const unsigned char* bytes, size_t count) {
  std::string text;
  for (size_t i = 0; i < count; ++i) fmt::format_to(std::back_inserter(text), "{}{:02x}", i ? " " : "", bytes[i]);
  return text;
}

bool better_binding(int candidate, int current) {
  auto rank = [](int binding) { return binding == STB_GLOBAL ? 0 : binding == STB_WEAK ? 2 : 1; };
  return rank(candidate) < rank(current);
}

// Checks that every table and section the file declares lies inside it: libelf would otherwise
// fail later with a vaguer message, and a cut-short copy is a common operator mistake.
Result<void> check_layout(Elf* elf, const GElf_Ehdr& header, uint64_t size) {
  // The header tables first, from the ELF header itself (with extended numbering the count is in
  // the first section header, which must be there either way).
  uint64_t section_entries = header.e_shnum == 0 ? 1 : header.e_shnum;
  if (header.e_shoff != 0 && !fits(header.e_shoff, section_entries * header.e_shentsize, size)) {
    return failf("is truncated: its section header table ends past the end of the file ({} bytes)", size);
  }
  uint64_t segment_entries = header.e_phnum == PN_XNUM ? 1 : header.e_phnum;
  if (header.e_phoff != 0 && !fits(header.e_phoff, segment_entries * header.e_phentsize, size)) {
    return failf("is truncated: its program header table ends past the end of the file ({} bytes)", size);
  }
  size_t section_count = 0;
  size_t segment_count = 0;
  if (elf_getshdrnum(elf, &section_count) != 0) return failf("is corrupt: its section headers cannot be read ({})", elf_error());
  if (elf_getphdrnum(elf, &segment_count) != 0) return failf("is corrupt: its program headers cannot be read ({})", elf_error());
  if (section_count > 0 && !fits(header.e_shoff, uint64_t{section_count} * header.e_shentsize, size)) {
    return failf("is truncated: its section header table ends past the end of the file ({} bytes)", size);
  }
  if (segment_count > 0 && !fits(header.e_phoff, uint64_t{segment_count} * header.e_phentsize, size)) {
    return failf("is truncated: its program header table ends past the end of the file ({} bytes)", size);
  }
  size_t names_index = 0;
  bool have_names = elf_getshdrstrndx(elf, &names_index) == 0;
  for (Elf_Scn* section = elf_nextscn(elf, nullptr); section; section = elf_nextscn(elf, section)) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(section, &shdr)) return failf("is corrupt: a section header cannot be read ({})", elf_error());
    if (shdr.sh_type == SHT_NOBITS || shdr.sh_size == 0 || fits(shdr.sh_offset, shdr.sh_size, size)) continue;
    const char* name = have_names ? elf_strptr(elf, names_index, shdr.sh_name) : nullptr;
    return failf("is truncated: section {} ({}) ends at byte {}, past the end of the file ({} bytes)",
                 elf_ndxscn(section), name ? name : "?", shdr.sh_offset + shdr.sh_size, size);
  }
  for (size_t i = 0; i < segment_count; ++i) {
    GElf_Phdr phdr;
    if (!gelf_getphdr(elf, static_cast<int>(i), &phdr)) return failf("is corrupt: a program header cannot be read ({})", elf_error());
    if (phdr.p_type == PT_LOAD && !fits(phdr.p_offset, phdr.p_filesz, size)) {
      return failf("is truncated: loadable segment {} ends at byte {}, past the end of the file ({} bytes)", i,
                   phdr.p_offset + phdr.p_filesz, size);
    }
  }
  return {};
}

// The build-id among the notes of `data` (a note section or PT_NOTE segment), or "".
std::string build_id_in_notes(Elf_Data* data) {
  if (!data || !data->d_buf) return "";
  size_t offset = 0;
  GElf_Nhdr note;
  size_t name_offset = 0;
  size_t desc_offset = 0;
  while (offset < data->d_size) {
    size_t next = gelf_getnote(data, offset, &note, &name_offset, &desc_offset);
    if (next == 0 || next <= offset) break;
    const auto* bytes = static_cast<const unsigned char*>(data->d_buf);
    if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 && note.n_descsz > 0 &&
        fits(name_offset, 4, data->d_size) && std::memcmp(bytes + name_offset, "GNU", 4) == 0 &&
        fits(desc_offset, note.n_descsz, data->d_size)) {
      std::string hex;
      for (size_t i = 0; i < note.n_descsz; ++i) fmt::format_to(std::back_inserter(hex), "{:02x}", bytes[desc_offset + i]);
      return hex;
    }
    offset = next;
  }
  return "";
}

using FunctionVisitor = std::function<void(std::string_view name, const ElfFunction& function, bool dynamic)>;

}  // namespace

Result<ElfFile> ElfFile::open(const std::string& path) {
  static std::once_flag version_once;
  std::call_once(version_once, [] { elf_version(EV_CURRENT); });

  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return failf("cannot open {}: {}", path, std::strerror(errno));
  auto close_fd = [fd] { ::close(fd); };
  struct stat info {};
  if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    close_fd();
    return failf("{} is not a regular file", path);
  }
  auto size = static_cast<uint64_t>(info.st_size);
  unsigned char start[EI_NIDENT] = {};
  ssize_t got = pread(fd, start, sizeof(start), 0);
  if (got < SELFMAG || std::memcmp(start, ELFMAG, SELFMAG) != 0) {
    close_fd();
    if (got <= 0) return failf("{} is not an ELF file: it is empty", path);
    return failf("{} is not an ELF file (it starts with {}, an ELF file with 7f 45 4c 46)", path,
                 describe_start(start, std::min<size_t>(static_cast<size_t>(got), 4)));
  }
  Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  if (!elf) {
    close_fd();
    return failf("{} is not a readable ELF file: {}", path, elf_error());
  }
  ElfFile file(path, fd, size, elf);
  GElf_Ehdr header;
  if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &header)) {
    return failf("{} is truncated or corrupt: its ELF header cannot be read ({})", path, elf_error());
  }
  if (header.e_type != ET_EXEC && header.e_type != ET_DYN) {
    std::string_view kind = header.e_type == ET_REL ? "a relocatable object (.o)" : header.e_type == ET_CORE ? "a core dump" : "not an executable";
    return failf("{} is {}: uprobes attach to executables and shared libraries", path, kind);
  }
  if (auto layout = check_layout(elf, header, size); !layout) return failf("{} {}", path, layout.error().message);
  return file;
}

ElfFile::ElfFile(ElfFile&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      size_(other.size_),
      elf_(std::exchange(other.elf_, nullptr)) {}

ElfFile& ElfFile::operator=(ElfFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = other.size_;
    elf_ = std::exchange(other.elf_, nullptr);
  }
  return *this;
}

ElfFile::~ElfFile() { release(); }

void ElfFile::release() {
  if (elf_) elf_end(elf_);
  if (fd_ >= 0) ::close(fd_);
  elf_ = nullptr;
  fd_ = -1;
}

std::string ElfFile::build_id() const {
  bool had_note_sections = false;
  for (Elf_Scn* section = elf_nextscn(elf_, nullptr); section; section = elf_nextscn(elf_, section)) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(section, &shdr) || shdr.sh_type != SHT_NOTE) continue;
    had_note_sections = true;
    if (std::string id = build_id_in_notes(elf_getdata(section, nullptr)); !id.empty()) return id;
  }
  if (had_note_sections) return "";
  // No section headers to go by (an sstrip'ed file): the loader's view, PT_NOTE segments.
  size_t segment_count = 0;
  if (elf_getphdrnum(elf_, &segment_count) != 0) return "";
  for (size_t i = 0; i < segment_count; ++i) {
    GElf_Phdr phdr;
    if (!gelf_getphdr(elf_, static_cast<int>(i), &phdr) || phdr.p_type != PT_NOTE || !fits(phdr.p_offset, phdr.p_filesz, size_))
      continue;
    Elf_Data* data = elf_getdata_rawchunk(elf_, static_cast<int64_t>(phdr.p_offset), phdr.p_filesz,
                                          phdr.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
    if (std::string id = build_id_in_notes(data); !id.empty()) return id;
  }
  return "";
}

std::optional<uint64_t> ElfFile::file_offset(uint64_t address, size_t section_index) const {
  // As libbpf does: through the symbol's section (st_value - sh_addr + sh_offset) ...
  GElf_Shdr shdr;
  Elf_Scn* section = elf_getscn(elf_, section_index);
  if (section && gelf_getshdr(section, &shdr)) {
    if (shdr.sh_type == SHT_NOBITS) return std::nullopt;  // no bytes here: a debug file's .text
    if (address >= shdr.sh_addr && address - shdr.sh_addr < shdr.sh_size) return address - shdr.sh_addr + shdr.sh_offset;
  }
  return file_offset_of_address(address);
}

std::optional<uint64_t> ElfFile::file_offset_of_address(uint64_t address) const {
  for (Elf_Scn* section = elf_nextscn(elf_, nullptr); section; section = elf_nextscn(elf_, section)) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(section, &shdr) || shdr.sh_type == SHT_NOBITS || !(shdr.sh_flags & SHF_ALLOC)) continue;
    if (address >= shdr.sh_addr && address - shdr.sh_addr < shdr.sh_size) return address - shdr.sh_addr + shdr.sh_offset;
  }
  // No section headers (an sstrip'ed file): the loader's view.
  size_t segment_count = 0;
  if (elf_getphdrnum(elf_, &segment_count) != 0) return std::nullopt;
  for (size_t i = 0; i < segment_count; ++i) {
    GElf_Phdr phdr;
    if (!gelf_getphdr(elf_, static_cast<int>(i), &phdr) || phdr.p_type != PT_LOAD) continue;
    if (address >= phdr.p_vaddr && address - phdr.p_vaddr < phdr.p_filesz) return address - phdr.p_vaddr + phdr.p_offset;
  }
  return std::nullopt;
}

namespace {

void visit_functions(Elf* elf, const std::function<std::optional<uint64_t>(uint64_t, size_t)>& to_offset,
                     const FunctionVisitor& visit) {
  size_t symbol_size = gelf_fsize(elf, ELF_T_SYM, 1, EV_CURRENT);
  if (symbol_size == 0) return;
  for (Elf_Scn* section = elf_nextscn(elf, nullptr); section; section = elf_nextscn(elf, section)) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(section, &shdr) || (shdr.sh_type != SHT_SYMTAB && shdr.sh_type != SHT_DYNSYM)) continue;
    Elf_Data* data = elf_getdata(section, nullptr);
    if (!data) continue;
    size_t count = data->d_size / symbol_size;
    for (size_t i = 1; i < count; ++i) {  // entry 0 is the undefined symbol
      GElf_Sym symbol;
      if (!gelf_getsym(data, static_cast<int>(i), &symbol)) break;
      if (GELF_ST_TYPE(symbol.st_info) != STT_FUNC || symbol.st_shndx == SHN_UNDEF || symbol.st_shndx >= SHN_LORESERVE)
        continue;
      const char* name = elf_strptr(elf, shdr.sh_link, symbol.st_name);
      if (!name || !*name) continue;
      visit(name,
            ElfFunction{symbol.st_value, to_offset(symbol.st_value, symbol.st_shndx), symbol.st_size,
                        GELF_ST_BIND(symbol.st_info)},
            shdr.sh_type == SHT_DYNSYM);
    }
  }
}

// Adds one definition, merging one seen before at the same address (the stronger binding stays).
void add_definition(std::vector<ElfFunction>& definitions, const ElfFunction& function) {
  for (ElfFunction& known : definitions) {
    if (known.address != function.address) continue;
    if (better_binding(function.binding, known.binding)) known.binding = function.binding;
    if (known.size == 0) known.size = function.size;
    return;
  }
  definitions.push_back(function);
}

}  // namespace

std::map<std::string, std::vector<ElfFunction>> ElfFile::functions() const {
  std::map<std::string, std::vector<ElfFunction>> result;
  visit_functions(
      elf_, [this](uint64_t address, size_t index) { return file_offset(address, index); },
      [&](std::string_view name, const ElfFunction& function, bool) { add_definition(result[std::string(name)], function); });
  return result;
}

ElfSymbolCounts ElfFile::symbol_counts() const {
  ElfSymbolCounts counts;
  visit_functions(
      elf_, [this](uint64_t address, size_t index) { return file_offset(address, index); },
      [&](std::string_view, const ElfFunction&, bool dynamic) { ++(dynamic ? counts.dynsym : counts.symtab); });
  return counts;
}

Result<std::optional<uint64_t>> ElfFile::find_function(std::string_view name) const {
  bool qualified = name.find('@') != std::string_view::npos;
  std::vector<ElfFunction> definitions;
  visit_functions(
      elf_, [this](uint64_t address, size_t index) { return file_offset(address, index); },
      [&](std::string_view symbol, const ElfFunction& function, bool) {
        bool match = symbol == name ||
                     (!qualified && symbol.size() > name.size() && symbol.starts_with(name) && symbol[name.size()] == '@');
        if (match && function.file_offset) add_definition(definitions, function);
      });
  if (definitions.empty()) return std::optional<uint64_t>();
  auto chosen = choose_definition(name, definitions);
  if (!chosen) return std::unexpected(chosen.error());
  return chosen->file_offset;
}

bool ElfFile::in_executable_code(uint64_t offset, uint64_t length) const {
  size_t segment_count = 0;
  if (elf_getphdrnum(elf_, &segment_count) != 0) return false;
  for (size_t i = 0; i < segment_count; ++i) {
    GElf_Phdr phdr;
    if (!gelf_getphdr(elf_, static_cast<int>(i), &phdr) || phdr.p_type != PT_LOAD || !(phdr.p_flags & PF_X)) continue;
    if (offset >= phdr.p_offset && fits(offset - phdr.p_offset, length, phdr.p_filesz)) return true;
  }
  return false;
}

Result<ElfFunction> choose_definition(std::string_view name, const std::vector<ElfFunction>& candidates) {
  if (candidates.empty()) return failf("no definition of '{}'", name);
  std::vector<const ElfFunction*> strong;
  for (const ElfFunction& function : candidates) {
    bool seen = std::ranges::any_of(strong, [&](const ElfFunction* known) { return known->address == function.address; });
    if (function.binding != STB_WEAK && !seen) strong.push_back(&function);
  }
  if (strong.size() == 1) return *strong.front();
  if (strong.empty()) return candidates.front();  // only weak definitions: the first, as libbpf
  std::vector<std::string> places;
  for (const ElfFunction* function : strong)
    places.push_back(fmt::format("0x{:x}", function->file_offset.value_or(function->address)));
  return failf("'{}' is defined {} times at different offsets ({}): it is ambiguous (static functions of one name "
               "in several source files?) — give `offset:` instead of `symbol:`",
               name, strong.size(), fmt::join(places, ", "));
}

}  // namespace ea
