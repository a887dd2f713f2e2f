#include "sink/file_sink.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

namespace ea {

Result<std::unique_ptr<FileSink>> FileSink::open(FileSinkOptions options) {
  if (options.path.empty()) return fail("file output: empty path (use --output file:/path/to/records.jsonl)");
  std::unique_ptr<FileSink> sink(new FileSink(std::move(options)));
  std::error_code ec;
  auto parent = std::filesystem::path(sink->options_.path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (auto opened = sink->reopen(); !opened) return std::unexpected(opened.error());
  sink->flusher_ = std::thread([raw = sink.get()] {
    pthread_setname_np(pthread_self(), "ea-file-sink");
    std::unique_lock lock(raw->mutex_);
    while (!raw->stopping_) {
      raw->wake_.wait_for(lock, std::chrono::milliseconds(raw->options_.flush_interval_ms));
      raw->flush_locked();
    }
  });
  return sink;
}

FileSink::FileSink(FileSinkOptions options) : options_(std::move(options)) {}

FileSink::~FileSink() { stop(); }

Result<void> FileSink::reopen() {
  if (fd_ >= 0) close(fd_);
  fd_ = ::open(options_.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0) return failf("file output {}: cannot open: {}", options_.path, strerror(errno));
  struct stat st {};
  file_size_ = fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  return {};
}

void FileSink::write(const RecordBatch& batch, std::string_view jsonl) {
  std::lock_guard lock(mutex_);
  buffer_.append(jsonl);
  buffered_records_ += batch.records.size();
  if (buffer_.size() >= kFlushBytes) flush_locked();
}

void FileSink::note_failure_locked(std::string_view what, uint64_t records) {
  counters_.failures.fetch_add(records, std::memory_order_relaxed);
  int64_t now = static_cast<int64_t>(wall_clock_ns());
  if (now - last_error_log_ns_ > 10'000'000'000) {
    last_error_log_ns_ = now;
    spdlog::error("file output {}: {}: {} ({} records lost so far)", options_.path, what, strerror(errno),
                  counters_.failures.load());
  }
}

void FileSink::flush_locked() {
  if (buffer_.empty()) return;
  if (file_size_ + buffer_.size() > options_.max_bytes && file_size_ > 0) rotate_locked();
  if (fd_ < 0 && !reopen()) {
    note_failure_locked("cannot open", buffered_records_);
    buffer_.clear();
    buffered_records_ = 0;
    return;
  }
  size_t written = 0;
  while (written < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + written, buffer_.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      note_failure_locked("write failed", buffered_records_);
      close(fd_);
      fd_ = -1;  // retried at the next flush (the disk may come back)
      buffer_.clear();
      buffered_records_ = 0;
      return;
    }
    written += static_cast<size_t>(n);
  }
  file_size_ += written;
  counters_.records.fetch_add(buffered_records_, std::memory_order_relaxed);
  counters_.bytes.fetch_add(written, std::memory_order_relaxed);
  buffer_.clear();
  buffered_records_ = 0;
}

void FileSink::rotate_locked() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  const std::string& path = options_.path;
  if (options_.keep == 0) {
    unlink(path.c_str());
  } else {
    unlink((path + "." + std::to_string(options_.keep)).c_str());
    for (unsigned i = options_.keep; i > 1; --i)
      rename((path + "." + std::to_string(i - 1)).c_str(), (path + "." + std::to_string(i)).c_str());
    rename(path.c_str(), (path + ".1").c_str());
  }
  if (auto reopened = reopen(); !reopened) spdlog::error("{}", reopened.error().message);
}

void FileSink::flush() {
  std::lock_guard lock(mutex_);
  flush_locked();
  if (fd_ >= 0) fdatasync(fd_);
}

void FileSink::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !flusher_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  std::lock_guard lock(mutex_);
  flush_locked();
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
}

}  // namespace ea
