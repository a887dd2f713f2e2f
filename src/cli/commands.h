// The ebpf-agent command line: run, daemon, apply, delete, list, validate, version.
#pragma once

namespace ea::cli {

int run_cli(int argc, char** argv);

}  // namespace ea::cli
