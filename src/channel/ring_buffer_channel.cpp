#include "channel/ring_buffer_channel.h"

#include <pthread.h>

#include <cerrno>
#include <cstring>
#include <functional>

#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

namespace ea {

namespace {
constexpr int kPollTimeoutMs = 100;

// The reader thread of both channel kinds: poll until stopped, then consume what arrived before
// the stop. `poll` and `consume` return libbpf's record count or a negative errno.
void run_reader(std::string_view kind, const std::string& channel, const std::atomic<bool>& stopping,
                const std::function<int(int)>& poll, const std::function<int()>& consume,
                const PollDoneHandler& on_poll_done, const std::function<void()>& after_poll) {
  std::string thread_name = ("ea-ch-" + channel).substr(0, 15);
  pthread_setname_np(pthread_self(), thread_name.c_str());
  while (!stopping.load(std::memory_order_relaxed)) {
    int n = poll(kPollTimeoutMs);
    // Producers that batch (BPF_RB_NO_WAKEUP) leave records without waking us: a quiet poll
    // still collects them, so nothing waits longer than one timeout.
    if (n == 0) n = consume();
    if (n < 0 && n != -EINTR) {
      spdlog::error("{} channel '{}': poll failed: {}", kind, channel, strerror(-n));
      break;
    }
    if (n > 0) on_poll_done();
    after_poll();
  }
  if (consume() > 0) on_poll_done();
}

}  // namespace

RingBufferChannel::RingBufferChannel(std::string name, int map_fd, const volatile uint64_t* kernel_drop_counter)
    : name_(std::move(name)), map_fd_(map_fd), kernel_drop_counter_(kernel_drop_counter) {}

RingBufferChannel::~RingBufferChannel() { stop(); }

int RingBufferChannel::on_sample(void* context, void* data, size_t size) {
  auto* self = static_cast<RingBufferChannel*>(context);
  self->counters_.received.fetch_add(1, std::memory_order_relaxed);
  self->on_record_(std::span<const std::byte>(static_cast<const std::byte*>(data), size));
  return 0;
}

Result<void> RingBufferChannel::start(RawRecordHandler on_record, PollDoneHandler on_poll_done) {
  on_record_ = std::move(on_record);
  ring_ = ring_buffer__new(map_fd_, &RingBufferChannel::on_sample, this, nullptr);
  if (!ring_) return failf("ring_buffer channel '{}': cannot open the ring buffer: {}", name_, strerror(errno));
  thread_ = std::thread([this, on_poll_done = std::move(on_poll_done)] {
    run_reader(
        "ring_buffer", name_, stopping_, [this](int timeout) { return ring_buffer__poll(ring_, timeout); },
        [this] { return ring_buffer__consume(ring_); }, on_poll_done,
        [this] {
          if (kernel_drop_counter_) counters_.kernel_lost.store(*kernel_drop_counter_, std::memory_order_relaxed);
        });
  });
  return {};
}

void RingBufferChannel::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  if (ring_) {
    ring_buffer__free(ring_);
    ring_ = nullptr;
  }
}

std::string RingBufferChannel::describe() const { return "ring_buffer " + name_; }

PerfBufferChannel::PerfBufferChannel(std::string name, int map_fd, size_t pages_per_cpu)
    : name_(std::move(name)), map_fd_(map_fd), pages_per_cpu_(pages_per_cpu) {}

PerfBufferChannel::~PerfBufferChannel() { stop(); }

void PerfBufferChannel::on_sample(void* context, int, void* data, uint32_t size) {
  auto* self = static_cast<PerfBufferChannel*>(context);
  self->counters_.received.fetch_add(1, std::memory_order_relaxed);
  self->on_record_(std::span<const std::byte>(static_cast<const std::byte*>(data), size));
}

void PerfBufferChannel::on_lost(void* context, int, unsigned long long count) {
  static_cast<PerfBufferChannel*>(context)->counters_.kernel_lost.fetch_add(count, std::memory_order_relaxed);
}

Result<void> PerfBufferChannel::start(RawRecordHandler on_record, PollDoneHandler on_poll_done) {
  on_record_ = std::move(on_record);
  buffer_ = perf_buffer__new(map_fd_, pages_per_cpu_, &PerfBufferChannel::on_sample, &PerfBufferChannel::on_lost,
                             this, nullptr);
  if (!buffer_) return failf("perf_buffer channel '{}': cannot open the perf buffers: {}", name_, strerror(errno));
  thread_ = std::thread([this, on_poll_done = std::move(on_poll_done)] {
    // perf_buffer__consume returns 0 on success rather than a count: flush after it regardless.
    run_reader(
        "perf_buffer", name_, stopping_, [this](int timeout) { return perf_buffer__poll(buffer_, timeout); },
        [this] { return perf_buffer__consume(buffer_) >= 0 ? 1 : 0; }, on_poll_done, [] {});
  });
  return {};
}

void PerfBufferChannel::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  if (buffer_) {
    perf_buffer__free(buffer_);
    buffer_ = nullptr;
  }
}

std::string PerfBufferChannel::describe() const { return "perf_buffer " + name_; }

}  // namespace ea
