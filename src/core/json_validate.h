// A strict, allocation-free check that bytes are exactly one JSON object (RFC 8259, UTF-8), for
// output written by foreign code (user_so plugins) before the agent embeds it in an envelope line.
// One pass, no DOM: about as cheap as copying the bytes, where a full parser costs ~1.5 µs per
// small record.
#pragma once
#include <cstddef>
#include <string_view>

namespace ea {

struct JsonCheck {
  bool ok = false;
  size_t offset = 0;          // where the first problem is
  std::string_view problem;   // "unterminated string", "expected ':'", ...
  bool has_line_breaks = false;  // raw '\n' / '\r' between tokens (valid JSON, but they split JSON lines)
};

// Nesting deeper than this is refused (keeps the check's own stack bounded).
inline constexpr int kMaxJsonDepth = 64;

JsonCheck check_json_object(std::string_view text);

}  // namespace ea
