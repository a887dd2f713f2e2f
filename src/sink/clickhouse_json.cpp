#include "sink/clickhouse_json.h"

#include <charconv>
#include <cmath>
#include <cstdint>

namespace ea {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

struct Utf8Scan {
  bool valid;
  size_t length;  // the sequence's bytes when valid, else the invalid run one U+FFFD replaces
};

// Reads the UTF-8 sequence at text[i] (RFC 3629: no overlongs, no surrogates, nothing above
// U+10FFFF). An invalid one is replaced by one U+FFFD per "maximal subpart" (Unicode's
// recommended practice, which Python's errors="replace" also follows).
Utf8Scan scan_utf8(std::string_view text, size_t i) {
  auto lead = static_cast<unsigned char>(text[i]);
  size_t length;
  unsigned char low = 0x80, high = 0xBF;  // range of the first continuation byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;   // overlong
    if (lead == 0xED) high = 0x9F;  // UTF-16 surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;   // overlong
    if (lead == 0xF4) high = 0x8F;  // above U+10FFFF
  } else {
    return {false, 1};
  }
  for (size_t k = 1; k < length; ++k) {
    if (i + k >= text.size()) return {false, k};
    auto byte = static_cast<unsigned char>(text[i + k]);
    if (byte < (k == 1 ? low : 0x80) || byte > (k == 1 ? high : 0xBF)) return {false, k};
  }
  return {true, length};
}

}  // namespace

void append_clickhouse_string(std::string_view text, std::string& out) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  size_t plain_start = 0;  // runs of characters that need nothing are copied in bulk
  size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    size_t skip = 1;
    if (c >= 0x80) {
      Utf8Scan scan = scan_utf8(text, i);
      if (scan.valid) {
        i += scan.length;
        continue;
      }
      skip = scan.length;
    }
    out.append(text, plain_start, i - plain_start);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c >= 0x80) {
          out += kReplacement;
        } else {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xf];
        }
    }
    i += skip;
    plain_start = i;
  }
  out.append(text, plain_start, text.size() - plain_start);
  out += '"';
}

void append_clickhouse_double(double value, std::string& out) {
  if (std::isnan(value)) {
    out += "\"nan\"";
    return;
  }
  if (std::isinf(value)) {
    out += value > 0 ? "\"inf\"" : "\"-inf\"";
    return;
  }
  char buffer[32];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, result.ptr);
}

void append_clickhouse_uint(uint64_t value, std::string& out) {
  char buffer[24];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, result.ptr);
}

void append_clickhouse_int(int64_t value, std::string& out) {
  char buffer[24];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, result.ptr);
}

}  // namespace ea
