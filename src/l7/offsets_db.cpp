#include "l7/offsets_db.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "spec/diagnostics.h"
#include "spec/document_splitter.h"
#include "spec/yaml_load.h"
#include "spec/yaml_reader.h"

namespace ea {
namespace {

namespace fs = std::filesystem;

constexpr std::array<std::string_view, 2> kFileFields{"kind", "entries"};
constexpr std::array<std::string_view, 4> kEntryFields{"name", "build_id", "xxh3", "symbols"};
constexpr std::string_view kIdentifyHint = "`ebpf-agent offsets identify FILE` prints it";

bool is_hex(std::string_view text) {
  return std::ranges::all_of(text, [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  std::ranges::transform(out, out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// A symbol name as written in an entry: what a symbol table can hold, one printable word.
std::optional<std::string> symbol_name_problem(std::string_view name) {
  if (name.empty()) return "an empty symbol name — write 'FUNCTION: 0xOFFSET'";
  if (name.size() > kMaxSymbolNameBytes)
    return fmt::format("a symbol name of {} bytes, more than the {} allowed", name.size(), kMaxSymbolNameBytes);
  for (char c : name) {
    auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7f)
      return fmt::format("'{}' is not a symbol name (no spaces or control characters)", printable(name));
  }
  return std::nullopt;
}

std::optional<std::string> read_name(YamlReader& reader, const Field& item, const FieldMap& fields) {
  const Field* field = fields.get("name");
  if (!field) {
    reader.missing(item, "name", "add 'name: ...' saying which build this is, e.g. 'OpenSSL 3.0.15 libssl.so.3 (Debian 12)'");
    return std::nullopt;
  }
  auto text = reader.string(*field);
  if (!text) return std::nullopt;
  if (auto problem = offsets_entry_name_problem(*text)) {
    reader.error(*field, *problem);
    return std::nullopt;
  }
  return text;
}

bool read_identity(YamlReader& reader, const Field& item, const FieldMap& fields, OffsetsEntry& entry) {
  bool ok = true;
  if (const Field* field = fields.get("build_id")) {
    auto text = reader.string(*field);
    auto id = text ? normalize_build_id(*text) : std::nullopt;
    if (text && !id) {
      reader.error(*field, fmt::format("'{}' is not a build-id: give its hex digits ({}, as does `readelf -n FILE`)",
                                       printable(*text), kIdentifyHint));
    }
    if (id) entry.build_id = *id;
    ok = ok && id.has_value();
  }
  if (const Field* field = fields.get("xxh3")) {
    auto text = reader.string(*field);
    auto hash = text ? normalize_xxh3(*text) : std::nullopt;
    if (text && !hash) {
      reader.error(*field, fmt::format("'{}' is not an XXH3-64 hash: give its 16 hex digits ({})", printable(*text),
                                       kIdentifyHint));
    }
    if (hash) entry.xxh3 = *hash;
    ok = ok && hash.has_value();
  }
  if (!fields.get("build_id") && !fields.get("xxh3")) {
    reader.missing(item, "build_id",
                   fmt::format("an entry needs 'build_id' (or 'xxh3' for a file without one) to say which file it is "
                               "for; {}",
                               kIdentifyHint));
    return false;
  }
  return ok;
}

bool read_symbols(YamlReader& reader, const Field& item, const FieldMap& fields, OffsetsEntry& entry) {
  const Field* field = fields.get("symbols");
  if (!field) {
    reader.missing(item, "symbols", "add 'symbols:' with 'FUNCTION: 0xOFFSET' lines (`ebpf-agent offsets generate` writes them)");
    return false;
  }
  if (field->value.IsMap() && field->value.size() > kMaxOffsetsSymbols) {
    reader.error(*field, fmt::format("has {} symbols, more than the {} an entry may have — keep the ones probes use",
                                     field->value.size(), kMaxOffsetsSymbols));
    return false;
  }
  auto symbols = reader.entries(*field);
  if (!symbols) return false;
  if (symbols->empty()) {
    reader.error(*field, "lists no symbols — add 'FUNCTION: 0xOFFSET' lines (`ebpf-agent offsets generate` writes them)");
    return false;
  }
  bool ok = true;
  for (const Field& symbol : *symbols) {
    if (auto problem = symbol_name_problem(symbol.name)) {
      reader.error(reader.pos(symbol.key), symbol.path, *problem);
      ok = false;
      continue;
    }
    auto offset = reader.unsigned_integer(symbol, std::numeric_limits<uint64_t>::max());
    if (offset == 0u) {
      reader.error(symbol, "offset 0 is the ELF header, not a function — give the function's file offset "
                           "(`ebpf-agent offsets generate` prints it)");
      offset.reset();
    }
    if (!offset) {
      ok = false;
      continue;
    }
    entry.symbols.emplace(symbol.name, *offset);
  }
  return ok;
}

std::optional<OffsetsEntry> read_entry(YamlReader& reader, const Field& item) {
  auto fields = reader.fields(item, kEntryFields);
  if (!fields) return std::nullopt;
  OffsetsEntry entry{.pos = reader.pos(item)};
  auto name = read_name(reader, item, *fields);
  bool identity = read_identity(reader, item, *fields, entry);
  bool symbols = read_symbols(reader, item, *fields, entry);
  if (!name || !identity || !symbols) return std::nullopt;
  entry.name = std::move(*name);
  return entry;
}

// Reads one document's entries; `keep` receives each entry that had no problem of its own.
void read_document(YamlReader& reader, Diagnostics& diagnostics, const YAML::Node& node,
                   const std::function<void(OffsetsEntry)>& keep) {
  Field root = YamlReader::root(node);
  if (!node.IsMap()) {
    reader.error(root, "expected 'kind: offsets' and 'entries:' — is this an offsets database file?");
    return;
  }
  auto fields = reader.fields(root, kFileFields);
  if (!fields) return;
  const Field* kind = fields->get("kind");
  if (!kind) {
    reader.missing(root, "kind", "add 'kind: offsets' at the top of the file");
    return;
  }
  auto kind_text = reader.string(*kind);
  if (!kind_text) return;
  if (*kind_text != "offsets") {
    reader.error(*kind, fmt::format("is '{}', not 'offsets'{}", printable(*kind_text),
                                    *kind_text == "ebpfprogram"
                                        ? " — this is a spec: move it out of the offsets directory"
                                        : " — an offsets database file starts with 'kind: offsets'"));
    return;
  }
  const Field* entries = fields->get("entries");
  if (!entries) {
    reader.missing(root, "entries", "add 'entries:' with one '- name: ...' item per library build");
    return;
  }
  if (entries->value.IsSequence() && entries->value.size() > kMaxOffsetsEntries) {
    reader.error(*entries, fmt::format("has {} entries, more than the {} a file may have — split it into several files",
                                       entries->value.size(), kMaxOffsetsEntries));
    return;
  }
  auto items = reader.items(*entries);
  if (!items) return;
  for (const Field& item : *items) {
    size_t known_problems = diagnostics.size();
    auto entry = read_entry(reader, item);
    if (entry && diagnostics.size() == known_problems) keep(std::move(*entry));
  }
}

std::string yaml_quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte == 0x7f) {
      fmt::format_to(std::back_inserter(out), "\\x{:02x}", byte);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// Symbol names are written plain when YAML cannot read them as anything else.
std::string symbol_key(std::string_view name) {
  bool plain = !name.empty() && (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_') &&
               std::ranges::all_of(name, [](char c) {
                 return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '$';
               });
  return plain ? std::string(name) : yaml_quoted(name);
}

}  // namespace

std::optional<std::string> offsets_entry_name_problem(std::string_view name) {
  bool control = std::ranges::any_of(name, [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7f;
  });
  if (name.empty() || name.size() > kMaxEntryNameBytes || control)
    return fmt::format("give 1 to {} printable characters saying which build this is", kMaxEntryNameBytes);
  return std::nullopt;
}

std::optional<std::string> normalize_build_id(std::string_view text) {
  if (text.size() < 2 || text.size() > 128 || text.size() % 2 != 0 || !is_hex(text)) return std::nullopt;
  return lowercase(text);
}

std::optional<std::string> normalize_xxh3(std::string_view text) {
  if (text.starts_with("0x") || text.starts_with("0X")) text.remove_prefix(2);
  if (text.size() != 16 || !is_hex(text)) return std::nullopt;
  return lowercase(text);
}

OffsetsDatabase OffsetsDatabase::load(const std::vector<std::string>& dirs) {
  OffsetsDatabase database;
  for (const std::string& dir : dirs) {
    std::error_code error;
    if (!fs::exists(dir, error)) continue;
    database.dirs_.push_back(dir);
    std::vector<std::string> files;
    fs::directory_iterator it(dir, error);
    if (error) {
      database.problems_.push_back(fmt::format("{}: cannot list the offsets directory: {}", dir, error.message()));
      continue;
    }
    for (; it != fs::directory_iterator(); it.increment(error)) {
      if (error) break;
      fs::path path = it->path();
      std::string extension = path.extension().string();
      if ((extension == ".yaml" || extension == ".yml") && !path.filename().string().starts_with(".") &&
          it->is_regular_file(error))
        files.push_back(path.string());
    }
    std::ranges::sort(files);
    if (files.size() > kMaxOffsetsFilesPerDir) {
      database.problems_.push_back(fmt::format("{}: {} offsets files, more than the {} read from one directory — "
                                               "merge some (the first {} by name are read)",
                                               dir, files.size(), kMaxOffsetsFilesPerDir, kMaxOffsetsFilesPerDir));
      files.resize(kMaxOffsetsFilesPerDir);
    }
    for (const std::string& file : files) database.add_file(file);
  }
  return database;
}

void OffsetsDatabase::add_file(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    problems_.push_back(fmt::format("{}: cannot read it: {}", path, std::strerror(errno)));
    return;
  }
  if (static_cast<uint64_t>(info.st_size) > kMaxOffsetsFileBytes) {
    problems_.push_back(fmt::format("{}: {} bytes, more than the {} an offsets file may have — split it into several "
                                    "files",
                                    path, info.st_size, kMaxOffsetsFileBytes));
    return;
  }
  std::ifstream in(path, std::ios::binary);
  std::string text(kMaxOffsetsFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad() || (!in && in.gcount() == 0 && info.st_size > 0)) {
    problems_.push_back(fmt::format("{}: cannot read it: {}", path, std::strerror(errno)));
    return;
  }
  text.resize(static_cast<size_t>(in.gcount()));
  files_.push_back(path);
  add_text(text, path);
}

void OffsetsDatabase::add_text(std::string_view text, const std::string& file) {
  if (text.size() > kMaxOffsetsFileBytes) {
    problems_.push_back(fmt::format("{}: {} bytes, more than the {} an offsets file may have — split it", file,
                                    text.size(), kMaxOffsetsFileBytes));
    return;
  }
  if (size_t nul = text.find('\0'); nul != std::string_view::npos) {
    int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(nul), '\n'));
    problems_.push_back(fmt::format("{}:{}: a NUL byte — an offsets file is YAML text; is this a binary file?", file, line));
    return;
  }
  Diagnostics diagnostics;
  std::vector<DocumentText> documents = split_documents(text);
  if (documents.empty()) {
    diagnostics.add({file, 0, 0}, "", "no entries — an offsets file holds 'kind: offsets' and an 'entries:' list");
  } else {
    if (documents.size() > 1) {
      diagnostics.add({file, documents[1].line_offset + 1, 1}, "",
                      "a second YAML document — put all entries in the first document's 'entries:' list (this one is "
                      "not read)");
    }
    YamlReader reader(diagnostics, file, documents[0].line_offset);
    try {
      YAML::Node node = load_document(std::string(documents[0].text));
      read_document(reader, diagnostics, node, [this](OffsetsEntry entry) { add_entry(std::move(entry)); });
    } catch (const YAML::Exception& error) {
      SourcePos at{file, 0, 0};
      if (!error.mark.is_null()) at = {file, error.mark.line + 1 + documents[0].line_offset, error.mark.column + 1};
      diagnostics.add(at, "", fmt::format("YAML syntax error: {} — check the indentation and quoting here (no entry "
                                          "of this file is used)",
                                          error.msg));
    } catch (const std::exception& error) {
      diagnostics.add({file, 0, 0}, "", fmt::format("cannot read this file: {}", error.what()));
    }
  }
  if (!diagnostics.empty()) problems_.push_back(diagnostics.render());
}

void OffsetsDatabase::add_entry(OffsetsEntry entry) {
  const OffsetsEntry* earlier = nullptr;
  std::string_view key;
  if (auto it = by_build_id_.find(entry.build_id); !entry.build_id.empty() && it != by_build_id_.end()) {
    earlier = &entries_[it->second];
    key = "build-id";
  } else if (auto hash = by_xxh3_.find(entry.xxh3); !entry.xxh3.empty() && hash != by_xxh3_.end()) {
    earlier = &entries_[hash->second];
    key = "xxh3";
  }
  if (earlier) {
    // Across directories this is the intended override (/etc before the shipped database); within
    // one directory it is a mistake to point out.
    if (fs::path(earlier->pos.file).parent_path() == fs::path(entry.pos.file).parent_path()) {
      problems_.push_back(fmt::format("{}: entry '{}' has the same {} as entry '{}' at {} — keep one (the first is used)",
                                      entry.pos.str(), entry.name, key, earlier->name, earlier->pos.str()));
    } else {
      spdlog::debug("offsets entry '{}' at {} is overridden by '{}' at {} (same {})", entry.name, entry.pos.str(),
                    earlier->name, earlier->pos.str(), key);
    }
    return;
  }
  size_t index = entries_.size();
  if (!entry.build_id.empty()) by_build_id_.emplace(entry.build_id, index);
  if (!entry.xxh3.empty()) by_xxh3_.emplace(entry.xxh3, index);
  entries_.push_back(std::move(entry));
}

std::optional<OffsetsMatch> OffsetsDatabase::find(const FileIdentity& identity) const {
  if (!identity.build_id.empty()) {
    if (auto it = by_build_id_.find(identity.build_id); it != by_build_id_.end())
      return OffsetsMatch{&entries_[it->second], "build-id"};
  }
  if (!identity.xxh3.empty()) {
    if (auto it = by_xxh3_.find(identity.xxh3); it != by_xxh3_.end()) return OffsetsMatch{&entries_[it->second], "xxh3"};
  }
  return std::nullopt;
}

std::string render_offsets_file(const OffsetsEntry& entry, const std::vector<std::string>& comment) {
  std::string text;
  for (const std::string& line : comment) text += line.empty() ? "#\n" : fmt::format("# {}\n", line);
  text += "kind: offsets\nentries:\n";
  fmt::format_to(std::back_inserter(text), "  - name: {}\n", yaml_quoted(entry.name));
  if (!entry.build_id.empty()) fmt::format_to(std::back_inserter(text), "    build_id: \"{}\"\n", entry.build_id);
  if (!entry.xxh3.empty()) fmt::format_to(std::back_inserter(text), "    xxh3: \"{}\"\n", entry.xxh3);
  text += "    symbols:\n";
  for (const auto& [name, offset] : entry.symbols)
    fmt::format_to(std::back_inserter(text), "      {}: 0x{:x}\n", symbol_key(name), offset);
  return text;
}

}  // namespace ea
