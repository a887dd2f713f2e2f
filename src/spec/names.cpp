#include "spec/names.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "spec/diagnostics.h"

namespace ea {
namespace {

bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

bool has_control_byte(std::string_view text) {
  return std::ranges::any_of(text, [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7f;
  });
}

// "file", "http" ... for "scheme://rest"; nullopt for a plain path.
std::optional<std::string_view> url_scheme(std::string_view path) {
  size_t colon = path.find("://");
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view scheme = path.substr(0, colon);
  bool valid = std::isalpha(static_cast<unsigned char>(scheme[0])) &&
               std::ranges::all_of(scheme, [](char c) { return is_alnum(c) || c == '+' || c == '.' || c == '-'; });
  return valid ? std::optional(scheme) : std::nullopt;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::ranges::equal(a, b, [](char x, char y) { return std::tolower(static_cast<unsigned char>(x)) ==
                                                              std::tolower(static_cast<unsigned char>(y)); });
}

}  // namespace

bool is_safe_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && name[0] != '.' &&
         std::ranges::all_of(name, [](char c) { return is_alnum(c) || c == '_' || c == '.' || c == '-'; });
}

bool is_c_identifier(std::string_view name) {
  return !name.empty() && name.size() <= 255 && !std::isdigit(static_cast<unsigned char>(name[0])) &&
         std::ranges::all_of(name, [](char c) { return is_alnum(c) || c == '_'; });
}

std::optional<std::string> program_path_problem(std::string_view path) {
  if (path.empty()) return "the path is empty — give a file path or a file://, http(s):// or ftp:// URL";
  if (has_control_byte(path)) return "the path contains control characters — remove them";
  auto scheme = url_scheme(path);
  if (!scheme) return std::nullopt;
  std::string_view rest = path.substr(scheme->size() + 3);
  if (iequals(*scheme, "file")) {
    if (rest.empty()) return "file:// needs a path after it, e.g. file:///opt/probes/oom.bpf.o";
    return std::nullopt;
  }
  if (iequals(*scheme, "http") || iequals(*scheme, "https") || iequals(*scheme, "ftp")) {
    if (rest.empty() || rest[0] == '/')
      return fmt::format("{}:// needs a host, e.g. {}://example.com/oom.bpf.o", printable(*scheme), printable(*scheme));
    return std::nullopt;
  }
  return fmt::format("unsupported scheme '{}://' — use file://, http://, https://, ftp:// or a plain path",
                     printable(*scheme));
}

std::optional<std::string> absolute_path_problem(std::string_view path) {
  constexpr size_t kPathMax = 4095;
  if (path.empty() || path[0] != '/') return "must be an absolute path (starting with '/')";
  if (path.size() > kPathMax) return fmt::format("is longer than {} bytes", kPathMax);
  if (has_control_byte(path)) return "contains control characters — remove them";
  if (path.back() == '/') return "names a directory — give the file's path";
  for (size_t start = 0; start < path.size();) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (path.substr(start, end - start) == "..") return "must not contain '..' — write the resolved path";
    start = end + 1;
  }
  return std::nullopt;
}

std::optional<std::string> interface_name_problem(std::string_view name) {
  constexpr size_t kIfNameMax = 15;  // IFNAMSIZ - 1
  bool valid = !name.empty() && name.size() <= kIfNameMax && name != "." && name != ".." &&
               std::ranges::none_of(name, [](char c) {
                 auto byte = static_cast<unsigned char>(c);
                 return c == '/' || c == ':' || std::isspace(byte) || byte < 0x20 || byte == 0x7f;
               });
  if (valid) return std::nullopt;
  return "is not a network interface name (1 to 15 characters, no '/', ':' or spaces) — see `ip link`";
}

std::optional<std::string> normalize_sha256(std::string_view text) {
  if (text.size() != 64 || !std::ranges::all_of(text, [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }))
    return std::nullopt;
  std::string lower(text);
  std::ranges::transform(lower, lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower;
}

}  // namespace ea
