// A channel carries raw records from the kernel (or a helper process) to the dispatcher.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "core/result.h"

namespace ea {

struct ChannelCounters {
  std::atomic<uint64_t> received{0};
  std::atomic<uint64_t> kernel_lost{0};  // samples the kernel (or helper) reported lost
};

// Called on the channel's reader thread for every record; the span is only valid during the call.
using RawRecordHandler = std::function<void(std::span<const std::byte> record)>;
// Called after each poll round that delivered records, so the dispatcher can flush its batches.
using PollDoneHandler = std::function<void()>;

class ChannelReader {
 public:
  virtual ~ChannelReader() = default;
  // Starts the reader thread. Records go to `on_record`; `on_poll_done` follows each busy poll round.
  virtual Result<void> start(RawRecordHandler on_record, PollDoneHandler on_poll_done) = 0;
  // Idempotent; drains what is already readable, then joins the thread.
  virtual void stop() = 0;
  virtual const ChannelCounters& counters() const = 0;
  virtual std::string describe() const = 0;  // "ring_buffer oom_events (map id 42)"
};

}  // namespace ea
