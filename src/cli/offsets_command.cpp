#include "cli/offsets_command.h"

#include <elf.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "l7/elf_file.h"
#include "l7/file_identity.h"
#include "l7/offsets_db.h"
#include "l7/offsets_search_path.h"

namespace ea::cli {
namespace {

namespace fs = std::filesystem;

struct OffsetsOptions {
  std::string file;
  std::vector<std::string> dirs;  // identify: searched before the default search path
  std::string symbols;            // generate: comma-separated
  std::string name;
  std::string identity_from;
};

std::string basename_of(const std::string& path) { return fs::path(path).filename().string(); }

// What the file's own symbol table says about an entry's offset for `symbol`.
std::string compare_with_symbol_table(const ElfFile& file, const std::string& symbol, uint64_t offset) {
  std::string verdict = file.in_executable_code(offset) ? "" : "  OUTSIDE the file's executable code: wrong entry";
  auto own = file.find_function(symbol);
  if (!own || !*own) return verdict;
  if (**own == offset) return verdict + "  (the file's symbol table agrees)";
  return verdict + fmt::format("  (the file's symbol table says 0x{:x}: the entry is wrong for this file)", **own);
}

int identify_command(const OffsetsOptions& options) {
  auto file = ElfFile::open(options.file);
  if (!file) {
    std::cerr << "ebpf-agent offsets identify: " << file.error().message << "\n";
    return 1;
  }
  auto hash = xxh3_of_fd(file->fd());
  if (!hash) {
    std::cerr << "ebpf-agent offsets identify: " << options.file << ": " << hash.error().message << "\n";
    return 1;
  }
  FileIdentity identity = identify(*file, std::move(*hash));
  ElfSymbolCounts counts = file->symbol_counts();
  auto describe = [](size_t count, std::string_view table) {
    return count == 0 ? fmt::format("none in {}", table) : fmt::format("{} in {}", count, table);
  };
  std::cout << fmt::format("file:      {}\nbuild-id:  {}\nxxh3:      {}\nfunctions: {}, {}\n", options.file,
                           identity.build_id_or_none(), identity.xxh3, describe(counts.dynsym, ".dynsym"),
                           describe(counts.symtab, ".symtab"));

  set_offsets_dirs(options.dirs);
  OffsetsDatabase database = OffsetsDatabase::load(offsets_search_path());
  for (const std::string& problem : database.problems())
    std::cerr << "warning: offsets database: " << problem << " (the rest of the database is used)\n";
  auto match = database.find(identity);
  if (!match) {
    std::string searched = database.dirs().empty() ? "no database directory exists"
                                                   : fmt::format("searched {}", fmt::join(database.dirs(), ", "));
    std::cout << fmt::format(
        "entry:     unknown — no entry for this build in the offsets database ({}; {} entries)\n"
        "           to add one, run on an unstripped copy (or the debug file) of the same build:\n"
        "             ebpf-agent offsets generate UNSTRIPPED_COPY --symbols SSL_read,SSL_write --identity-from {} "
        "--name 'WHAT IT IS' > {}/NAME.yaml\n",
        searched, database.entries().size(), options.file, kOffsetsEtcDir);
    return 0;
  }
  const OffsetsEntry& entry = *match.value().entry;
  std::cout << fmt::format("entry:     '{}' (matched by {}) at {}\n", entry.name, match->by, entry.pos.str());
  for (const auto& [symbol, offset] : entry.symbols)
    std::cout << fmt::format("  {}: 0x{:x}{}\n", symbol, offset, compare_with_symbol_table(*file, symbol, offset));
  return 0;
}

Result<std::vector<std::string>> split_symbols(const std::string& text) {
  std::vector<std::string> names;
  std::string_view rest = text;
  while (true) {
    size_t comma = rest.find(',');
    std::string_view name = rest.substr(0, comma);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    if (name.empty()) return fail("--symbols: an empty name — give names separated by commas, e.g. SSL_read,SSL_write");
    if (std::ranges::find(names, name) == names.end()) names.emplace_back(name);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return names;
}

// The functions of the entry: the ones asked for (each must be in FILE's tables), else every
// global and weak function.
Result<std::map<std::string, ElfFunction>> collect_functions(const ElfFile& file, const OffsetsOptions& options) {
  std::map<std::string, std::vector<ElfFunction>> all = file.functions();
  std::map<std::string, ElfFunction> chosen;
  if (!options.symbols.empty()) {
    auto names = split_symbols(options.symbols);
    if (!names) return std::unexpected(names.error());
    std::vector<std::string> missing;
    for (const std::string& name : *names) {
      // "name" also matches "name@VERSION", as a uprobe's lookup does.
      std::vector<ElfFunction> definitions;
      for (auto it = all.lower_bound(name); it != all.end() && it->first.starts_with(name); ++it)
        if (it->first == name || it->first[name.size()] == '@')
          definitions.insert(definitions.end(), it->second.begin(), it->second.end());
      if (definitions.empty()) {
        missing.push_back(name);
        continue;
      }
      auto definition = choose_definition(name, definitions);
      if (!definition) return failf("{}: {}", file.path(), definition.error().message);
      chosen.emplace(name, *definition);
    }
    if (!missing.empty()) {
      return failf("{} has no function {} in its symbol tables — is it stripped? Use an unstripped copy of the same "
                   "build, or its separate debug file (e.g. /usr/lib/debug/.build-id/NN/REST.debug)",
                   file.path(), fmt::join(missing, ", "));
    }
    return chosen;
  }
  for (const auto& [name, definitions] : all) {
    bool exported = std::ranges::any_of(definitions, [](const ElfFunction& f) { return f.binding != STB_LOCAL; });
    if (!exported) continue;
    auto definition = choose_definition(name, definitions);
    if (!definition) {
      std::cerr << "warning: left out: " << definition.error().message << "\n";
      continue;
    }
    chosen.emplace(name, *definition);
  }
  if (chosen.empty())
    return failf("{} has no global functions in its symbol tables — name the ones you need with --symbols", file.path());
  return chosen;
}

// Offsets in `target` (the file the entry is for) of functions read from `source`: through the
// target's own layout, so a separate debug file (no code, rewritten segment offsets) gives the
// right offsets too. FILE and DEPLOYED must be one build: equal build-ids, or, without them, the
// same code bytes at every function FILE has code for.
Result<std::map<std::string, uint64_t>> offsets_in(const ElfFile& source, const ElfFile& target,
                                                   const std::map<std::string, ElfFunction>& functions) {
  std::string source_id = source.build_id();
  std::string target_id = target.build_id();
  if (!source_id.empty() && !target_id.empty() && source_id != target_id) {
    return failf("{} (build-id {}) and {} (build-id {}) are different builds: offsets from one do not fit the other",
                 source.path(), source_id, target.path(), target_id);
  }
  bool check_code = source_id.empty() || target_id.empty();
  size_t compared = 0;
  std::map<std::string, uint64_t> offsets;
  for (const auto& [name, function] : functions) {
    auto offset = target.file_offset_of_address(function.address);
    if (!offset || !target.in_executable_code(*offset)) {
      return failf("{} (address 0x{:x} in {}) is not in the executable code of {}: not the same build", name,
                   function.address, source.path(), target.path());
    }
    if (check_code && function.file_offset && source.in_executable_code(*function.file_offset, 16) &&
        target.in_executable_code(*offset, 16)) {
      unsigned char a[16];
      unsigned char b[16];
      if (pread(source.fd(), a, sizeof(a), static_cast<off_t>(*function.file_offset)) != 16 ||
          pread(target.fd(), b, sizeof(b), static_cast<off_t>(*offset)) != 16 || std::memcmp(a, b, 16) != 0) {
        return failf("{} and {} have different code for {}: not the same build", source.path(), target.path(), name);
      }
      ++compared;
    }
    offsets.emplace(name, *offset);
  }
  if (check_code && compared == 0)
    std::cerr << "warning: could not check that " << source.path() << " and " << target.path()
              << " are the same build (no build-ids, no code to compare)\n";
  return offsets;
}

int generate_command(const OffsetsOptions& options) {
  auto fail_with = [](const std::string& message) {
    std::cerr << "ebpf-agent offsets generate: " << message << "\n";
    return 1;
  };
  if (!options.name.empty())
    if (auto problem = offsets_entry_name_problem(options.name)) return fail_with("--name: " + *problem);
  auto file = ElfFile::open(options.file);
  if (!file) return fail_with(file.error().message);
  auto functions = collect_functions(*file, options);
  if (!functions) return fail_with(functions.error().message);

  std::optional<ElfFile> deployed;
  if (!options.identity_from.empty()) {
    auto opened = ElfFile::open(options.identity_from);
    if (!opened) return fail_with(opened.error().message);
    deployed = std::move(*opened);
  }
  const ElfFile& target = deployed ? *deployed : *file;
  std::map<std::string, uint64_t> symbols;
  if (deployed) {
    auto offsets = offsets_in(*file, *deployed, *functions);
    if (!offsets) return fail_with(offsets.error().message);
    symbols = std::move(*offsets);
  } else {
    for (const auto& [name, function] : *functions) {
      if (!function.file_offset) {
        return fail_with(fmt::format("{} holds no code for {} (a separate debug file?): pass --identity-from "
                                     "DEPLOYED_COPY, whose layout gives the offsets",
                                     options.file, name));
      }
      symbols.emplace(name, *function.file_offset);
    }
  }
  auto hash = xxh3_of_fd(target.fd());
  if (!hash) return fail_with(fmt::format("{}: {}", target.path(), hash.error().message));
  FileIdentity identity = identify(target, std::move(*hash));

  OffsetsEntry entry{.name = options.name.empty() ? basename_of(target.path()) : options.name,
                     .symbols = std::move(symbols)};
  // A build-id survives stripping; a content hash does not, so it is only right for the very file
  // that is deployed.
  if (!identity.build_id.empty()) {
    entry.build_id = identity.build_id;
  } else {
    entry.xxh3 = identity.xxh3;
    if (!deployed)
      std::cerr << "warning: " << options.file << " has no build-id, so the entry is keyed by the XXH3 hash of this very "
                << "file; a stripped copy hashes differently — pass --identity-from DEPLOYED_COPY to key it by the "
                   "file the hosts run\n";
  }
  std::vector<std::string> comment = {
      "Offsets database file for ebpf-agent (format: docs/offsets.md): the file offsets of functions",
      "a uprobe needs, for the build identified below, used when the file's own symbol tables lack them.",
      fmt::format("Drop it into {} (or a directory given with --offsets-dir).", kOffsetsEtcDir),
      fmt::format("Generated by `ebpf-agent offsets generate` from {}{}; {} symbol{}.", basename_of(options.file),
                  deployed ? fmt::format(", identity of {}", basename_of(options.identity_from)) : "",
                  entry.symbols.size(), entry.symbols.size() == 1 ? "" : "s"),
  };
  std::cout << render_offsets_file(entry, comment);
  return 0;
}

}  // namespace

void add_offsets_command(CLI::App& app) {
  auto* offsets = app.add_subcommand(
      "offsets", "The offsets database: file offsets of functions for libraries without symbols (docs/offsets.md)");
  offsets->require_subcommand(1);

  auto identify_options = std::make_shared<OffsetsOptions>();
  auto* identify_cmd = offsets->add_subcommand(
      "identify", "Print a file's build-id, XXH3 hash, symbol tables and its offsets database entry");
  identify_cmd->add_option("file", identify_options->file, "ELF file (library or program)")->required();
  identify_cmd->add_option("--offsets-dir", identify_options->dirs,
                           "Offsets database directory searched first (repeatable)")
      ->check(CLI::ExistingDirectory);
  identify_cmd->callback([identify_options] { throw CLI::RuntimeError(identify_command(*identify_options)); });

  auto generate_options = std::make_shared<OffsetsOptions>();
  auto* generate_cmd = offsets->add_subcommand(
      "generate", "Print an offsets database file for a build, from the symbol tables of an unstripped copy of it");
  generate_cmd->add_option("file", generate_options->file, "Unstripped ELF file, or its separate debug file")->required();
  generate_cmd->add_option("--symbols", generate_options->symbols,
                           "Functions to include, comma-separated (default: every global function)");
  generate_cmd->add_option("--name", generate_options->name, "What the build is, e.g. 'OpenSSL 3.0.15 libssl.so.3'");
  generate_cmd->add_option("--identity-from", generate_options->identity_from,
                           "The deployed (stripped) copy whose identity the entry takes; checked to be the same build");
  generate_cmd->callback([generate_options] { throw CLI::RuntimeError(generate_command(*generate_options)); });
}

}  // namespace ea::cli
