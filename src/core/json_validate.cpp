#include "core/json_validate.h"

namespace ea {
namespace {

class Checker {
 public:
  explicit Checker(std::string_view text)
      : begin_(reinterpret_cast<const unsigned char*>(text.data())), at_(begin_), end_(begin_ + text.size()) {}

  JsonCheck run() {
    skip_space();
    if (at_ == end_ || *at_ != '{') return failure("expected '{' (the result must be one JSON object)");
    if (!object(1)) return result_;
    skip_space();
    if (at_ != end_) return failure("unexpected bytes after the object");
    result_.ok = true;
    return result_;
  }

 private:
  JsonCheck failure(std::string_view problem) {
    result_.ok = false;
    result_.offset = static_cast<size_t>(at_ - begin_);
    result_.problem = problem;
    return result_;
  }
  bool fail(std::string_view problem) {
    failure(problem);
    return false;
  }

  void skip_space() {
    for (; at_ != end_; ++at_) {
      unsigned char c = *at_;
      if (c == '\n' || c == '\r') {
        result_.has_line_breaks = true;
      } else if (c != ' ' && c != '\t') {
        return;
      }
    }
  }

  bool expect(unsigned char c, std::string_view problem) {
    skip_space();
    if (at_ == end_ || *at_ != c) return fail(problem);
    ++at_;
    return true;
  }

  bool value(int depth) {
    skip_space();
    if (at_ == end_) return fail("unexpected end: expected a value");
    switch (*at_) {
      case '{': return object(depth + 1);
      case '[': return array(depth + 1);
      case '"': return string();
      case 't': return literal("true");
      case 'f': return literal("false");
      case 'n': return literal("null");
      default: return number();
    }
  }

  bool object(int depth) {
    if (depth > kMaxJsonDepth) return fail("nested too deeply");
    ++at_;  // '{'
    skip_space();
    if (at_ != end_ && *at_ == '}') {
      ++at_;
      return true;
    }
    for (;;) {
      skip_space();
      if (at_ == end_ || *at_ != '"') return fail("expected a member name in double quotes");
      if (!string() || !expect(':', "expected ':' after the member name") || !value(depth)) return false;
      skip_space();
      if (at_ == end_) return fail("unexpected end: expected ',' or '}'");
      if (*at_ == '}') {
        ++at_;
        return true;
      }
      if (*at_ != ',') return fail("expected ',' or '}'");
      ++at_;
    }
  }

  bool array(int depth) {
    if (depth > kMaxJsonDepth) return fail("nested too deeply");
    ++at_;  // '['
    skip_space();
    if (at_ != end_ && *at_ == ']') {
      ++at_;
      return true;
    }
    for (;;) {
      if (!value(depth)) return false;
      skip_space();
      if (at_ == end_) return fail("unexpected end: expected ',' or ']'");
      if (*at_ == ']') {
        ++at_;
        return true;
      }
      if (*at_ != ',') return fail("expected ',' or ']'");
      ++at_;
    }
  }

  bool literal(std::string_view word) {
    if (static_cast<size_t>(end_ - at_) < word.size() ||
        std::string_view(reinterpret_cast<const char*>(at_), word.size()) != word)
      return fail("invalid literal (expected true, false or null)");
    at_ += word.size();
    return true;
  }

  bool digits() {
    const unsigned char* start = at_;
    while (at_ != end_ && *at_ >= '0' && *at_ <= '9') ++at_;
    return at_ != start;
  }

  bool number() {
    if (at_ != end_ && *at_ == '-') ++at_;
    if (at_ == end_) return fail("invalid value");
    if (*at_ == '0') {
      ++at_;
    } else if (!digits()) {
      return fail("invalid value");
    }
    if (at_ != end_ && *at_ == '.') {
      ++at_;
      if (!digits()) return fail("invalid number: digits expected after '.'");
    }
    if (at_ != end_ && (*at_ == 'e' || *at_ == 'E')) {
      ++at_;
      if (at_ != end_ && (*at_ == '+' || *at_ == '-')) ++at_;
      if (!digits()) return fail("invalid number: digits expected in the exponent");
    }
    return true;
  }

  static bool is_hex(unsigned char c) { return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }
  static bool is_continuation(unsigned char c) { return (c & 0xc0) == 0x80; }

  bool escape() {
    ++at_;  // '\\'
    if (at_ == end_) return fail("unterminated string");
    switch (*at_) {
      case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        ++at_;
        return true;
      case 'u':
        ++at_;
        for (int i = 0; i < 4; ++i, ++at_)
          if (at_ == end_ || !is_hex(*at_)) return fail("invalid \\u escape: four hex digits expected");
        return true;
      default:
        return fail("invalid escape sequence");
    }
  }

  // One UTF-8 sequence starting with a byte >= 0x80: shortest form, no surrogates, <= U+10FFFF.
  bool utf8_sequence() {
    unsigned char lead = *at_;
    size_t length;
    unsigned char low = 0x80, high = 0xbf;  // allowed range of the second byte
    if (lead >= 0xc2 && lead <= 0xdf) {
      length = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      if (lead == 0xe0) low = 0xa0;
      if (lead == 0xed) high = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      if (lead == 0xf0) low = 0x90;
      if (lead == 0xf4) high = 0x8f;
    } else {
      return fail("invalid UTF-8");
    }
    if (static_cast<size_t>(end_ - at_) < length || at_[1] < low || at_[1] > high) return fail("invalid UTF-8");
    for (size_t i = 2; i < length; ++i)
      if (!is_continuation(at_[i])) return fail("invalid UTF-8");
    at_ += length;
    return true;
  }

  bool string() {
    ++at_;  // '"'
    while (at_ != end_) {
      unsigned char c = *at_;
      if (c == '"') {
        ++at_;
        return true;
      }
      if (c == '\\') {
        if (!escape()) return false;
      } else if (c < 0x20) {
        return fail("control character in a string (escape it)");
      } else if (c >= 0x80) {
        if (!utf8_sequence()) return false;
      } else {
        ++at_;
      }
    }
    return fail("unterminated string");
  }

  const unsigned char* begin_;
  const unsigned char* at_;
  const unsigned char* end_;
  JsonCheck result_;
};

}  // namespace

JsonCheck check_json_object(std::string_view text) { return Checker(text).run(); }

}  // namespace ea
