// JSON-lines file output with size-based rotation (path, path.1 ... path.N). Works on tmpfs.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "sink/sink.h"

namespace ea {

struct FileSinkOptions {
  std::string path;
  std::string kind = "file";  // "tmpfs" when it is the spool-on-tmpfs output of a spec's storage
  uint64_t max_bytes = 64ull << 20;  // rotate when the file would grow past this
  unsigned keep = 5;                 // rotated files kept (path.1 newest)
  unsigned flush_interval_ms = 200;
};

class FileSink : public Sink {
 public:
  static Result<std::unique_ptr<FileSink>> open(FileSinkOptions options);
  ~FileSink() override;
  std::string name() const override { return options_.kind + ":" + options_.path; }
  void write(const RecordBatch& batch, std::string_view jsonl) override;
  void flush() override;
  void stop() override;

 private:
  explicit FileSink(FileSinkOptions options);
  Result<void> reopen();
  void flush_locked();
  void rotate_locked();
  void note_failure_locked(std::string_view what, uint64_t records);

  FileSinkOptions options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::string buffer_;
  uint64_t buffered_records_ = 0;
  int fd_ = -1;
  uint64_t file_size_ = 0;
  bool stopping_ = false;
  int64_t last_error_log_ns_ = 0;
  std::thread flusher_;
  static constexpr size_t kFlushBytes = 1 << 20;
};

}  // namespace ea
