// "30s", "5m", "1h", "250ms" or plain seconds.
#pragma once
#include <chrono>
#include <string_view>

#include "core/result.h"

namespace ea::cli {

Result<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace ea::cli
