// Renders the daemon's `list` result as a human-readable table.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace ea::cli {

std::string render_list_table(const nlohmann::json& list);

}  // namespace ea::cli
