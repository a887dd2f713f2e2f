#include "tsdb/label_text.h"

#include <charconv>
#include <cmath>

#include <fmt/format.h>

namespace ea::tsdb {

void append_canonical_labels(const LabelSet& labels, std::string& out) {
  out.push_back('{');
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out.push_back(',');
    first = false;
    out.append(name);
    out.append("=\"");
    for (char c : value) {
      if (c == '\\' || c == '"') {
        out.push_back('\\');
        out.push_back(c);
      } else if (c == '\n') {
        out.append("\\n");
      } else {
        out.push_back(c);
      }
    }
    out.push_back('"');
  }
  out.push_back('}');
}

std::string canonical_labels(const LabelSet& labels) {
  std::string out;
  append_canonical_labels(labels, out);
  return out;
}

Result<LabelSet> parse_canonical_labels(std::string_view text) {
  auto bad = [&](size_t at, std::string_view what) {
    return failf("stored label set '{}' is malformed at offset {}: {}", text, at, what);
  };
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') return bad(0, "not enclosed in {}");
  LabelSet labels;
  size_t i = 1, end = text.size() - 1;
  while (i < end) {
    size_t equals = text.find('=', i);
    if (equals == std::string_view::npos || equals >= end) return bad(i, "expected name=\"value\"");
    std::string name(text.substr(i, equals - i));
    i = equals + 1;
    if (i >= end || text[i] != '"') return bad(i, "expected '\"'");
    ++i;
    std::string value;
    bool closed = false;
    while (i < end) {
      char c = text[i++];
      if (c == '"') {
        closed = true;
        break;
      }
      if (c == '\\' && i < end) {
        char escaped = text[i++];
        value.push_back(escaped == 'n' ? '\n' : escaped);
      } else {
        value.push_back(c);
      }
    }
    if (!closed) return bad(i, "unterminated value");
    labels.emplace_back(std::move(name), std::move(value));
    if (i < end) {
      if (text[i] != ',') return bad(i, "expected ','");
      ++i;
    }
  }
  return labels;
}

namespace {

std::string shortest(double value) {
  if (std::trunc(value) == value && std::fabs(value) < 1e15) return fmt::format("{}", static_cast<int64_t>(value));
  char buffer[64];
  auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, value);
  return error == std::errc() ? std::string(buffer, end) : fmt::format("{}", value);
}

}  // namespace

std::string format_bound(double bound) { return format_value(bound); }

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == 0 && std::signbit(value)) return "-0";
  return shortest(value);
}

}  // namespace ea::tsdb
