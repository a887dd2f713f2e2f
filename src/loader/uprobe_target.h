// Where a uprobe goes: which files a spec's `binary` names on this host, and where `symbol` is in
// each — from the file's own symbol tables, or, when they lack it, from the offsets database
// entry for the file's identity (build-id or content hash).
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "l7/offsets_db.h"

namespace ea {

// A binary written without '/' is looked up as libbpf does: a library name (".so" at the end or
// ".so." inside) in $LD_LIBRARY_PATH, /usr/lib64, /usr/lib and the architecture's multiarch
// directories; a program in $PATH, /usr/bin, /usr/sbin. A path is taken as it is. nullopt when
// no such file exists here.
std::optional<std::string> resolve_uprobe_binary(std::string_view binary);
// Where resolve_uprobe_binary looks for `binary`, for "not found" messages.
std::string uprobe_binary_search_description(std::string_view binary);

struct UprobeSymbol {
  // Set when the offsets database placed the symbol; nullopt when the file's own symbol table has
  // it (libbpf then resolves the name itself).
  std::optional<uint64_t> database_offset;
  std::string source;  // "offsets entry 'NAME' (FILE:LINE, by build-id ID)" for the log
};

using OffsetsDatabaseSource = std::function<std::shared_ptr<const OffsetsDatabase>()>;

// Finds `symbol` in the ELF file at `path`. The database is only read when the symbol tables
// lack the symbol. The error names the file's identity and how to add it to the database.
Result<UprobeSymbol> locate_uprobe_symbol(const std::string& path, const std::string& symbol,
                                          const OffsetsDatabaseSource& database);

}  // namespace ea
