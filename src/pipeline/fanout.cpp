#include "pipeline/fanout.h"

#include <cstring>

namespace ea {

namespace {

uint64_t read_key(const KeyField& key, std::span<const std::byte> record) {
  if (key.offset + key.size > record.size()) return 0;
  uint64_t value = 0;
  std::memcpy(&value, record.data() + key.offset, key.size);  // little-endian host: low bytes
  return value;
}

// Spreads sequential ids (pids) evenly over shards.
uint64_t mix(uint64_t value) {
  value ^= value >> 33;
  value *= 0xff51afd7ed558ccdull;
  value ^= value >> 33;
  return value;
}

}  // namespace

ChannelFanout::ChannelFanout(ShardPool& pool, std::vector<std::shared_ptr<Route>> routes)
    : pool_(pool), routes_(std::move(routes)), pending_(routes_.size()), round_robin_(routes_.size(), 0) {
  for (size_t r = 0; r < routes_.size(); ++r) {
    pending_[r].resize(pool_.size());
    for (auto& batch : pending_[r]) batch.route = routes_[r];
  }
}

unsigned ChannelFanout::pick_shard(Route& route, size_t route_index, std::span<const std::byte> record) {
  unsigned shards = pool_.size();
  if (shards == 1) return 0;
  if (route.strategy == DispatchStrategy::RoundRobin) return static_cast<unsigned>(round_robin_[route_index]++ % shards);
  // Hash: records with the same key keep their order on one shard. Without a known key every
  // record of the route goes to one shard, which keeps order too.
  uint64_t key = route.key ? read_key(*route.key, record) : route_index;
  return static_cast<unsigned>(mix(key) % shards);
}

void ChannelFanout::on_record(std::span<const std::byte> record) {
  for (size_t r = 0; r < routes_.size(); ++r) {
    Route& route = *routes_[r];
    route.counters.received.fetch_add(1, std::memory_order_relaxed);
    unsigned shard = pick_shard(route, r, record);
    WorkBatch& batch = pending_[r][shard];
    batch.bytes.append(reinterpret_cast<const char*>(record.data()), record.size());
    batch.ends.push_back(static_cast<uint32_t>(batch.bytes.size()));
    if (batch.ends.size() >= kBatchRecords || batch.bytes.size() >= kBatchBytes) submit(r, shard);
  }
}

void ChannelFanout::submit(size_t route_index, unsigned shard) {
  WorkBatch& pending = pending_[route_index][shard];
  if (pending.ends.empty()) return;
  WorkBatch batch;
  batch.route = pending.route;
  batch.received_ns = wall_clock_ns();
  batch.bytes.reserve(pending.bytes.size());
  std::swap(batch.bytes, pending.bytes);
  std::swap(batch.ends, pending.ends);
  pending.bytes.clear();
  pending.ends.clear();
  pool_.submit(shard, std::move(batch));
}

void ChannelFanout::flush() {
  for (size_t r = 0; r < routes_.size(); ++r)
    for (unsigned s = 0; s < pool_.size(); ++s) submit(r, s);
}

}  // namespace ea
