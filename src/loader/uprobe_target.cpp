#include "loader/uprobe_target.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "l7/elf_file.h"
#include "l7/file_identity.h"
#include "l7/offsets_search_path.h"

namespace ea {
namespace {

namespace fs = std::filesystem;

// Multiarch library directories (Debian/Ubuntu), as libbpf's arch_specific_lib_paths().
constexpr const char* kArchLibraryDirs =
#if defined(__x86_64__)
    "/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu";
#elif defined(__aarch64__)
    "/lib/aarch64-linux-gnu:/usr/lib/aarch64-linux-gnu";
#else
    "";
#endif

bool is_library_name(std::string_view name) {
  return name.ends_with(".so") || name.find(".so.") != std::string_view::npos;
}

// The colon-separated lists searched for a name without '/', in order.
std::vector<std::string> search_lists(std::string_view binary) {
  std::vector<std::string> lists;
  auto env = [](const char* name) { const char* value = std::getenv(name); return value ? std::string(value) : std::string(); };
  if (is_library_name(binary)) {
    lists = {env("LD_LIBRARY_PATH"), "/usr/lib64:/usr/lib", kArchLibraryDirs};
  } else {
    lists = {env("PATH"), "/usr/bin:/usr/sbin"};
  }
  std::erase_if(lists, [](const std::string& list) { return list.empty(); });
  return lists;
}

bool is_regular_file(const std::string& path, int access_mode) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) && ::access(path.c_str(), access_mode) == 0;
}

}  // namespace

std::optional<std::string> resolve_uprobe_binary(std::string_view binary) {
  if (binary.empty()) return std::nullopt;
  if (binary.find('/') != std::string_view::npos) {
    std::string path(binary);
    return is_regular_file(path, R_OK) ? std::optional(path) : std::nullopt;
  }
  int mode = is_library_name(binary) ? R_OK : R_OK | X_OK;
  for (const std::string& list : search_lists(binary)) {
    std::string_view rest = list;
    while (true) {
      size_t colon = rest.find(':');
      std::string_view dir = rest.substr(0, colon);
      if (!dir.empty()) {
        std::string candidate = fmt::format("{}/{}", dir, binary);
        if (is_regular_file(candidate, mode)) return candidate;
      }
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  }
  return std::nullopt;
}

std::string uprobe_binary_search_description(std::string_view binary) {
  if (binary.find('/') != std::string_view::npos) return "no such readable file";
  std::string where = fmt::format("looked in {}", fmt::join(search_lists(binary), ":"));
  return where;
}

Result<UprobeSymbol> locate_uprobe_symbol(const std::string& path, const std::string& symbol,
                                          const OffsetsDatabaseSource& database) {
  auto file = ElfFile::open(path);
  if (!file) return std::unexpected(file.error());
  auto own = file->find_function(symbol);
  if (!own) return failf("{}: {}", path, own.error().message);
  if (*own) return UprobeSymbol{};

  auto hash = xxh3_of_fd(file->fd());
  if (!hash) return failf("{}: {}", path, hash.error().message);
  FileIdentity identity = identify(*file, std::move(*hash));
  std::string who = fmt::format("{} (build-id {}, xxh3 {})", path, identity.build_id_or_none(), identity.xxh3);
  std::string how = fmt::format(
      "to add it, run `ebpf-agent offsets generate UNSTRIPPED_COPY --symbols {} --identity-from {}` on an unstripped "
      "copy of the same build and save the output in {}/ or an --offsets-dir (see docs/offsets.md)",
      symbol, path, kOffsetsEtcDir);
  std::shared_ptr<const OffsetsDatabase> offsets = database ? database() : nullptr;
  std::string searched = offsets && !offsets->dirs().empty() ? fmt::format("{}", fmt::join(offsets->dirs(), ", ")) : "no directory found";
  auto match = offsets ? offsets->find(identity) : std::nullopt;
  if (!match) {
    return failf("symbol '{}' not found in {}, not in the offsets database either (searched: {}); {}", symbol, who,
                 searched, how);
  }
  const OffsetsEntry& entry = *match->entry;
  auto it = entry.symbols.find(symbol);
  if (it == entry.symbols.end()) {
    return failf("symbol '{}' not found in {}; the offsets database knows this file as '{}' ({}) but that entry has "
                 "no '{}'; {}",
                 symbol, who, entry.name, entry.pos.str(), symbol, how);
  }
  uint64_t offset = it->second;
  if (!file->in_executable_code(offset)) {
    return failf("offsets entry '{}' ({}) puts '{}' at 0x{:x}, outside the executable code of {}: the entry does not "
                 "fit this file — fix or remove it",
                 entry.name, entry.pos.str(), symbol, offset, who);
  }
  std::string matched_id = match->by == "build-id" ? identity.build_id : identity.xxh3;
  return UprobeSymbol{offset, fmt::format("offsets entry '{}' ({}, by {} {})", entry.name, entry.pos.str(), match->by,
                                          matched_id)};
}

}  // namespace ea
