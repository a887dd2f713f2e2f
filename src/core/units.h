// Durations and sizes as operators write them in flags, specs and output descriptions.
#pragma once
#include <chrono>
#include <cstdint>
#include <string_view>

#include "core/result.h"

namespace ea {

// "30s", "5m", "1h", "7d", "250ms" or plain seconds.
Result<std::chrono::milliseconds> parse_duration(std::string_view text);
// "1048576", "64K", "64M", "1G" (binary multiples; a trailing "B"/"iB" is accepted: 64MiB).
Result<uint64_t> parse_size(std::string_view text);

}  // namespace ea
