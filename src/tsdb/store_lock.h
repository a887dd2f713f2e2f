// One writer per store: an exclusive flock on DIR/LOCK, held while the store is open.
#pragma once
#include <string>

#include "core/result.h"

namespace ea::tsdb {

class StoreLock {
 public:
  // Creates DIR (0750) when missing. Fails, naming the holder's pid, when another process has it.
  static Result<StoreLock> acquire(const std::string& dir);
  StoreLock(StoreLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  StoreLock& operator=(StoreLock&& other) noexcept;
  StoreLock(const StoreLock&) = delete;
  StoreLock& operator=(const StoreLock&) = delete;
  ~StoreLock();

 private:
  explicit StoreLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace ea::tsdb
