#include "cli/commands.h"

#include <cstdio>

namespace ea::cli {

// Replaced by the full command set in the next commit.
int run_cli(int, char**) {
  std::fprintf(stderr, "ebpf-agent: command line not built yet\n");
  return 2;
}

}  // namespace ea::cli
