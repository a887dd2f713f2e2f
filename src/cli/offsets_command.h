// `ebpf-agent offsets`: the offsets database from the command line (src/l7/offsets_db.h).
//   offsets identify FILE [--offsets-dir DIR]...   build-id, XXH3, symbol tables, the database entry
//   offsets generate FILE [--symbols A,B] [--name TEXT] [--identity-from DEPLOYED]
//                                                   a database file from FILE's symbol tables
#pragma once

namespace CLI {
class App;
}

namespace ea::cli {

// Adds the subcommand to `app`. It runs from its own callback and ends the command line's parsing
// with its exit code (0 done, 1 a file could not be read or the entry could not be made, 2 bad
// arguments).
void add_offsets_command(CLI::App& app);

}  // namespace ea::cli
