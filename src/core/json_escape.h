// JSON string escaping, with no dependency beyond the standard library (plugins compile it too).
#pragma once
#include <string>
#include <string_view>

namespace ea {

// Appends `text` JSON-escaped (no surrounding quotes).
void append_json_escaped(std::string_view text, std::string& out);

}  // namespace ea
