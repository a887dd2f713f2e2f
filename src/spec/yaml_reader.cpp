#include "spec/yaml_reader.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "spec/suggest.h"

namespace ea {
namespace {

// A spec is at most 1 MiB; without aliases that is well under a million nodes. Aliases can make
// a small document expand without bound, so every node visit is charged against this budget.
constexpr size_t kNodeBudget = 1 << 20;
// Free-form values (variables, map entries, plugin config) nest only a few levels in practice.
constexpr int kMaxValueDepth = 64;

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return fmt::format("'{}'", printable(node.Scalar()));
    default: return "nothing";
  }
}

bool is_quoted(const YAML::Node& scalar) {
  return scalar.Tag() == "!" || scalar.Tag() == "tag:yaml.org,2002:str";
}

std::optional<uint64_t> parse_unsigned(std::string_view text) {
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    base = 16;
    text.remove_prefix(2);
  } else if (text.size() > 2 && text[0] == '0' && text[1] == 'o') {
    base = 8;
    text.remove_prefix(2);
  }
  if (text.empty() || text[0] == '-' || text[0] == '+') return std::nullopt;
  uint64_t number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number, base);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return number;
}

std::optional<int64_t> parse_signed(std::string_view text) {
  bool negative = !text.empty() && text[0] == '-';
  if (negative || (!text.empty() && text[0] == '+')) text.remove_prefix(1);
  auto magnitude = parse_unsigned(text);
  if (!magnitude) return std::nullopt;
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (negative) {
    if (*magnitude > kMax + 1) return std::nullopt;
    return *magnitude == kMax + 1 ? std::numeric_limits<int64_t>::min() : -static_cast<int64_t>(*magnitude);
  }
  if (*magnitude > kMax) return std::nullopt;
  return static_cast<int64_t>(*magnitude);
}

// YAML 1.2 core schema floats: 1.5, -2e3, .5, .inf, -.inf, .nan.
std::optional<double> parse_float(std::string_view text) {
  std::string_view body = text;
  bool negative = !body.empty() && body[0] == '-';
  if (negative || (!body.empty() && body[0] == '+')) body.remove_prefix(1);
  if (body == ".inf" || body == ".Inf" || body == ".INF")
    return negative ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  if (text == ".nan" || text == ".NaN" || text == ".NAN") return std::numeric_limits<double>::quiet_NaN();
  bool digits = std::ranges::any_of(body, [](char c) { return c >= '0' && c <= '9'; });
  bool shape = std::ranges::all_of(body, [](char c) {
    return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+';
  });
  if (!digits || !shape || body.empty() || !(body[0] == '.' || (body[0] >= '0' && body[0] <= '9'))) return std::nullopt;
  double number = 0;
  auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), number);
  if (ec != std::errc() || end != body.data() + body.size()) return std::nullopt;
  return negative ? -number : number;
}

Value plain_scalar_value(const std::string& text) {
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") return nullptr;
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  if (auto number = parse_signed(text)) return *number;
  if (auto number = parse_unsigned(text)) return *number;
  if (auto number = parse_float(text)) return *number;
  return text;
}

}  // namespace

const Field* FieldMap::get(std::string_view key) const {
  auto it = std::ranges::find(fields_, key, &Field::name);
  return it == fields_.end() ? nullptr : &*it;
}

YamlReader::YamlReader(Diagnostics& diagnostics, std::string file, int line_offset)
    : diagnostics_(diagnostics), file_(std::move(file)), line_offset_(line_offset), budget_(kNodeBudget) {}

SourcePos YamlReader::pos(const YAML::Node& node) const {
  YAML::Mark mark = node.Mark();
  if (mark.is_null()) return SourcePos{file_, 0, 0};
  return SourcePos{file_, mark.line + 1 + line_offset_, mark.column + 1};
}

SourcePos YamlReader::pos(const Field& field) const {
  // An empty value's mark points at whatever token follows it, so use its key instead.
  if (is_empty(field) && field.key.IsDefined() && !field.key.IsNull()) return pos(field.key);
  return pos(field.value);
}

void YamlReader::error(const Field& field, std::string message) { error(pos(field), field.path, std::move(message)); }

void YamlReader::error(const SourcePos& at, std::string path, std::string message) {
  diagnostics_.add(at, std::move(path), std::move(message));
}

void YamlReader::missing(const Field& parent, std::string_view key, std::string_view fix) {
  error(pos(parent), child_path(parent.path, key), fmt::format("missing — {}", fix));
}

Field YamlReader::root(const YAML::Node& document) { return Field{YAML::Node(), document, "", ""}; }

std::string YamlReader::child_path(std::string_view parent, std::string_view key) {
  std::string shown = printable(key);
  return parent.empty() ? shown : fmt::format("{}.{}", parent, shown);
}

bool YamlReader::is_empty(const Field& field) { return !field.value.IsDefined() || field.value.IsNull(); }

bool YamlReader::charge(const Field& at, size_t nodes) {
  if (exhausted_) return false;
  if (nodes <= budget_) {
    budget_ -= nodes;
    return true;
  }
  exhausted_ = true;
  error(at, fmt::format("the document expands to more than {} values (through aliases?) — write it out plainly",
                        kNodeBudget));
  return false;
}

std::optional<FieldMap> YamlReader::fields(const Field& map, std::span<const std::string_view> known,
                                           const UnknownKeyExplainer& explain_unknown) {
  auto all = entries(map);
  if (!all) return std::nullopt;
  FieldMap result;
  for (Field& field : *all) {
    if (std::ranges::find(known, field.name) != known.end()) {
      result.fields_.push_back(std::move(field));
      continue;
    }
    std::string explanation = explain_unknown ? explain_unknown(field.name) : std::string();
    if (explanation.empty())
      explanation = fmt::format("unknown field '{}'{}", printable(field.name), use_one_of(field.name, known));
    error(pos(field.key), field.path, std::move(explanation));
  }
  return result;
}

bool YamlReader::within(const Field& at, size_t count, size_t max_count) {
  if (count <= max_count) return true;
  error(at, fmt::format("has {} entries, more than the {} a spec may have — split it into several specs", count,
                        max_count));
  return false;
}

std::optional<std::vector<Field>> YamlReader::entries(const Field& map, size_t max_count) {
  if (is_empty(map)) return std::vector<Field>{};
  if (!map.value.IsMap()) {
    error(map, fmt::format("expected a map (indented 'key: value' lines), got {}", describe(map.value)));
    return std::nullopt;
  }
  if (!within(map, map.value.size(), max_count) || !charge(map, map.value.size())) return std::nullopt;
  std::vector<Field> result;
  std::map<std::string, int, std::less<>> seen;  // key -> line of its first use
  for (auto it = map.value.begin(); it != map.value.end(); ++it) {
    // Copies: `it->first` lives in a proxy that dies with the expression.
    YAML::Node key = it->first;
    if (!key.IsScalar()) {
      error(pos(key), map.path, fmt::format("a key must be a plain name, got {}", describe(key)));
      continue;
    }
    Field field{key, it->second, child_path(map.path, key.Scalar()), key.Scalar()};
    auto [first, inserted] = seen.emplace(field.name, pos(key).line);
    if (!inserted) {
      error(pos(key), field.path,
            fmt::format("duplicate field '{}' (first written at line {}) — keep only one", printable(field.name),
                        first->second));
      continue;
    }
    result.push_back(std::move(field));
  }
  return result;
}

std::optional<std::vector<Field>> YamlReader::items(const Field& list, size_t max_count) {
  if (is_empty(list)) return std::vector<Field>{};
  if (!list.value.IsSequence()) {
    error(list, fmt::format("expected a list ('- item' lines or [a, b]), got {}", describe(list.value)));
    return std::nullopt;
  }
  if (!within(list, list.value.size(), max_count) || !charge(list, list.value.size())) return std::nullopt;
  std::vector<Field> result;
  size_t index = 0;
  for (auto it = list.value.begin(); it != list.value.end(); ++it, ++index)
    result.push_back(Field{YAML::Node(), *it, fmt::format("{}[{}]", list.path, index), ""});
  return result;
}

bool YamlReader::expect_scalar(const Field& field, std::string_view expected) {
  if (field.value.IsScalar()) return true;
  error(field, fmt::format("expected {}, got {}", expected, describe(field.value)));
  return false;
}

std::optional<std::string> YamlReader::string(const Field& field) {
  if (is_empty(field)) return std::string();
  if (!expect_scalar(field, "a string")) return std::nullopt;
  return field.value.Scalar();
}

std::optional<bool> YamlReader::boolean(const Field& field) {
  if (!is_empty(field) && field.value.IsScalar()) {
    std::string text = field.value.Scalar();
    std::ranges::transform(text, text.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (text == "true" || text == "yes" || text == "on") return true;
    if (text == "false" || text == "no" || text == "off") return false;
  }
  error(field, fmt::format("expected true or false, got {}", describe(field.value)));
  return std::nullopt;
}

std::optional<uint64_t> YamlReader::unsigned_integer(const Field& field, uint64_t max) {
  if (!is_empty(field) && field.value.IsScalar()) {
    if (auto number = parse_unsigned(field.value.Scalar()); number && *number <= max) return number;
  }
  error(field, fmt::format("expected an integer from 0 to {}, got {}", max, describe(field.value)));
  return std::nullopt;
}

std::optional<int64_t> YamlReader::integer(const Field& field, int64_t min, int64_t max) {
  if (!is_empty(field) && field.value.IsScalar()) {
    if (auto number = parse_signed(field.value.Scalar()); number && *number >= min && *number <= max) return number;
  }
  error(field, fmt::format("expected an integer from {} to {}, got {}", min, max, describe(field.value)));
  return std::nullopt;
}

std::optional<Value> YamlReader::value(const Field& field) { return to_value(field, 0); }

std::optional<Value> YamlReader::to_value(const Field& field, int depth) {
  if (!charge(field, 1)) return std::nullopt;
  if (depth > kMaxValueDepth) {
    error(field, fmt::format("nested deeper than {} levels — flatten the value", kMaxValueDepth));
    return std::nullopt;
  }
  if (is_empty(field)) return Value(nullptr);
  if (field.value.IsScalar())
    return is_quoted(field.value) ? Value(field.value.Scalar()) : plain_scalar_value(field.value.Scalar());
  // Any problem below (bad key, duplicate, too deep) is recorded; the value is then unusable.
  const size_t problems_before = diagnostics_.size();
  Value result;
  if (field.value.IsSequence()) {
    result = Value::array();
    for (const Field& item : items(field).value_or(std::vector<Field>{}))
      if (auto element = to_value(item, depth + 1)) result.push_back(std::move(*element));
  } else {
    result = Value::object();
    for (const Field& entry : entries(field).value_or(std::vector<Field>{}))
      if (auto element = to_value(entry, depth + 1)) result[entry.name] = std::move(*element);
  }
  if (diagnostics_.size() != problems_before || exhausted_) return std::nullopt;
  return result;
}

}  // namespace ea
