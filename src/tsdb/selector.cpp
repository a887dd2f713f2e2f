#include "tsdb/selector.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

namespace ea::tsdb {

namespace {

bool name_start(char c, bool metric) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || (metric && c == ':');
}
bool name_char(char c, bool metric) { return name_start(c, metric) || std::isdigit(static_cast<unsigned char>(c)); }

class SelectorParser {
 public:
  explicit SelectorParser(std::string_view text) : text_(text) {}

  Result<Selector> parse() {
    Selector selector;
    skip_space();
    if (at_end() || (!name_start(peek(), true) && peek() != '{')) return error("expected a metric name or '{'");
    if (name_start(peek(), true)) {
      std::string name = read_name(true);
      selector.matchers.push_back({"__name__", LabelMatcher::Op::Equal, std::move(name), nullptr});
      skip_space();
    }
    if (!at_end() && peek() == '{') {
      ++pos_;
      if (auto matchers = parse_matchers(selector); !matchers) return std::unexpected(matchers.error());
      skip_space();
    }
    if (!at_end()) return error(fmt::format("unexpected '{}' after the selector", peek()));
    if (selector.matchers.empty()) return error("a selector needs a metric name or at least one matcher");
    bool selective = std::any_of(selector.matchers.begin(), selector.matchers.end(), [](const LabelMatcher& m) {
      return !m.matches("");
    });
    if (!selective) return error("every matcher also matches an empty value: add a metric name or a non-empty matcher", 0);
    return selector;
  }

 private:
  Result<void> parse_matchers(Selector& selector) {
    while (true) {
      skip_space();
      if (at_end()) return error("expected a label name or '}'");
      if (peek() == '}') {
        ++pos_;
        return {};
      }
      if (!name_start(peek(), false)) return error(fmt::format("expected a label name, found '{}'", peek()));
      LabelMatcher matcher;
      matcher.name = read_name(false);
      skip_space();
      if (match("=~"))
        matcher.op = LabelMatcher::Op::Regex;
      else if (match("!~"))
        matcher.op = LabelMatcher::Op::NotRegex;
      else if (match("!="))
        matcher.op = LabelMatcher::Op::NotEqual;
      else if (match("="))
        matcher.op = LabelMatcher::Op::Equal;
      else
        return error("expected one of = != =~ !~ after the label name");
      skip_space();
      size_t value_pos = pos_;
      auto value = read_string();
      if (!value) return std::unexpected(value.error());
      matcher.value = std::move(*value);
      if (matcher.op == LabelMatcher::Op::Regex || matcher.op == LabelMatcher::Op::NotRegex) {
        try {
          matcher.regex = std::make_shared<const std::regex>("^(?:" + matcher.value + ")$", std::regex::ECMAScript);
        } catch (const std::regex_error& e) {
          return error(fmt::format("invalid regular expression: {}", e.what()), value_pos);
        }
      }
      selector.matchers.push_back(std::move(matcher));
      skip_space();
      if (at_end()) return error("expected ',' or '}'");
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') return error(fmt::format("expected ',' or '}}', found '{}'", peek()));
    }
  }

  Result<std::string> read_string() {
    if (at_end() || (peek() != '"' && peek() != '\'' && peek() != '`'))
      return error("expected a quoted value (\"...\")");
    char quote = text_[pos_++];
    std::string value;
    while (!at_end()) {
      char c = text_[pos_++];
      if (c == quote) return value;
      if (c == '\\' && quote != '`') {
        if (at_end()) break;
        char escaped = text_[pos_++];
        switch (escaped) {
          case 'n': value.push_back('\n'); break;
          case 't': value.push_back('\t'); break;
          case '\\': case '"': case '\'': value.push_back(escaped); break;
          // Anything else is kept with its backslash, so regular expressions read as written.
          default: value.push_back('\\'); value.push_back(escaped);
        }
        continue;
      }
      value.push_back(c);
    }
    return error(fmt::format("unterminated string (missing closing {})", quote));
  }

  std::string read_name(bool metric) {
    size_t start = pos_;
    while (!at_end() && name_char(peek(), metric)) ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }

  bool match(std::string_view token) {
    if (text_.substr(pos_).starts_with(token)) {
      pos_ += token.size();
      return true;
    }
    return false;
  }
  void skip_space() {
    while (!at_end() && std::isspace(static_cast<unsigned char>(peek()))) ++pos_;
  }
  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return text_[pos_]; }

  std::unexpected<Error> error(std::string_view what) const { return error(what, pos_); }
  std::unexpected<Error> error(std::string_view what, size_t at) const {
    return failf("bad selector: {} at column {}\n  {}\n  {}^", what, at + 1, text_, std::string(at, ' '));
  }

  std::string_view text_;
  size_t pos_ = 0;
};

std::string_view label_value(const LabelSet& labels, std::string_view name) {
  for (const auto& [label, value] : labels)
    if (label == name) return value;
  return {};
}

}  // namespace

bool LabelMatcher::matches(std::string_view label_value) const {
  switch (op) {
    case Op::Equal: return label_value == value;
    case Op::NotEqual: return label_value != value;
    case Op::Regex: return std::regex_match(label_value.begin(), label_value.end(), *regex);
    case Op::NotRegex: return !std::regex_match(label_value.begin(), label_value.end(), *regex);
  }
  return false;
}

bool Selector::matches_labels(const LabelSet& labels) const {
  for (const LabelMatcher& matcher : matchers)
    if (matcher.name != "__name__" && !matcher.matches(label_value(labels, matcher.name))) return false;
  return true;
}

bool Selector::matches_name(std::string_view series_name, std::string_view family_name) const {
  for (const LabelMatcher& matcher : matchers) {
    if (matcher.name != "__name__" || matcher.matches(series_name)) continue;
    if (matcher.op == LabelMatcher::Op::Equal && matcher.value == family_name) continue;
    return false;
  }
  return true;
}

std::string Selector::literal_name() const {
  for (const LabelMatcher& matcher : matchers)
    if (matcher.name == "__name__" && matcher.op == LabelMatcher::Op::Equal) return matcher.value;
  return {};
}

Result<Selector> parse_selector(std::string_view text) { return SelectorParser(text).parse(); }

}  // namespace ea::tsdb
