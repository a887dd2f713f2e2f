#include "cli/duration.h"

#include <charconv>

namespace ea::cli {

Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  double value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || value < 0)
    return failf("'{}' is not a duration (examples: 30s, 5m, 1h, 250ms, 0 = forever)", text);
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
  else
    return failf("'{}': unknown duration unit '{}' (use ms, s, m or h)", text, unit);
  return std::chrono::milliseconds(static_cast<int64_t>(value * milliseconds_per_unit));
}

}  // namespace ea::cli
