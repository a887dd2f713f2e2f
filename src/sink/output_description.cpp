#include "sink/output_description.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/units.h"

namespace ea {

Result<OutputDescription> parse_output_description(std::string_view text) {
  OutputDescription out;
  out.text = std::string(text);
  size_t colon = text.find(':');
  size_t comma = text.find(',');
  size_t kind_end = std::min(colon, comma);
  out.kind = std::string(text.substr(0, kind_end));
  if (out.kind.empty()) return failf("output '{}': the kind is missing (e.g. tsdb, file:PATH, kafka:BROKERS)", text);
  std::string_view rest = kind_end == std::string_view::npos ? std::string_view() : text.substr(kind_end);
  bool in_target = !rest.empty() && rest[0] == ':';
  if (!rest.empty()) rest.remove_prefix(1);
  while (!rest.empty() || in_target) {
    size_t next = rest.find(',');
    std::string_view piece = rest.substr(0, next);
    size_t eq = piece.find('=');
    if (eq == std::string_view::npos) {
      if (!in_target)
        return failf("output '{}': '{}' is not an option (options are key=value, after the target)", text, piece);
      if (!out.target.empty()) out.target.push_back(',');
      out.target.append(piece);
    } else {
      in_target = false;
      std::string key(piece.substr(0, eq));
      if (key.empty()) return failf("output '{}': option '{}' has no name", text, piece);
      if (out.options.contains(key)) return failf("output '{}': option '{}' is given twice", text, key);
      out.options.emplace(std::move(key), std::string(piece.substr(eq + 1)));
    }
    if (next == std::string_view::npos) break;
    rest = rest.substr(next + 1);
  }
  return out;
}

Result<void> OutputDescription::check_options(std::initializer_list<std::string_view> known,
                                              std::string_view usage) const {
  for (const auto& [key, value] : options) {
    bool found = false;
    for (std::string_view name : known) found = found || name == key;
    if (!found)
      return failf("output '{}': unknown option '{}' (known: {}; usage: {})", text, key, fmt::join(known, ", "), usage);
  }
  return {};
}

std::string OutputDescription::option(std::string_view key, std::string_view fallback) const {
  auto it = options.find(key);
  return it == options.end() ? std::string(fallback) : it->second;
}

Result<uint64_t> OutputDescription::size_option(std::string_view key, uint64_t fallback) const {
  auto it = options.find(key);
  if (it == options.end()) return fallback;
  auto size = parse_size(it->second);
  if (!size) return std::unexpected(with_context(size.error(), fmt::format("output '{}', option {}", text, key)));
  return *size;
}

Result<std::chrono::milliseconds> OutputDescription::duration_option(std::string_view key,
                                                                     std::chrono::milliseconds fallback) const {
  auto it = options.find(key);
  if (it == options.end()) return fallback;
  auto duration = parse_duration(it->second);
  if (!duration)
    return std::unexpected(with_context(duration.error(), fmt::format("output '{}', option {}", text, key)));
  return *duration;
}

Result<bool> OutputDescription::bool_option(std::string_view key, bool fallback) const {
  auto it = options.find(key);
  if (it == options.end()) return fallback;
  if (it->second == "true" || it->second == "1" || it->second == "yes") return true;
  if (it->second == "false" || it->second == "0" || it->second == "no") return false;
  return failf("output '{}', option {}: '{}' is not true or false", text, key, it->second);
}

}  // namespace ea
