// Small helpers for the control socket: an owning fd and newline-framed messages.
#pragma once
#include <string>

#include "core/result.h"

namespace ea {

class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd();
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

Result<void> write_message(int fd, std::string_view message);
// Reads up to the first '\n' (excluded). Fails past `max_bytes` or after `timeout_ms` of silence.
Result<std::string> read_message(int fd, size_t max_bytes, int timeout_ms);

}  // namespace ea
