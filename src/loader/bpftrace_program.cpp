#include "loader/bpftrace_program.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "loader/child_process.h"

namespace ea {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::string_view kStateRoot = "/var/lib/ebpf-agent/bpftrace";
constexpr auto kAttachTimeout = 20s;
constexpr auto kAttachUnobservableSettle = 2s;  // when /proc/PID/syscall cannot tell
constexpr auto kStopGrace = 5s;
constexpr auto kTick = 100ms;
constexpr auto kQuickDeath = 60s;  // a death this soon after its start counts towards giving up
constexpr int kMaxQuickDeaths = 5;
constexpr auto kFirstBackoff = 1s;
constexpr auto kMaxBackoff = 30s;
constexpr size_t kOutputTailBytes = 8 * 1024;

// The last few KiB a child wrote to stdout/stderr: enough for bpftrace's error and its context.
class OutputTail {
 public:
  // Reads whatever `fd` has; false once the child closed its end.
  bool read_from(int fd, std::string_view label) {
    char buffer[4096];
    for (;;) {
      ssize_t length = read(fd, buffer, sizeof(buffer));
      if (length > 0) {
        std::string_view chunk(buffer, static_cast<size_t>(length));
        spdlog::debug("bpftrace program '{}': {}", label, chunk);
        text_.append(chunk);
        if (text_.size() > 2 * kOutputTailBytes) text_.erase(0, text_.size() - kOutputTailBytes);
        continue;
      }
      if (length < 0 && errno == EINTR) continue;
      return length != 0;
    }
  }

  // The tail, starting at a line boundary when it had to be cut.
  std::string text() const {
    std::string_view tail(text_);
    if (tail.size() > kOutputTailBytes) {
      tail.remove_prefix(tail.size() - kOutputTailBytes);
      if (size_t newline = tail.find('\n'); newline != std::string_view::npos) tail.remove_prefix(newline + 1);
    }
    while (!tail.empty() && std::isspace(static_cast<unsigned char>(tail.back()))) tail.remove_suffix(1);
    return std::string(tail);
  }

 private:
  std::string text_;
};

bool is_plain_file_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find_first_of(std::string_view("/\0", 2)) == name.npos;
}

Result<std::string> find_bpftrace() {
  std::vector<std::string> dirs;
  if (const char* path = getenv("PATH")) {
    std::string_view remaining(path);
    while (!remaining.empty()) {
      std::string_view dir = remaining.substr(0, remaining.find(':'));
      remaining.remove_prefix(std::min(dir.size() + 1, remaining.size()));
      if (dir.starts_with('/')) dirs.emplace_back(dir);  // a relative entry would depend on the cwd
    }
  }
  dirs.insert(dirs.end(), {"/usr/bin", "/usr/sbin"});
  for (const std::string& dir : dirs) {
    std::string candidate = dir + "/bpftrace";
    struct stat status {};
    if (stat(candidate.c_str(), &status) == 0 && S_ISREG(status.st_mode) && access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return fail("bpftrace is not installed (looked in PATH, /usr/bin and /usr/sbin): install it, e.g. "
              "`apt-get install bpftrace`");
}

// What the main thread of `pid` is doing, from /proc/PID/syscall.
struct SyscallState {
  bool observable = false;         // false: the kernel does not say
  std::optional<long> blocked_in;  // the system call it waits in; nullopt while running
};

SyscallState syscall_state(pid_t pid) {
  int fd = open(fmt::format("/proc/{}/syscall", pid).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char text[32] = {};
  ssize_t length = read(fd, text, sizeof(text) - 1);
  close(fd);
  if (length <= 0) return {};
  long number = 0;  // the first field: a number, -1 (not in a syscall) or "running"
  auto [end, error] = std::from_chars(text, text + length, number);
  if (error != std::errc() || number < 0) return {true, std::nullopt};
  return {true, number};
}

// bpftrace attaches every probe and runs BEGIN before its event loop waits in epoll_wait on its
// perf/ring buffers, so a main thread blocked there means the probes are attached.
bool in_event_loop(const SyscallState& state) {
  if (!state.blocked_in) return false;
  long number = *state.blocked_in;
#ifdef SYS_epoll_wait
  if (number == SYS_epoll_wait) return true;
#endif
#ifdef SYS_epoll_pwait2
  if (number == SYS_epoll_pwait2) return true;
#endif
  return number == SYS_epoll_pwait;
}

bool opening_a_file(const SyscallState& state) {
#ifdef SYS_open
  if (state.blocked_in == SYS_open) return true;
#endif
  return state.blocked_in == SYS_openat;
}

}  // namespace

std::string default_bpftrace_output_path(std::string_view spec, std::string_view program) {
  return fmt::format("{}/{}.{}/output", kStateRoot, spec, program);
}

struct BpftraceProgram::Impl {
  // How one run of bpftrace ended.
  struct RunEnd {
    enum class How { Stopped, Exited, AttachTimedOut, SpawnFailed } how = How::Exited;
    int status = 0;
    std::string why;     // for AttachTimedOut and SpawnFailed
    std::string output;  // bpftrace's stdout/stderr tail
  };

  BpftraceProgram& owner;
  std::string label;  // "spec.program", also the state directory's name
  std::string bpftrace;
  std::string state_dir;
  std::string script_path;
  std::string source;
  std::vector<std::string> args;

  std::thread supervisor;
  int stop_fd = -1;  // eventfd: stop() wakes the supervisor

  mutable std::mutex mutex;  // guards the two below (read by state_detail() and pid())
  pid_t pid = -1;
  std::string last_failure;

  Impl(BpftraceProgram& owner, std::string label) : owner(owner), label(std::move(label)) {}

  Result<void> write_files() const {
    std::error_code error;
    std::filesystem::create_directories(kStateRoot, error);
    if (error) return failf("cannot create {}: {}", kStateRoot, error.message());
    if (mkdir(state_dir.c_str(), 0700) != 0 && errno != EEXIST)
      return failf("cannot create {}: {}", state_dir, strerror(errno));
    struct stat status {};
    if (lstat(state_dir.c_str(), &status) != 0 || !S_ISDIR(status.st_mode))
      return failf("{} exists but is not a directory: remove it", state_dir);
    chmod(state_dir.c_str(), 0700);

    int fd = open(script_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return failf("cannot write the script {}: {}", script_path, strerror(errno));
    std::string_view remaining(source);
    while (!remaining.empty()) {
      ssize_t written = write(fd, remaining.data(), remaining.size());
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) {
        int write_errno = errno;
        close(fd);
        return failf("cannot write the script {}: {}", script_path, strerror(write_errno));
      }
      remaining.remove_prefix(static_cast<size_t>(written));
    }
    close(fd);
    return {};
  }

  // The script, the FIFO when it lives here (the pipe channel still reads its open descriptor),
  // and the state directory unless something else was put there.
  void remove_files() const {
    unlink(script_path.c_str());
    if (std::filesystem::path(owner.output_fifo_).parent_path() == state_dir) unlink(owner.output_fifo_.c_str());
    if (rmdir(state_dir.c_str()) != 0 && errno != ENOENT)
      spdlog::warn("bpftrace program '{}': leaving {}: {}", label, state_dir, strerror(errno));
  }

  // bpftrace would create a regular file in place of a missing FIFO and fill it unread.
  Result<void> check_output_fifo() const {
    struct stat status {};
    bool exists = lstat(owner.output_fifo_.c_str(), &status) == 0;
    if (exists && S_ISFIFO(status.st_mode)) return {};
    return failf("the output FIFO {} {}: the pipe channel that creates and reads it must be started before the "
                 "program",
                 owner.output_fifo_, exists ? "is not a FIFO" : "does not exist");
  }

  std::vector<std::string> command() const {
    std::vector<std::string> argv{"bpftrace", "-f", "json", "-o", owner.output_fifo_, "--", script_path};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  void record_failure(std::string failure) {
    std::lock_guard lock(mutex);
    last_failure = std::move(failure);
  }

  // Sleeps up to `timeout`; true when stop() asked us to end.
  bool wait_for_stop(Clock::duration timeout) const {
    pollfd fd{stop_fd, POLLIN, 0};
    auto milliseconds = std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count();
    return poll(&fd, 1, static_cast<int>(milliseconds)) > 0;
  }

  // Runs bpftrace until it exits or stop() is called. `started` (set until the first attach)
  // is fulfilled once the probes are attached.
  RunEnd run(ChildProcess& child, std::promise<Result<void>>*& started) {
    OutputTail output;
    bool output_open = true;
    bool attached = false;
    auto began = Clock::now();
    for (;;) {
      pollfd fds[2] = {{output_open ? child.output_fd() : -1, POLLIN, 0}, {stop_fd, POLLIN, 0}};
      poll(fds, 2, static_cast<int>(std::chrono::milliseconds(kTick).count()));
      if (output_open) output_open = output.read_from(child.output_fd(), label);
      if (fds[1].revents != 0) {
        int status = child.terminate(kStopGrace);
        return {RunEnd::How::Stopped, status, {}, output.text()};
      }
      if (auto status = child.poll_exit()) {
        output.read_from(child.output_fd(), label);
        return {RunEnd::How::Exited, *status, {}, output.text()};
      }
      if (attached) continue;
      SyscallState state = syscall_state(child.pid());
      auto running_for = Clock::now() - began;
      if (in_event_loop(state) || (!state.observable && running_for >= kAttachUnobservableSettle)) {
        attached = true;
        owner.state_ = State::Running;
        if (started) {
          started->set_value({});
          started = nullptr;
        } else {
          spdlog::info("bpftrace program '{}' is running again (pid {})", label, child.pid());
        }
      } else if (started && running_for >= kAttachTimeout) {
        std::string why = fmt::format("bpftrace did not attach its probes within {} s", kAttachTimeout.count());
        if (opening_a_file(state))
          why += fmt::format(" (it is blocked opening its output FIFO {}: the pipe channel reading it must be "
                             "started before the program)",
                             owner.output_fifo_);
        child.terminate(0ms);
        return {RunEnd::How::AttachTimedOut, 0, why, output.text()};
      }
    }
  }

  static std::string describe(const RunEnd& end) {
    std::string what = end.how == RunEnd::How::Exited ? "bpftrace " + describe_wait_status(end.status) : end.why;
    if (!end.output.empty()) what += ":\n" + end.output;
    return what;
  }

  void supervise(std::promise<Result<void>> start_result) {
    pthread_setname_np(pthread_self(), ("ea-bt-" + label).substr(0, 15).c_str());
    std::promise<Result<void>>* started = &start_result;
    int quick_deaths = 0;
    auto backoff = kFirstBackoff;
    for (;;) {
      auto began = Clock::now();
      RunEnd end;
      // Rewritten for every run, so a script removed behind our back does not kill the program.
      auto files = write_files();
      if (files) files = check_output_fifo();
      Result<ChildProcess> child =
          files ? ChildProcess::spawn(bpftrace, command()) : Result<ChildProcess>(std::unexpected(files.error()));
      if (!child) {
        end = {RunEnd::How::SpawnFailed, 0, child.error().message, {}};
      } else {
        {
          std::lock_guard lock(mutex);
          pid = child->pid();
        }
        end = run(*child, started);
        std::lock_guard lock(mutex);
        pid = -1;
      }
      if (end.how == RunEnd::How::Stopped) return;

      std::string what = describe(end);
      if (end.how == RunEnd::How::Exited && WIFEXITED(end.status) && WEXITSTATUS(end.status) == 0) {
        // The script ended itself (exit()): done, not dead.
        spdlog::info("bpftrace program '{}' finished: bpftrace exited with status 0", label);
        record_failure("finished: bpftrace exited with status 0");
        owner.state_ = State::Stopped;
        if (started) started->set_value({});
        return;
      }
      if (started) {  // never attached: start() reports it, nothing to restart
        record_failure(what);
        owner.state_ = State::Failed;
        bool exited = end.how == RunEnd::How::Exited;
        started->set_value(failf("bpftrace program '{}': {}{}", label, exited ? "before attaching its probes, " : "",
                                 what));
        return;
      }

      bool quick = Clock::now() - began < kQuickDeath;
      quick_deaths = quick ? quick_deaths + 1 : 0;
      if (!quick) backoff = kFirstBackoff;
      if (quick_deaths >= kMaxQuickDeaths) {
        std::string reason = fmt::format("{}\n(gave up: bpftrace died {} times, each within {} s of starting)", what,
                                         quick_deaths, kQuickDeath.count());
        spdlog::error("bpftrace program '{}' failed: {}", label, reason);
        record_failure(std::move(reason));
        owner.state_ = State::Failed;
        return;
      }
      spdlog::warn("bpftrace program '{}': {}\n(restarting in {} s)", label, what, backoff.count());
      record_failure(std::move(what));
      owner.state_ = State::Restarting;
      if (wait_for_stop(backoff)) return;
      backoff = std::min(backoff * 2, kMaxBackoff);
      owner.restarts_.fetch_add(1);
    }
  }
};

Result<std::unique_ptr<BpftraceProgram>> BpftraceProgram::prepare(const Spec& spec, const ProgramSpec& program,
                                                                  std::string source, std::string output_fifo) {
  std::string where = fmt::format("bpftrace program '{}' ({})", program.name, program.pos.str());
  const auto* properties = std::get_if<BpftraceProps>(&program.props);
  if (!properties) return failf("{}: the program is not of type bpftrace", where);
  if (!is_plain_file_name(spec.name) || !is_plain_file_name(program.name))
    return failf("{}: spec name '{}' and program name '{}' name its state directory under {}, so they must not be "
                 "empty, '.', '..' or contain '/'",
                 where, spec.name, program.name, kStateRoot);
  if (source.empty()) return failf("{}: the script is empty: give properties.src or a path to a .bt file", where);
  if (!output_fifo.starts_with('/'))
    return failf("{}: the output FIFO '{}' must be an absolute path", where, output_fifo);
  auto bpftrace = find_bpftrace();
  if (!bpftrace) return std::unexpected(with_context(bpftrace.error(), where));

  std::unique_ptr<BpftraceProgram> self(new BpftraceProgram());
  self->output_fifo_ = std::move(output_fifo);
  self->impl_ = std::make_unique<Impl>(*self, spec.name + "." + program.name);
  Impl& impl = *self->impl_;
  impl.bpftrace = std::move(*bpftrace);
  impl.state_dir = fmt::format("{}/{}", kStateRoot, impl.label);
  impl.script_path = fmt::format("{}/{}.bt", impl.state_dir, program.name);
  impl.source = std::move(source);
  impl.args = properties->args;
  if (auto files = impl.write_files(); !files) return std::unexpected(with_context(files.error(), where));
  return self;
}

BpftraceProgram::~BpftraceProgram() {
  if (impl_) stop();
}

Result<void> BpftraceProgram::start() {
  if (impl_->supervisor.joinable()) {
    State state = state_.load();
    if (state == State::Running || state == State::Restarting)
      return failf("bpftrace program '{}' is already running", impl_->label);
    impl_->supervisor.join();  // it ended (failed or finished): start afresh
  }
  if (impl_->stop_fd < 0) impl_->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (impl_->stop_fd < 0) return failf("bpftrace program '{}': eventfd: {}", impl_->label, strerror(errno));
  restarts_ = 0;
  std::promise<Result<void>> started;
  auto start_result = started.get_future();
  // bpftrace is forked from the supervisor thread: PR_SET_PDEATHSIG follows the thread that
  // forked, and the supervisor lives exactly as long as bpftrace may.
  impl_->supervisor = std::thread([this, started = std::move(started)]() mutable {
    impl_->supervise(std::move(started));
  });
  Result<void> result = start_result.get();
  if (!result) impl_->supervisor.join();
  return result;
}

void BpftraceProgram::stop() {
  if (impl_->supervisor.joinable()) {
    uint64_t wake = 1;
    if (write(impl_->stop_fd, &wake, sizeof(wake)) != sizeof(wake))
      spdlog::error("bpftrace program '{}': cannot wake the supervisor: {}", impl_->label, strerror(errno));
    impl_->supervisor.join();
  }
  if (impl_->stop_fd >= 0) close(impl_->stop_fd);
  impl_->stop_fd = -1;
  state_ = State::Stopped;
  impl_->remove_files();
}

std::string BpftraceProgram::state_detail() const {
  std::lock_guard lock(impl_->mutex);
  std::string detail = impl_->pid > 0 ? fmt::format("bpftrace pid {}", impl_->pid) : "bpftrace not running";
  if (int restarts = restarts_.load(); restarts > 0) detail += fmt::format(", {} restarts", restarts);
  if (!impl_->last_failure.empty()) detail += "; last: " + impl_->last_failure;
  return detail;
}

int BpftraceProgram::pid() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->pid;
}

}  // namespace ea
