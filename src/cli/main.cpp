// Entry point; the subcommands live in src/cli/commands.cpp.
#include "cli/commands.h"

int main(int argc, char** argv) { return ea::cli::run_cli(argc, argv); }
