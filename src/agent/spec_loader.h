// Applies every spec of a YAML text to the runtime; shared by the CLI, the control API and the
// specs-directory watcher so all three report errors the same way.
#pragma once
#include <string>
#include <vector>

#include "agent/runtime.h"

namespace ea {

struct ApplyReport {
  std::vector<std::string> applied;  // spec names now running this text's version
  std::vector<std::string> errors;   // one message per spec (or one for the whole text)
  bool ok() const { return errors.empty(); }
};

ApplyReport apply_spec_text(Runtime& runtime, std::string_view yaml, const std::string& source,
                            const std::string& base_dir);

}  // namespace ea
