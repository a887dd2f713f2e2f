// The daemon's control API: one JSON request line, one JSON response line, on a root-only
// Unix socket. Requests: {"op":"apply","yaml":TEXT,"source":PATH,"base_dir":DIR},
// {"op":"delete","name":NAME}, {"op":"list"}. Responses: {"ok":true,...} or {"ok":false,"error":TEXT}.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace ea {

inline constexpr const char* kDefaultControlSocket = "/run/ebpf-agent/agent.sock";
inline constexpr size_t kMaxControlMessage = 4 << 20;

// Sends one request to a running daemon and returns its response (the error says how to start
// the daemon when nothing listens).
Result<nlohmann::json> control_request(const std::string& socket_path, const nlohmann::json& request);

}  // namespace ea
