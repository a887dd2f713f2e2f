// Serves the control API (see control_protocol.h) for a running daemon.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "agent/runtime.h"
#include "agent/socket_io.h"
#include "core/result.h"

namespace ea {

class ControlServer {
 public:
  // Creates the socket's directory (0700) and the socket (0600); only root (or the daemon's own
  // user) may talk to it, checked again per connection with SO_PEERCRED.
  static Result<std::unique_ptr<ControlServer>> start(const std::string& socket_path, Runtime& runtime);
  ~ControlServer();  // stops serving and removes the socket file

 private:
  ControlServer(std::string path, Runtime& runtime, UniqueFd listener);
  void serve();
  void handle(int client);
  nlohmann::json dispatch(const nlohmann::json& request);

  std::string path_;
  Runtime& runtime_;
  UniqueFd listener_;
  UniqueFd stop_event_;
  std::thread thread_;
};

}  // namespace ea
