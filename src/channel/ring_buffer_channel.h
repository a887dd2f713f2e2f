// Reads a BPF ring buffer (BPF_MAP_TYPE_RINGBUF) or perf event array (BPF_MAP_TYPE_PERF_EVENT_ARRAY).
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "channel/channel.h"

struct ring_buffer;
struct perf_buffer;

namespace ea {

class RingBufferChannel : public ChannelReader {
 public:
  // `kernel_drop_counter`, when not null, is a u64 the BPF program increments for every record
  // it failed to reserve (the `<channel>_dropped` global convention); it is read, never written.
  RingBufferChannel(std::string name, int map_fd, const volatile uint64_t* kernel_drop_counter);
  ~RingBufferChannel() override;
  Result<void> start(RawRecordHandler on_record, PollDoneHandler on_poll_done) override;
  void stop() override;
  const ChannelCounters& counters() const override { return counters_; }
  std::string describe() const override;

 private:
  static int on_sample(void* context, void* data, size_t size);
  std::string name_;
  int map_fd_;
  const volatile uint64_t* kernel_drop_counter_;
  ring_buffer* ring_ = nullptr;
  RawRecordHandler on_record_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  ChannelCounters counters_;
};

class PerfBufferChannel : public ChannelReader {
 public:
  PerfBufferChannel(std::string name, int map_fd, size_t pages_per_cpu);
  ~PerfBufferChannel() override;
  Result<void> start(RawRecordHandler on_record, PollDoneHandler on_poll_done) override;
  void stop() override;
  const ChannelCounters& counters() const override { return counters_; }
  std::string describe() const override;

 private:
  static void on_sample(void* context, int cpu, void* data, uint32_t size);
  static void on_lost(void* context, int cpu, unsigned long long count);
  std::string name_;
  int map_fd_;
  size_t pages_per_cpu_;
  perf_buffer* buffer_ = nullptr;
  RawRecordHandler on_record_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  ChannelCounters counters_;
};

}  // namespace ea
