// Where the agent reads its offsets database from, and the database itself, shared by every
// uprobe attach and re-read when a file in it changes (a daemon picks up a new entry without a
// restart).
//
// Search order, first entry for an identity wins:
//   1. directories given with --offsets-dir (in order),
//   2. $EBPF_AGENT_OFFSETS_PATH (colon-separated),
//   3. /etc/ebpf-agent/offsets.d (the operator's own entries),
//   4. the installed database, <datadir>/ebpf-agent/offsets (and ../share/ebpf-agent/offsets beside
//      the executable, for an install moved elsewhere),
//   5. the source tree's offsets/ when the agent runs from the build tree it was built in.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "l7/offsets_db.h"

namespace ea {

inline constexpr const char* kOffsetsEtcDir = "/etc/ebpf-agent/offsets.d";

// Directories searched before the defaults (from --offsets-dir). Call before attaching anything.
void set_offsets_dirs(std::vector<std::string> dirs);

std::vector<std::string> offsets_search_path();

// The database from the search path: loaded on first use and re-read when a database file was
// added, removed or changed since. Its problems are logged as warnings once per (re)load.
std::shared_ptr<const OffsetsDatabase> current_offsets_database();

}  // namespace ea
