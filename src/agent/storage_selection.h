// A spec's (or channel's) `storage:` picks, by kind, which of the agent's outputs get its records
// and metrics: `storage: {kafka: true, tmpfs: true}`. No `storage:` means every output.
#pragma once
#include <memory>
#include <optional>
#include <string_view>

#include "core/result.h"
#include "pipeline/route.h"
#include "spec/spec.h"

namespace ea {

// True when records/metrics governed by `storage` go to outputs of this kind.
bool storage_selects(const std::optional<StorageSpec>& storage, std::string_view kind);

// The outputs `storage` selects among `all`. Fails when it selects none of the configured
// outputs (naming what it asked for and what the agent has); kinds it asks for that the agent
// lacks are logged, the rest are used.
Result<std::shared_ptr<const SinkSet>> select_sinks(const std::optional<StorageSpec>& storage,
                                                    const std::shared_ptr<const SinkSet>& all, std::string_view where);

}  // namespace ea
