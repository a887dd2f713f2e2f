#include "core/units.h"

#include <charconv>

namespace ea {

Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  double value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || value < 0)
    return failf("'{}' is not a duration (examples: 30s, 5m, 1h, 7d, 250ms, 0 = forever)", text);
  std::string_view unit(end, text.data() + text.size() - end);
  double milliseconds_per_unit;
  if (unit.empty() || unit == "s")
    milliseconds_per_unit = 1000;
  else if (unit == "ms")
    milliseconds_per_unit = 1;
  else if (unit == "m")
    milliseconds_per_unit = 60'000;
  else if (unit == "h")
    milliseconds_per_unit = 3'600'000;
  else if (unit == "d")
    milliseconds_per_unit = 86'400'000;
  else
    return failf("'{}': unknown duration unit '{}' (use ms, s, m, h or d)", text, unit);
  return std::chrono::milliseconds(static_cast<int64_t>(value * milliseconds_per_unit));
}

Result<uint64_t> parse_size(std::string_view text) {
  std::string_view number = text;
  if (number.ends_with("iB"))
    number.remove_suffix(2);
  else if (number.ends_with("B"))
    number.remove_suffix(1);
  uint64_t multiplier = 1;
  if (!number.empty()) {
    switch (number.back()) {
      case 'K': case 'k': multiplier = 1ull << 10; break;
      case 'M': case 'm': multiplier = 1ull << 20; break;
      case 'G': case 'g': multiplier = 1ull << 30; break;
      case 'T': case 't': multiplier = 1ull << 40; break;
    }
    if (multiplier != 1) number.remove_suffix(1);
  }
  uint64_t value = 0;
  auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (number.empty() || error != std::errc() || end != number.data() + number.size())
    return failf("'{}' is not a size (examples: 1048576, 64M, 1G, 512MiB)", text);
  if (value > UINT64_MAX / multiplier) return failf("'{}' is too large a size", text);
  return value * multiplier;
}

}  // namespace ea
