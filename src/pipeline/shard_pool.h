// Worker shards: each runs processors for the batches queued to it, in order, then feeds the sinks.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/route.h"

namespace ea {

// Raw records of one route bound for one shard: concatenated bytes plus each record's end offset.
struct WorkBatch {
  std::shared_ptr<Route> route;  // keeps the route (and its processors) alive while queued
  uint64_t received_ns = 0;
  std::string bytes;
  std::vector<uint32_t> ends;
};

class ShardPool {
 public:
  explicit ShardPool(unsigned shards);
  ~ShardPool();
  ShardPool(const ShardPool&) = delete;
  ShardPool& operator=(const ShardPool&) = delete;

  unsigned size() const { return static_cast<unsigned>(shards_.size()); }
  // Queues a batch; waits up to 100 ms when the shard is full (back-pressure to the channel),
  // then drops the batch and counts it. Returns false when dropped.
  bool submit(unsigned shard, WorkBatch&& batch);
  // Returns once every batch queued before the call has been processed.
  void drain();
  void stop();  // idempotent: processes what is queued, then joins the workers

 private:
  struct Shard {
    std::mutex mutex;
    std::condition_variable not_empty;
    std::condition_variable not_full;
    std::condition_variable idle;
    std::deque<WorkBatch> queue;
    bool busy = false;
    bool stopping = false;
    std::thread thread;
  };
  void run(Shard& shard, unsigned index);
  std::vector<std::unique_ptr<Shard>> shards_;
  static constexpr size_t kMaxQueuedBatches = 256;
};

// Runs a batch through its route's processor for `shard` and writes the records to the sinks.
void process_batch(const WorkBatch& batch, unsigned shard, RecordBatch& records, std::string& jsonl);

}  // namespace ea
