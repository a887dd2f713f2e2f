#include "agent/storage_selection.h"

#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

namespace ea {

bool storage_selects(const std::optional<StorageSpec>& storage, std::string_view kind) {
  if (!storage) return true;
  auto it = storage->outputs.find(std::string(kind));
  return it != storage->outputs.end() && it->second;
}

Result<std::shared_ptr<const SinkSet>> select_sinks(const std::optional<StorageSpec>& storage,
                                                    const std::shared_ptr<const SinkSet>& all, std::string_view where) {
  if (!storage) return all;
  auto selected = std::make_shared<SinkSet>();
  std::set<std::string> configured;
  for (const auto& sink : *all) {
    configured.insert(sink->kind());
    if (storage_selects(storage, sink->kind())) selected->push_back(sink);
  }
  std::vector<std::string> wanted, missing;
  for (const auto& [kind, enabled] : storage->outputs) {
    if (!enabled) continue;
    wanted.push_back(kind);
    if (!configured.contains(kind)) missing.push_back(kind);
  }
  std::vector<std::string> have;
  for (const auto& sink : *all) have.push_back(sink->name());
  if (selected->empty())
    return failf("{}: storage selects [{}] but the agent's outputs are [{}]; start the agent with a matching "
                 "--output (e.g. --output kafka:BROKERS or --output tmpfs) or change `storage:`",
                 where, fmt::join(wanted, ", "), fmt::join(have, ", "));
  if (!missing.empty())
    spdlog::warn("{}: storage selects [{}], which the agent has no output for (outputs: [{}]); using the others",
                 where, fmt::join(missing, ", "), fmt::join(have, ", "));
  return std::shared_ptr<const SinkSet>(std::move(selected));
}

}  // namespace ea
