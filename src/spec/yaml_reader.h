// Typed, position-aware reading of one parsed YAML document. Every problem is recorded in
// Diagnostics (with file:line:col and the dotted field path) and reading goes on, so a single
// run reports all of them; a reader returns nullopt for a value it could not accept.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "spec/diagnostics.h"
#include "spec/spec.h"

namespace ea {

// A value in the document with its key and dotted path ("spec.programs[0].type").
struct Field {
  YAML::Node key;    // the key scalar; null for list items and the document root
  YAML::Node value;  // null for `key:` with nothing after it
  std::string path;
  std::string name;  // the key as written ("" for list items and the root)
};

// The entries of a fixed-schema map, looked up by key.
class FieldMap {
 public:
  const Field* get(std::string_view key) const;

 private:
  std::vector<Field> fields_;
  friend class YamlReader;
};

class YamlReader {
 public:
  // `line_offset`: lines before this document in the file (documents are parsed one by one).
  YamlReader(Diagnostics& diagnostics, std::string file, int line_offset);

  SourcePos pos(const YAML::Node& node) const;
  // Where `field` was written: its value, or its key when the value is empty.
  SourcePos pos(const Field& field) const;
  void error(const Field& field, std::string message);
  void error(const SourcePos& pos, std::string path, std::string message);
  // "field 'PARENT.KEY': missing — FIX", pointing at the parent map.
  void missing(const Field& parent, std::string_view key, std::string_view fix);

  static Field root(const YAML::Node& document);
  static std::string child_path(std::string_view parent, std::string_view key);

  // True for `key:` with nothing after it (YAML null).
  static bool is_empty(const Field& field);

  // A map with a fixed set of keys (an empty value reads as an empty map). Reports a non-map,
  // non-scalar and duplicate keys, and unknown keys with a did-you-mean; `explain_unknown` may
  // return a better message for a key known elsewhere (empty string = the usual one).
  using UnknownKeyExplainer = std::function<std::string(std::string_view key)>;
  std::optional<FieldMap> fields(const Field& map, std::span<const std::string_view> known,
                                 const UnknownKeyExplainer& explain_unknown = {});
  // A map of user-chosen names (channels, variables, maps): every entry, duplicates reported.
  // More than `max_count` entries is an error (the spec's lists are bounded so that every check
  // stays cheap on hostile input).
  std::optional<std::vector<Field>> entries(const Field& map, size_t max_count = SIZE_MAX);
  // A list (an empty value reads as an empty list): every item, with path "PATH[i]".
  std::optional<std::vector<Field>> items(const Field& list, size_t max_count = SIZE_MAX);

  // Any scalar as written ("0.1", "123", "abc"); an empty value reads as "".
  std::optional<std::string> string(const Field& field);
  std::optional<bool> boolean(const Field& field);
  // Decimal or 0x-hex integers within [0, max] / [min, max].
  std::optional<uint64_t> unsigned_integer(const Field& field, uint64_t max);
  std::optional<int64_t> integer(const Field& field, int64_t min, int64_t max);
  // Any YAML as JSON: plain scalars become null/bool/integer/float/string by their form (YAML
  // core schema), quoted scalars stay strings.
  std::optional<Value> value(const Field& field);

 private:
  bool charge(const Field& at, size_t nodes);
  bool within(const Field& at, size_t count, size_t max_count);
  bool expect_scalar(const Field& field, std::string_view expected);
  std::optional<Value> to_value(const Field& field, int depth);

  Diagnostics& diagnostics_;
  std::string file_;
  int line_offset_;
  size_t budget_;          // YAML nodes this document may still visit (aliases can multiply them)
  bool exhausted_ = false;
};

}  // namespace ea
