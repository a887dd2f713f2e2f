// Rules for names and paths that end up in file paths, symbol lookups, URLs and the kernel.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace ea {

// Spec, program and channel names: [A-Za-z0-9_.-]{1,64}, not starting with '.', because they
// become parts of file paths (FIFOs, pins, spools).
bool is_safe_name(std::string_view name);
inline constexpr std::string_view kSafeNameRule =
    "use 1 to 64 of A-Z a-z 0-9 _ . - (not starting with '.')";

// BPF program, map and variable names, plugin function names, C struct names.
bool is_c_identifier(std::string_view name);

// Each returns what is wrong (a message with the fix) or nullopt when the text is acceptable.
std::optional<std::string> program_path_problem(std::string_view path);  // file/http(s)/ftp URL or plain path
std::optional<std::string> absolute_path_problem(std::string_view path);  // pinpath: absolute, no '..'
std::optional<std::string> interface_name_problem(std::string_view name);

// 64 hex digits, returned lowercase.
std::optional<std::string> normalize_sha256(std::string_view text);

}  // namespace ea
