#include "agent/socket_io.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ea {

Result<void> write_message(int fd, std::string_view message) {
  while (!message.empty()) {
    ssize_t n = send(fd, message.data(), message.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return failf("control socket write failed: {}", strerror(errno));
    message.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Result<std::string> read_message(int fd, size_t max_bytes, int timeout_ms) {
  std::string data;
  char buffer[64 * 1024];
  while (true) {
    pollfd p{fd, POLLIN, 0};
    int ready = poll(&p, 1, timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) return fail("control socket: timed out waiting for a message");
    if (ready < 0) return failf("control socket: {}", strerror(errno));
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failf("control socket read failed: {}", strerror(errno));
    if (n == 0) {
      if (data.empty()) return fail("control socket closed before a message arrived");
      return data;  // peer closed after an unterminated message
    }
    data.append(buffer, static_cast<size_t>(n));
    if (auto newline = data.find('\n'); newline != std::string::npos) {
      data.resize(newline);
      return data;
    }
    if (data.size() > max_bytes) return failf("control message larger than {} bytes refused", max_bytes);
  }
}

}  // namespace ea
