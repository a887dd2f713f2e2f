#include "pipeline/bpftrace_json.h"

#include "core/json_escape.h"

#include <charconv>
#include <cmath>
#include <optional>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

namespace ea::bpftrace {
namespace {

// Ordered, so map keys and values keep the order bpftrace printed them in.
using Json = nlohmann::ordered_json;

constexpr std::string_view kWhitespace = " \t\r\n\f\v";

std::string_view trim(std::string_view text) {
  size_t begin = text.find_first_not_of(kWhitespace);
  if (begin == std::string_view::npos) return {};
  return text.substr(begin, text.find_last_not_of(kWhitespace) - begin + 1);
}

std::string_view without_trailing_newlines(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  return text;
}

// Length of the well-formed UTF-8 sequence `text` starts with, 0 when it starts with a bad byte.
size_t utf8_sequence_length(std::string_view text) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  size_t length = 0;
  uint32_t code_point = 0;
  uint32_t smallest = 0;  // anything below is an overlong encoding
  if ((lead & 0xE0) == 0xC0) {
    length = 2, code_point = lead & 0x1F, smallest = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, code_point = lead & 0x0F, smallest = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, code_point = lead & 0x07, smallest = 0x10000;
  } else {
    return 0;
  }
  if (text.size() < length) return 0;
  for (size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    code_point = (code_point << 6) | (byte(i) & 0x3F);
  }
  bool surrogate = code_point >= 0xD800 && code_point <= 0xDFFF;
  return code_point < smallest || code_point > 0x10FFFF || surrogate ? 0 : length;
}

// bpftrace copies kernel bytes (paths, comms) into its output unchecked, and the JSON parser
// refuses invalid UTF-8: such bytes become U+FFFD instead of failing the whole line.
std::string_view as_valid_utf8(std::string_view text, std::string& scratch) {
  size_t valid = 0;
  while (valid < text.size()) {
    size_t length = utf8_sequence_length(text.substr(valid));
    if (length == 0) break;
    valid += length;
  }
  if (valid == text.size()) return text;
  scratch.assign(text.substr(0, valid));
  for (size_t i = valid; i < text.size();) {
    size_t length = utf8_sequence_length(text.substr(i));
    if (length == 0) {
      scratch += "\xEF\xBF\xBD";
      ++i;
    } else {
      scratch.append(text.substr(i, length));
      i += length;
    }
  }
  return scratch;
}

void append_quoted(std::string& out, std::string_view text) {
  out += '"';
  append_json_escaped(text, out);
  out += '"';
}

void append_json(std::string& out, const Json& value) {
  out += value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

template <class Number>
bool parse_whole(std::string_view text, Number& number) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  return error == std::errc() && end == text.data() + text.size();
}

// A key=value value as JSON: integers and decimals as numbers, the rest as a string.
Json typed_value(std::string_view text) {
  int64_t integer = 0;
  if (parse_whole(text, integer)) return integer;
  uint64_t large = 0;
  if (parse_whole(text, large)) return large;
  // Decimal notation only: from_chars also takes "inf", "nan" and hex floats.
  double real = 0;
  bool decimal = !text.empty() && text.find_first_not_of("0123456789+-.eE") == std::string_view::npos;
  if (decimal && parse_whole(text, real) && std::isfinite(real)) return real;
  return std::string(text);
}

bool is_key_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_key_char(char c) { return is_key_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-'; }

// The key's length when `token` reads `key=...`, else 0.
size_t key_length(std::string_view token) {
  if (token.empty() || !is_key_start(token[0])) return 0;
  size_t length = 1;
  while (length < token.size() && is_key_char(token[length])) ++length;
  return length < token.size() && token[length] == '=' ? length : 0;
}

struct KeyValue {
  std::string_view key;
  std::string_view value;
};

// Each whitespace-separated token of the form key=... starts a pair; its value runs to the next
// such token (so it may contain spaces), trimmed.
std::vector<KeyValue> key_values(std::string_view text) {
  std::vector<KeyValue> pairs;
  size_t value_begin = 0;
  auto close_last = [&](size_t value_end) {
    if (!pairs.empty()) pairs.back().value = trim(text.substr(value_begin, value_end - value_begin));
  };
  size_t token_begin = 0;
  while ((token_begin = text.find_first_not_of(kWhitespace, token_begin)) != std::string_view::npos) {
    size_t token_end = std::min(text.find_first_of(kWhitespace, token_begin), text.size());
    if (size_t length = key_length(text.substr(token_begin, token_end - token_begin))) {
      close_last(token_begin);
      pairs.push_back({text.substr(token_begin, length), {}});
      value_begin = token_begin + length + 1;
    }
    token_begin = token_end;
  }
  close_last(text.size());
  return pairs;
}

std::optional<int64_t> process_id(const Json& value) {
  if (!value.is_number_integer()) return std::nullopt;  // unsigned values are integers too
  if (value.is_number_unsigned()) {
    uint64_t id = value.get<uint64_t>();
    return id <= INT64_MAX ? std::optional<int64_t>(static_cast<int64_t>(id)) : std::nullopt;
  }
  int64_t id = value.get<int64_t>();
  return id >= 0 ? std::optional<int64_t>(id) : std::nullopt;
}

// Appends `,"key":value` for every key=value token of `text` and fills `identity` from them.
void append_key_values(std::string& out, std::string_view text, LineIdentity& identity) {
  std::unordered_set<std::string_view> seen{"type", "message"};
  std::optional<int64_t> pid, tid, tgid;
  for (const auto& [key, raw_value] : key_values(text)) {
    if (!seen.insert(key).second) continue;
    Json value = typed_value(raw_value);
    if (key == "pid") pid = process_id(value);
    if (key == "tid") tid = process_id(value);
    if (key == "tgid") tgid = process_id(value);
    if (key == "comm") identity.comm = raw_value;
    out += ",\"";
    out += key;  // key characters never need escaping
    out += "\":";
    append_json(out, value);
  }
  if (tgid) {  // kernel naming: pid is the thread
    identity.tgid = *tgid;
    identity.pid = tid ? *tid : pid.value_or(-1);
  } else {  // bpftrace naming: pid is the process
    identity.tgid = pid.value_or(-1);
    identity.pid = tid.value_or(-1);
  }
}

bool is_map_type(std::string_view type) { return type == "map" || type == "hist" || type == "stats"; }
bool is_control_type(std::string_view type) { return type == "attached_probes" || type == "lost_events"; }

}  // namespace

LineOutcome OutputLineParser::parse(std::string_view raw_line) {
  fields_.clear();
  error_.clear();
  identity_ = {};
  std::string_view line = trim(as_valid_utf8(raw_line, sanitized_));
  if (line.empty()) return LineOutcome::Control;

  if (line.front() != '{') {
    fields_ = "{\"type\":\"text\",\"message\":";
    append_quoted(fields_, line);
    append_key_values(fields_, line, identity_);
    fields_ += '}';
    return LineOutcome::Record;
  }

  Json document;
  bool too_deep = false;
  try {
    document = Json::parse(line, [&](int depth, Json::parse_event_t, Json&) {
      if (depth > kMaxNesting) too_deep = true;
      return !too_deep;
    });
  } catch (const Json::parse_error& error) {
    error_ = std::string("bpftrace output line is not valid JSON: ") + error.what();
    return LineOutcome::Invalid;
  }
  if (too_deep) {
    error_ = "bpftrace output line nests JSON deeper than " + std::to_string(kMaxNesting) + " levels";
    return LineOutcome::Invalid;
  }
  auto type_member = document.is_object() ? document.find("type") : document.end();
  if (type_member == document.end() || !type_member->is_string()) {
    error_ = "bpftrace output line is JSON but not a bpftrace message: it has no \"type\" string";
    return LineOutcome::Invalid;
  }
  const std::string& type = type_member->get_ref<const std::string&>();
  if (is_control_type(type)) return LineOutcome::Control;
  auto data = document.find("data");
  if (data == document.end()) {
    error_ = "bpftrace \"" + type + "\" line has no \"data\" member";
    return LineOutcome::Invalid;
  }

  fields_ = "{\"type\":";
  if (is_map_type(type)) {
    if (!data->is_object() || data->size() != 1) {
      error_ = "bpftrace \"" + type + "\" line should hold exactly one map in \"data\"";
      fields_.clear();
      return LineOutcome::Invalid;
    }
    fields_ += "\"map\",\"kind\":";
    append_quoted(fields_, type);
    fields_ += ",\"map\":";
    append_quoted(fields_, data->begin().key());
    fields_ += ",\"value\":";
    append_json(fields_, data->begin().value());
  } else if (data->is_string()) {
    std::string_view message = without_trailing_newlines(data->get_ref<const std::string&>());
    append_quoted(fields_, type);
    fields_ += ",\"message\":";
    append_quoted(fields_, message);
    if (type == "printf") append_key_values(fields_, message, identity_);
  } else {
    append_quoted(fields_, type);
    fields_ += ",\"value\":";
    append_json(fields_, *data);
  }
  fields_ += '}';
  return LineOutcome::Record;
}

}  // namespace ea::bpftrace
