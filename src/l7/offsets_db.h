// The offsets database: for libraries and programs whose symbol tables lack a function a uprobe
// needs (stripped builds, hidden symbols), the file offsets of those functions, keyed by the
// file's identity (build-id, or XXH3 of its content). Operators extend it with YAML files, one
// or more entries each (format in docs/offsets.md):
//
//   kind: offsets
//   entries:
//     - name: OpenSSL 3.0.15 libssl.so.3 (Debian 12)
//       build_id: 1b2c...            # and/or  xxh3: 0123456789abcdef
//       symbols: {SSL_read: 0x35a40, SSL_write: 0x35b70}
//
// Files are untrusted text: a bad file or entry is reported with file:line and skipped, and
// every other file and entry still loads.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "l7/file_identity.h"
#include "spec/spec.h"

namespace ea {

// Bounds that keep loading cheap on hostile input, far above real use (a generated entry for a
// whole C++ library has tens of thousands of symbols).
inline constexpr uint64_t kMaxOffsetsFileBytes = 8 << 20;
inline constexpr size_t kMaxOffsetsEntries = 10'000;    // per file
inline constexpr size_t kMaxOffsetsSymbols = 200'000;   // per entry
inline constexpr size_t kMaxOffsetsFilesPerDir = 1'000;
inline constexpr size_t kMaxSymbolNameBytes = 1024;
inline constexpr size_t kMaxEntryNameBytes = 200;

struct OffsetsEntry {
  std::string name;      // what the file is, for people ("OpenSSL 3.0.15 libssl.so.3 (Debian 12)")
  std::string build_id;  // lowercase hex; "" when the entry is keyed by hash only
  std::string xxh3;      // 16 lowercase hex digits; "" when keyed by build-id only
  std::map<std::string, uint64_t> symbols;  // function -> file offset (what a uprobe takes)
  SourcePos pos;                            // where the entry starts
};

struct OffsetsMatch {
  const OffsetsEntry* entry = nullptr;
  std::string_view by;  // "build-id" or "xxh3"
};

class OffsetsDatabase {
 public:
  // Every *.yaml / *.yml file of each directory, directories in order, files by name; a missing
  // directory is skipped. Where two entries claim one identity the first read wins.
  static OffsetsDatabase load(const std::vector<std::string>& dirs);

  // Adds the entries of one file; its problems join problems().
  void add_file(const std::string& path);
  void add_text(std::string_view text, const std::string& file);

  // The entry for a file: by build-id first, else by content hash.
  std::optional<OffsetsMatch> find(const FileIdentity& identity) const;

  const std::vector<OffsetsEntry>& entries() const { return entries_; }
  // One message per bad file or entry: "FILE:LINE:COL: field 'PATH': what is wrong — how to fix".
  const std::vector<std::string>& problems() const { return problems_; }
  const std::vector<std::string>& files() const { return files_; }  // files read
  const std::vector<std::string>& dirs() const { return dirs_; }    // directories searched

 private:
  void add_entry(OffsetsEntry entry);

  std::vector<OffsetsEntry> entries_;
  std::map<std::string, size_t, std::less<>> by_build_id_;
  std::map<std::string, size_t, std::less<>> by_xxh3_;
  std::vector<std::string> problems_;
  std::vector<std::string> files_;
  std::vector<std::string> dirs_;
};

// What is wrong with an entry's `name` (nullopt when it is fine).
std::optional<std::string> offsets_entry_name_problem(std::string_view name);
// "0123abcd" from any case, or nullopt when `text` is not 2 to 128 hex digits of whole bytes.
std::optional<std::string> normalize_build_id(std::string_view text);
// 16 hex digits, lowercase, or nullopt.
std::optional<std::string> normalize_xxh3(std::string_view text);

// A complete database file holding `entry`, ready to drop into a database directory. `comment`
// lines become the file's header comment (each prefixed with "# ").
std::string render_offsets_file(const OffsetsEntry& entry, const std::vector<std::string>& comment);

}  // namespace ea
