#include "agent/control_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "agent/control_protocol.h"
#include "agent/spec_loader.h"

namespace ea {

Result<std::unique_ptr<ControlServer>> ControlServer::start(const std::string& socket_path, Runtime& runtime) {
  sockaddr_un address{};
  if (socket_path.size() >= sizeof(address.sun_path)) return failf("control socket path too long: {}", socket_path);
  auto directory = std::filesystem::path(socket_path).parent_path();
  std::error_code ec;
  if (!directory.empty()) {
    std::filesystem::create_directories(directory, ec);
    if (ec) return failf("cannot create {}: {}", directory.string(), ec.message());
    chmod(directory.c_str(), 0700);
  }
  UniqueFd listener(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (listener.get() < 0) return failf("socket: {}", strerror(errno));
  // A socket file left by a daemon that died: refuse if another daemon still answers on it.
  if (access(socket_path.c_str(), F_OK) == 0) {
    if (control_request(socket_path, {{"op", "list"}})) return failf("another daemon is already serving {}", socket_path);
    unlink(socket_path.c_str());
  }
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size());
  mode_t old_mask = umask(0177);
  int bound = bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address));
  umask(old_mask);
  if (bound != 0) return failf("cannot bind the control socket {}: {}", socket_path, strerror(errno));
  if (listen(listener.get(), 16) != 0) return failf("listen on {}: {}", socket_path, strerror(errno));
  std::unique_ptr<ControlServer> server(new ControlServer(socket_path, runtime, std::move(listener)));
  server->thread_ = std::thread([raw = server.get()] { raw->serve(); });
  return server;
}

ControlServer::ControlServer(std::string path, Runtime& runtime, UniqueFd listener)
    : path_(std::move(path)), runtime_(runtime), listener_(std::move(listener)),
      stop_event_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

ControlServer::~ControlServer() {
  uint64_t one = 1;
  if (write(stop_event_.get(), &one, sizeof(one)) < 0) spdlog::warn("control server: cannot signal stop");
  if (thread_.joinable()) thread_.join();
  unlink(path_.c_str());
}

void ControlServer::serve() {
  while (true) {
    pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {stop_event_.get(), POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("control server: poll: {}", strerror(errno));
      return;
    }
    if (fds[1].revents) return;
    UniqueFd client(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (client.get() >= 0) handle(client.get());
  }
}

void ControlServer::handle(int client) {
  ucred peer{};
  socklen_t length = sizeof(peer);
  if (getsockopt(client, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0 || (peer.uid != 0 && peer.uid != geteuid())) {
    spdlog::warn("control server: refused a request from uid {} pid {}", peer.uid, peer.pid);
    (void)write_message(client, R"({"ok":false,"error":"permission denied: the control API is root-only"})"
                                "\n");
    return;
  }
  nlohmann::json response;
  auto message = read_message(client, kMaxControlMessage, /*timeout_ms=*/5000);
  if (!message) {
    response = {{"ok", false}, {"error", message.error().message}};
  } else {
    auto request = nlohmann::json::parse(*message, nullptr, false);
    if (request.is_discarded() || !request.is_object() || !request.contains("op") || !request["op"].is_string())
      response = {{"ok", false}, {"error", "malformed request: expected a JSON object with a string \"op\""}};
    else
      response = dispatch(request);
  }
  (void)write_message(client, response.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

nlohmann::json ControlServer::dispatch(const nlohmann::json& request) {
  const std::string op = request["op"];
  auto text = [&](const char* key) {
    auto it = request.find(key);
    return it != request.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (op == "list") return {{"ok", true}, {"result", runtime_.list()}};
  if (op == "delete") {
    auto removed = runtime_.remove(text("name"));
    if (!removed) return {{"ok", false}, {"error", removed.error().message}};
    return {{"ok", true}};
  }
  if (op == "apply") {
    std::string source = text("source");
    spdlog::info("control: apply {}", source.empty() ? "<inline>" : source);
    ApplyReport report = apply_spec_text(runtime_, text("yaml"), source.empty() ? "<inline>" : source, text("base_dir"));
    nlohmann::json response = {{"ok", report.ok()}, {"applied", report.applied}};
    if (!report.ok()) response["error"] = fmt::format("{}", fmt::join(report.errors, "\n"));
    return response;
  }
  return {{"ok", false}, {"error", fmt::format("unknown op '{}' (known: apply, delete, list)", op)}};
}

}  // namespace ea
