#include "tsdb/store_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include "tsdb/tsdb_defaults.h"

namespace ea::tsdb {

Result<StoreLock> StoreLock::acquire(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return failf("cannot create the store directory {}: {} (choose another with --output tsdb:DIR)", dir, ec.message());
  std::filesystem::permissions(dir, std::filesystem::perms::others_all, std::filesystem::perm_options::remove, ec);
  std::string path = dir + "/" + kLockFileName;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return failf("cannot open {}: {}", path, strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int error = errno;
    char holder[32] = {};
    ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
    ::close(fd);
    if (error == EWOULDBLOCK)
      return failf("the store in {} is in use by another process (pid {}): one agent writes a store; give this one "
                   "another directory (--output tsdb:DIR)",
                   dir, n > 0 ? std::string(holder, strcspn(holder, "\n")) : "unknown");
    return failf("cannot lock {}: {}", path, strerror(error));
  }
  std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The pid is only for the message another process shows; the lock itself is held.
  }
  return StoreLock(fd);
}

StoreLock& StoreLock::operator=(StoreLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

StoreLock::~StoreLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace ea::tsdb
