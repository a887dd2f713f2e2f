// A `bpftrace` program: the agent runs bpftrace with JSON output into the spec's pipe channel.
//
// Order the runtime must keep: start the pipe channel reading the output FIFO (it creates the
// FIFO and holds it open read-write) *before* start(), and stop() the program before that
// channel. bpftrace opens the FIFO for writing at startup, which blocks until a reader exists;
// started the other way round, start() gives up after 20 s with an error saying so.
//
// Files: the script is /var/lib/ebpf-agent/bpftrace/<spec>.<program>/<program>.bt (directory
// 0700, script 0600); stop() removes it, the FIFO if it lives in that directory, and the directory.
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/result.h"
#include "spec/spec.h"

namespace ea {

// Where a bpftrace program writes when the spec names no pipe channel pinpath:
// /var/lib/ebpf-agent/bpftrace/<spec>.<program>/output (as in the talk).
std::string default_bpftrace_output_path(std::string_view spec, std::string_view program);

class BpftraceProgram {
 public:
  // Checks bpftrace is present and the source is readable; writes the script beside the FIFO.
  // `source` is the script text (inline `src` or the fetched .bt file).
  static Result<std::unique_ptr<BpftraceProgram>> prepare(const Spec& spec, const ProgramSpec& program,
                                                          std::string source, std::string output_fifo);
  ~BpftraceProgram();

  // Starts bpftrace (-f json -o FIFO) under a supervisor thread that restarts it with back-off
  // (1, 2, 4 ... 30 s) when it dies and marks the program Failed after 5 deaths in a row each
  // within 60 s of their start. Waits until bpftrace has attached its probes (or failed: the
  // error holds bpftrace's own message) before returning. A script that ends itself (exit(),
  // status 0) is finished, not dead: state Stopped, no restart.
  Result<void> start();
  void stop();  // idempotent: kills bpftrace, joins the supervisor, removes the script

  enum class State { Prepared, Running, Restarting, Failed, Stopped };
  State state() const { return state_.load(); }
  std::string state_detail() const;  // last failure (bpftrace's stderr tail), restarts
  int restarts() const { return restarts_.load(); }
  int pid() const;
  const std::string& output_fifo() const { return output_fifo_; }

 private:
  BpftraceProgram() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string output_fifo_;
  std::atomic<State> state_{State::Prepared};
  std::atomic<int> restarts_{0};
};

}  // namespace ea
