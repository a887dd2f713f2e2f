// Spreads one channel's records over its routes and the worker shards, in batches.
#pragma once
#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "pipeline/route.h"
#include "pipeline/shard_pool.h"

namespace ea {

// Used only from the channel's reader thread: no locking on the hot path.
class ChannelFanout {
 public:
  ChannelFanout(ShardPool& pool, std::vector<std::shared_ptr<Route>> routes);
  void on_record(std::span<const std::byte> record);
  void flush();  // hands every pending batch to its shard (called after each poll round)
  const std::vector<std::shared_ptr<Route>>& routes() const { return routes_; }

 private:
  unsigned pick_shard(Route& route, size_t route_index, std::span<const std::byte> record);
  void submit(size_t route_index, unsigned shard);

  ShardPool& pool_;
  std::vector<std::shared_ptr<Route>> routes_;
  std::vector<std::vector<WorkBatch>> pending_;  // [route][shard]
  std::vector<uint64_t> round_robin_;
  static constexpr size_t kBatchRecords = 512;
  static constexpr size_t kBatchBytes = 256 * 1024;
};

}  // namespace ea
