#include "channel/pipe_channel.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>

#include <spdlog/spdlog.h>

namespace ea {

namespace {

constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kReadsPerRound = 16;    // then back to poll(), so a flood cannot hold off stop()
constexpr size_t kFinalDrainReads = 64;  // at stop: what the FIFO can hold, and no more
constexpr int kFifoCapacity = 1 << 20;   // room for bursts while the pipeline catches up
constexpr auto kOverlongLogInterval = std::chrono::seconds(10);

std::string_view file_kind(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a FIFO";
}

// The count of bpftrace's `{"type": "lost_events", "data": {"events": N}}`, when `line` is one.
std::optional<uint64_t> bpftrace_lost_events(std::string_view line) {
  if (!line.starts_with(R"({"type": "lost_events")")) return std::nullopt;
  constexpr std::string_view kCountKey = R"("events":)";
  size_t key = line.find(kCountKey);
  if (key == std::string_view::npos) return std::nullopt;
  std::string_view count_text = line.substr(key + kCountKey.size());
  count_text.remove_prefix(std::min(count_text.find_first_not_of(' '), count_text.size()));
  uint64_t count = 0;
  auto [end, error] = std::from_chars(count_text.data(), count_text.data() + count_text.size(), count);
  if (error != std::errc()) return std::nullopt;
  return count;
}

int64_t monotonic_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

PipeChannel::PipeChannel(std::string name, std::string path) : name_(std::move(name)), path_(std::move(path)) {}

PipeChannel::~PipeChannel() { stop(); }

std::string PipeChannel::describe() const { return "pipe " + name_ + " (" + path_ + ")"; }

Result<void> PipeChannel::create_or_check_fifo() {
  struct stat status {};
  if (lstat(path_.c_str(), &status) == 0) {
    if (S_ISFIFO(status.st_mode)) return {};
    return failf("pipe channel '{}': {} exists and is {}, not a FIFO: remove it or set another pinpath", name_,
                 path_, file_kind(status.st_mode));
  }
  if (errno != ENOENT) return failf("pipe channel '{}': cannot inspect {}: {}", name_, path_, strerror(errno));

  // Create missing parents outermost first, remembering them so stop() removes only ours.
  std::vector<std::filesystem::path> missing;
  for (auto dir = std::filesystem::path(path_).parent_path(); dir != dir.root_path(); dir = dir.parent_path()) {
    struct stat dir_status {};
    if (stat(dir.c_str(), &dir_status) == 0) {
      if (!S_ISDIR(dir_status.st_mode))
        return failf("pipe channel '{}': {} is not a directory, so the FIFO {} cannot be made there", name_,
                     dir.string(), path_);
      break;
    }
    if (errno != ENOENT) return failf("pipe channel '{}': cannot inspect {}: {}", name_, dir.string(), strerror(errno));
    missing.push_back(dir);
  }
  for (auto dir = missing.rbegin(); dir != missing.rend(); ++dir) {
    if (mkdir(dir->c_str(), 0700) != 0 && errno != EEXIST)
      return failf("pipe channel '{}': cannot create directory {}: {}", name_, dir->string(), strerror(errno));
    created_dirs_.push_back(dir->string());
  }
  if (mkfifo(path_.c_str(), 0600) != 0)
    return failf("pipe channel '{}': cannot create the FIFO {}: {}", name_, path_, strerror(errno));
  created_fifo_ = true;
  return {};
}

Result<void> PipeChannel::start(RawRecordHandler on_record, PollDoneHandler on_poll_done) {
  if (thread_.joinable()) return failf("pipe channel '{}' is already running", name_);
  if (!path_.starts_with('/'))
    return failf("pipe channel '{}': pinpath '{}' must be an absolute path", name_, path_);
  auto ready = [&]() -> Result<void> {
    if (auto fifo = create_or_check_fifo(); !fifo) return fifo;
    // O_NOFOLLOW and the fstat below close the gap between the check above and this open.
    fifo_fd_ = open(path_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    if (fifo_fd_ < 0) return failf("pipe channel '{}': cannot open the FIFO {}: {}", name_, path_, strerror(errno));
    struct stat status {};
    if (fstat(fifo_fd_, &status) != 0 || !S_ISFIFO(status.st_mode))
      return failf("pipe channel '{}': {} is not a FIFO", name_, path_);
    // Best effort: a bigger FIFO absorbs bursts; the default (64 KiB) still works.
    if (fcntl(fifo_fd_, F_SETPIPE_SZ, kFifoCapacity) < 0)
      spdlog::debug("pipe channel '{}': keeping the default FIFO size: {}", name_, strerror(errno));
    stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd_ < 0) return failf("pipe channel '{}': eventfd: {}", name_, strerror(errno));
    return {};
  }();
  if (!ready) {
    stop();
    return ready;
  }
  on_record_ = std::move(on_record);
  read_buffer_.resize(kReadChunk);
  thread_ = std::thread([this, on_poll_done = std::move(on_poll_done)] { read_loop(on_poll_done); });
  return {};
}

void PipeChannel::read_loop(PollDoneHandler on_poll_done) {
  pthread_setname_np(pthread_self(), ("ea-ch-" + name_).substr(0, 15).c_str());
  for (;;) {
    pollfd fds[2] = {{fifo_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("pipe channel '{}': poll failed: {}", name_, strerror(errno));
      break;
    }
    if (fds[1].revents != 0) break;
    if (fds[0].revents != 0 && drain(kReadsPerRound)) on_poll_done();
  }
  if (drain(kFinalDrainReads)) on_poll_done();
}

// Reads what is available (at most `max_reads` chunks); true when records were delivered.
bool PipeChannel::drain(size_t max_reads) {
  uint64_t received_before = counters_.received.load(std::memory_order_relaxed);
  for (size_t reads = 0; reads < max_reads;) {
    ssize_t length = read(fifo_fd_, read_buffer_.data(), read_buffer_.size());
    if (length > 0) {
      split_lines(std::string_view(read_buffer_.data(), static_cast<size_t>(length)));
      ++reads;
      continue;
    }
    if (length < 0 && errno == EINTR) continue;
    if (length < 0 && errno != EAGAIN) spdlog::error("pipe channel '{}': read failed: {}", name_, strerror(errno));
    break;  // EAGAIN: empty for now (never end-of-file: this channel holds a writer itself)
  }
  return counters_.received.load(std::memory_order_relaxed) != received_before;
}

void PipeChannel::split_lines(std::string_view chunk) {
  while (!chunk.empty()) {
    size_t newline = chunk.find('\n');
    std::string_view piece = chunk.substr(0, newline);
    if (!skipping_overlong_) {
      if (partial_line_.size() + piece.size() > kMaxLineBytes) {
        note_overlong_line();
        partial_line_.clear();
        skipping_overlong_ = true;
      } else if (newline == std::string_view::npos) {
        partial_line_.append(piece);
      } else if (partial_line_.empty()) {
        deliver(piece);
      } else {
        partial_line_.append(piece);
        deliver(partial_line_);
        partial_line_.clear();
      }
    }
    if (newline == std::string_view::npos) return;
    skipping_overlong_ = false;  // the newline ends whatever line was being skipped
    chunk.remove_prefix(newline + 1);
  }
}

void PipeChannel::deliver(std::string_view line) {
  if (line.empty()) return;
  counters_.received.fetch_add(1, std::memory_order_relaxed);
  if (auto lost = bpftrace_lost_events(line)) counters_.kernel_lost.fetch_add(*lost, std::memory_order_relaxed);
  on_record_(std::as_bytes(std::span(line.data(), line.size())));
}

void PipeChannel::note_overlong_line() {
  ++overlong_lines_;
  counters_.kernel_lost.fetch_add(1, std::memory_order_relaxed);
  int64_t now = monotonic_ns();
  if (now - last_overlong_log_ns_ < std::chrono::nanoseconds(kOverlongLogInterval).count()) return;
  last_overlong_log_ns_ = now;
  spdlog::warn("pipe channel '{}': dropped a line longer than {} bytes ({} so far)", name_, kMaxLineBytes,
               overlong_lines_);
}

void PipeChannel::stop() {
  if (thread_.joinable()) {
    uint64_t wake = 1;
    if (write(stop_fd_, &wake, sizeof(wake)) != sizeof(wake))
      spdlog::error("pipe channel '{}': cannot wake the reader: {}", name_, strerror(errno));
    thread_.join();
  }
  for (int* fd : {&fifo_fd_, &stop_fd_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
  partial_line_.clear();
  skipping_overlong_ = false;
  remove_what_we_created();
}

void PipeChannel::remove_what_we_created() {
  if (created_fifo_ && unlink(path_.c_str()) != 0 && errno != ENOENT)
    spdlog::warn("pipe channel '{}': cannot remove the FIFO {}: {}", name_, path_, strerror(errno));
  created_fifo_ = false;
  // Innermost first; a directory someone else filled meanwhile stays.
  for (auto dir = created_dirs_.rbegin(); dir != created_dirs_.rend(); ++dir) {
    if (rmdir(dir->c_str()) != 0 && errno != ENOENT && errno != ENOTEMPTY)
      spdlog::warn("pipe channel '{}': cannot remove directory {}: {}", name_, *dir, strerror(errno));
  }
  created_dirs_.clear();
}

}  // namespace ea
