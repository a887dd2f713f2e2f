// `ebpf-agent query`: reads the embedded store (src/tsdb) back.
//   query [--db DIR] [-o table|json]                       metrics and event specs held
//   query 'METRIC{label="v",x=~"re.*"}' [--from T] [--to T]  samples of matching series
//   query --events [--spec NAME] [--from T] [--to T] [--limit N]
#pragma once

namespace CLI {
class App;
}

namespace ea::cli {

// Adds the subcommand to `app`. It runs from its own callback and ends the command line's
// parsing with its exit code (0 done, 1 the store could not be read, 2 bad arguments).
void add_query_command(CLI::App& app);

}  // namespace ea::cli
