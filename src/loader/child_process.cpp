#include "loader/child_process.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <thread>

#include <fmt/format.h>

namespace ea {

namespace {

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// dup2() onto stdin/stdout/stderr in the child must never meet a source that already is one of
// them (dup2(fd, fd) would keep O_CLOEXEC), so keep our ends above 2.
int above_stdio(int fd) {
  if (fd < 0 || fd > STDERR_FILENO) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
  close(fd);
  return moved;
}

// In the forked child: only async-signal-safe calls. Never returns.
[[noreturn]] void exec_child(const char* path, char* const argv[], pid_t parent, int stdin_fd, int output_fd,
                             int exec_error_fd) {
  // The agent's handlers are gone after exec, but ignored signals and the (possibly blocked) mask
  // would be inherited: give the helper a clean slate, or SIGTERM might never reach it.
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  for (int signal = 1; signal < NSIG; ++signal) sigaction(signal, &default_action, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);

  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(127);  // parent already gone
  setpgid(0, 0);
  if (dup2(stdin_fd, STDIN_FILENO) < 0 || dup2(output_fd, STDOUT_FILENO) < 0 || dup2(output_fd, STDERR_FILENO) < 0)
    _exit(127);
  // Descriptors other parts of the agent opened without O_CLOEXEC must not leak into the helper.
  syscall(SYS_close_range, STDERR_FILENO + 1, ~0U, CLOSE_RANGE_CLOEXEC);
  execv(path, argv);
  int error = errno;
  ssize_t ignored = write(exec_error_fd, &error, sizeof(error));
  (void)ignored;
  _exit(127);
}

}  // namespace

Result<ChildProcess> ChildProcess::spawn(const std::string& path, const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);

  int dev_null = above_stdio(open("/dev/null", O_RDONLY | O_CLOEXEC));
  int output[2] = {-1, -1};
  int exec_error[2] = {-1, -1};  // closed by a successful exec; carries errno otherwise
  bool ready = dev_null >= 0 && pipe2(output, O_CLOEXEC) == 0 && pipe2(exec_error, O_CLOEXEC) == 0;
  output[1] = above_stdio(output[1]);
  exec_error[1] = above_stdio(exec_error[1]);
  pid_t parent = getpid();
  pid_t pid = ready && output[1] >= 0 && exec_error[1] >= 0 ? fork() : -1;
  if (pid == 0) exec_child(path.c_str(), args.data(), parent, dev_null, output[1], exec_error[1]);
  int spawn_errno = errno;
  close_fd(dev_null);
  close_fd(output[1]);
  close_fd(exec_error[1]);
  if (pid < 0) {
    close_fd(output[0]);
    close_fd(exec_error[0]);
    return failf("cannot start {}: {}", path, strerror(spawn_errno));
  }
  setpgid(pid, pid);  // also from here, so the group exists whoever runs first

  ChildProcess child(pid, output[0]);
  int exec_errno = 0;
  ssize_t length = 0;
  do {
    length = read(exec_error[0], &exec_errno, sizeof(exec_errno));
  } while (length < 0 && errno == EINTR);
  close_fd(exec_error[0]);
  if (length == sizeof(exec_errno)) {
    child.reap();
    return failf("cannot execute {}: {}", path, strerror(exec_errno));
  }
  fcntl(child.output_fd_, F_SETFL, O_NONBLOCK);
  return child;
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_), output_fd_(other.output_fd_), status_(other.status_) {
  other.pid_ = -1;
  other.output_fd_ = -1;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    kill(-pid_, SIGKILL);
    reap();
  }
  close_fd(output_fd_);
}

int ChildProcess::reap() {
  int status = 0;
  pid_t result = 0;
  do {
    result = waitpid(pid_, &status, 0);
  } while (result < 0 && errno == EINTR);
  // ECHILD: someone else reaped it; report it as having failed.
  status_ = result == pid_ ? status : 255 << 8;
  pid_ = -1;
  return status_;
}

std::optional<int> ChildProcess::poll_exit() {
  if (pid_ < 0) return status_;
  siginfo_t info{};
  if (waitid(P_PID, pid_, &info, WEXITED | WNOHANG | WNOWAIT) != 0) return errno == ECHILD ? reap() : std::optional<int>();
  if (info.si_pid == 0) return std::nullopt;
  // Until reaped the leader is a zombie holding its pid, so the group id cannot be reused yet:
  // now is the safe moment to kill what is left of its group (processes the helper started).
  kill(-pid_, SIGKILL);
  return reap();
}

int ChildProcess::terminate(std::chrono::milliseconds grace) {
  if (pid_ < 0) return status_;
  kill(-pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto status = poll_exit()) return *status;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(-pid_, SIGKILL);
  return reap();
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int signal = WTERMSIG(status);
    const char* name = sigabbrev_np(signal);
    return fmt::format("killed by signal {} (SIG{}){}", signal, name ? name : "?",
                       WCOREDUMP(status) ? ", core dumped" : "");
  }
  return fmt::format("ended with wait status {:#x}", status);
}

}  // namespace ea
