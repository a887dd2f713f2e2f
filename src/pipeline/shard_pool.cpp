#include "pipeline/shard_pool.h"

#include <pthread.h>

#include <cstring>

#include <spdlog/spdlog.h>

namespace ea {

namespace {

constexpr int64_t kErrorLogIntervalNs = 10'000'000'000;

void log_failure(Route& route, const Processor& processor) {
  int64_t now = static_cast<int64_t>(wall_clock_ns());
  int64_t last = route.last_error_log_ns.load(std::memory_order_relaxed);
  if (now - last < kErrorLogIntervalNs) return;
  if (!route.last_error_log_ns.compare_exchange_strong(last, now)) return;
  spdlog::warn("spec '{}' channel '{}' processor {}: {} ({} failed so far)", route.origin.spec, route.origin.channel,
               route.origin.processor, processor.error(), route.counters.failed.load());
}

}  // namespace

void process_batch(const WorkBatch& batch, unsigned shard, RecordBatch& records, std::string& jsonl) {
  Route& route = *batch.route;
  Processor& processor = *route.processors[shard % route.processors.size()];
  records.clear();
  uint64_t emitted = 0, skipped = 0, failed = 0;
  uint32_t start = 0;
  for (uint32_t end : batch.ends) {
    std::span<const std::byte> input(reinterpret_cast<const std::byte*>(batch.bytes.data()) + start, end - start);
    start = end;
    RecordMeta meta;
    size_t fields_start = records.arena.size();
    switch (processor.process(input, meta, records.arena)) {
      case ProcessOutcome::Emitted: {
        Record& record = records.records.emplace_back();
        record.time_ns = batch.received_ns;
        record.origin = &route.origin;
        record.pid = meta.pid;
        record.tgid = meta.tgid;
        size_t comm_length = std::min(meta.comm.size(), sizeof(record.comm) - 1);
        std::memcpy(record.comm, meta.comm.data(), comm_length);
        record.fields_offset = static_cast<uint32_t>(fields_start);
        record.fields_length = static_cast<uint32_t>(records.arena.size() - fields_start);
        ++emitted;
        break;
      }
      case ProcessOutcome::Skipped:
        records.arena.resize(fields_start);
        ++skipped;
        break;
      case ProcessOutcome::Failed:
        records.arena.resize(fields_start);
        ++failed;
        route.counters.failed.fetch_add(1, std::memory_order_relaxed);
        log_failure(route, processor);
        break;
    }
  }
  route.counters.emitted.fetch_add(emitted, std::memory_order_relaxed);
  route.counters.skipped.fetch_add(skipped, std::memory_order_relaxed);
  if (records.records.empty() || !route.sinks) return;
  jsonl.clear();
  const std::string origin = origin_json(route.origin, host_name());
  for (const Record& record : records.records) append_json_line(record, records.fields(record), origin, jsonl);
  for (const auto& sink : *route.sinks) sink->write(records, jsonl);
}

ShardPool::ShardPool(unsigned shards) {
  if (shards == 0) shards = 1;
  for (unsigned i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
  for (unsigned i = 0; i < shards; ++i) {
    Shard& shard = *shards_[i];
    shard.thread = std::thread([this, &shard, i] {
      std::string name = "ea-shard-" + std::to_string(i);
      pthread_setname_np(pthread_self(), name.c_str());
      run(shard, i);
    });
  }
}

ShardPool::~ShardPool() { stop(); }

bool ShardPool::submit(unsigned shard_index, WorkBatch&& batch) {
  Shard& shard = *shards_[shard_index % shards_.size()];
  std::unique_lock lock(shard.mutex);
  if (shard.stopping) return false;
  if (shard.queue.size() >= kMaxQueuedBatches &&
      !shard.not_full.wait_for(lock, std::chrono::milliseconds(100),
                               [&] { return shard.queue.size() < kMaxQueuedBatches || shard.stopping; })) {
    batch.route->counters.dropped.fetch_add(batch.ends.size(), std::memory_order_relaxed);
    return false;
  }
  if (shard.stopping) return false;
  shard.queue.push_back(std::move(batch));
  lock.unlock();
  shard.not_empty.notify_one();
  return true;
}

void ShardPool::run(Shard& shard, unsigned index) {
  RecordBatch records;
  std::string jsonl;
  std::unique_lock lock(shard.mutex);
  while (true) {
    shard.not_empty.wait(lock, [&] { return !shard.queue.empty() || shard.stopping; });
    if (shard.queue.empty()) break;  // stopping and drained
    WorkBatch batch = std::move(shard.queue.front());
    shard.queue.pop_front();
    shard.busy = true;
    lock.unlock();
    shard.not_full.notify_one();
    process_batch(batch, index, records, jsonl);
    batch = {};  // release the route before reporting idle
    lock.lock();
    shard.busy = false;
    if (shard.queue.empty()) shard.idle.notify_all();
  }
}

void ShardPool::drain() {
  for (auto& shard : shards_) {
    std::unique_lock lock(shard->mutex);
    shard->idle.wait(lock, [&] { return (shard->queue.empty() && !shard->busy) || !shard->thread.joinable(); });
  }
}

void ShardPool::stop() {
  for (auto& shard : shards_) {
    {
      std::lock_guard lock(shard->mutex);
      shard->stopping = true;
    }
    shard->not_empty.notify_all();
    shard->not_full.notify_all();
  }
  for (auto& shard : shards_)
    if (shard->thread.joinable()) shard->thread.join();
}

}  // namespace ea
