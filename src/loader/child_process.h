// A helper process run by the agent (bpftrace): its own process group, stdin from /dev/null,
// stdout and stderr into one pipe the caller reads, killed with SIGKILL if the spawning thread
// dies (PR_SET_PDEATHSIG, which is tied to the *thread*: spawn from a thread that outlives the
// child, such as a supervisor thread). The environment is inherited unchanged.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace ea {

class ChildProcess {
 public:
  // argv[0] is passed as given; `path` is what is executed. Fails (with the exec error) if the
  // program cannot be executed.
  static Result<ChildProcess> spawn(const std::string& path, const std::vector<std::string>& argv);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&&) = delete;
  ChildProcess(const ChildProcess&) = delete;
  ~ChildProcess();  // SIGKILLs and reaps a child still running

  pid_t pid() const { return pid_; }
  // Non-blocking read end of the child's stdout+stderr.
  int output_fd() const { return output_fd_; }

  // Without blocking: the wait status once the child has exited (then reaped, with whatever was
  // left of its process group killed), nullopt while it runs.
  std::optional<int> poll_exit();
  // SIGTERM to the process group; SIGKILL after `grace`. Returns the wait status.
  int terminate(std::chrono::milliseconds grace);

 private:
  ChildProcess(pid_t pid, int output_fd) : pid_(pid), output_fd_(output_fd) {}
  int reap();

  pid_t pid_ = -1;  // -1 once reaped
  int output_fd_ = -1;
  int status_ = 0;
};

// "exited with status 1", "killed by signal 9 (Killed)".
std::string describe_wait_status(int status);

}  // namespace ea
