// Reads a FIFO (a `pipe` channel, e.g. bpftrace's -o output): one record per '\n'-terminated line.
#pragma once
#include <string>
#include <thread>
#include <vector>

#include "channel/channel.h"

namespace ea {

class PipeChannel : public ChannelReader {
 public:
  // Lines longer than this are dropped (counted in kernel_lost) up to their newline.
  static constexpr size_t kMaxLineBytes = 1 << 20;

  // `path` must be absolute. It is created as a FIFO (0600, missing parent directories 0700)
  // when absent; an existing path must already be a FIFO.
  PipeChannel(std::string name, std::string path);
  ~PipeChannel() override;

  // Opens the FIFO read-write, so the channel itself keeps a writer: it never sees end-of-file
  // when the writing process restarts, and a writer's open() never blocks while it runs.
  // Records are the lines without their newline; empty lines carry nothing and are not records.
  // bpftrace's {"type": "lost_events", ...} lines also add their count to kernel_lost.
  Result<void> start(RawRecordHandler on_record, PollDoneHandler on_poll_done) override;
  // Idempotent. Drains complete lines already in the FIFO, then removes the FIFO and the
  // directories if this channel created them (and they are empty).
  void stop() override;
  const ChannelCounters& counters() const override { return counters_; }
  std::string describe() const override;

 private:
  Result<void> create_or_check_fifo();
  void read_loop(PollDoneHandler on_poll_done);
  bool drain(size_t max_reads);
  void split_lines(std::string_view chunk);
  void deliver(std::string_view line);
  void note_overlong_line();
  void remove_what_we_created();

  std::string name_;
  std::string path_;
  int fifo_fd_ = -1;
  int stop_fd_ = -1;  // eventfd: wakes the reader to stop
  bool created_fifo_ = false;
  std::vector<std::string> created_dirs_;  // outermost first
  RawRecordHandler on_record_;
  std::string partial_line_;
  bool skipping_overlong_ = false;
  std::string read_buffer_;
  std::thread thread_;
  ChannelCounters counters_;
  uint64_t overlong_lines_ = 0;
  int64_t last_overlong_log_ns_ = 0;
};

}  // namespace ea
