#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/control_protocol.h"
#include "agent/socket_io.h"

namespace ea {

Result<nlohmann::json> control_request(const std::string& socket_path, const nlohmann::json& request) {
  sockaddr_un address{};
  if (socket_path.size() >= sizeof(address.sun_path)) return failf("control socket path too long: {}", socket_path);
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size());
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return failf("socket: {}", strerror(errno));
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0)
    return failf("cannot reach the ebpf-agent daemon at {}: {} — start it with `ebpf-agent daemon` (as root), or "
                 "pass --socket PATH",
                 socket_path, strerror(errno));
  if (auto sent = write_message(fd.get(), request.dump() + "\n"); !sent) return std::unexpected(sent.error());
  auto line = read_message(fd.get(), kMaxControlMessage * 4, /*timeout_ms=*/600'000);
  if (!line) return std::unexpected(line.error());
  auto response = nlohmann::json::parse(*line, nullptr, false);
  if (response.is_discarded() || !response.is_object()) return fail("the daemon sent a malformed response");
  return response;
}

}  // namespace ea
