// Small helpers for the control socket: newline-framed messages.
#pragma once
#include <string>

#include "core/result.h"
#include "core/unique_fd.h"

namespace ea {

Result<void> write_message(int fd, std::string_view message);
// Reads up to the first '\n' (excluded). Fails past `max_bytes` or after `timeout_ms` of silence.
Result<std::string> read_message(int fd, size_t max_bytes, int timeout_ms);

}  // namespace ea
