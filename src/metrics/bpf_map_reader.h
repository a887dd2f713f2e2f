// Reads every entry of a BPF map for map metrics: batched lookups where the kernel has them for
// the map type, else key by key. Bounded by the map's max_entries however the map changes while
// it is read.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/result.h"

namespace ea {

struct MapShape {
  uint32_t type = 0;  // enum bpf_map_type
  uint32_t key_size = 0;
  uint32_t value_size = 0;
  uint32_t max_entries = 0;
  uint32_t cpus = 1;  // per-CPU maps: possible CPUs; 1 otherwise

  bool per_cpu() const;
  bool array() const;  // every key exists; untouched entries hold zeros
  // Bytes of one entry's value as lookups return it (per-CPU: one 8-byte aligned slot per CPU).
  size_t value_stride() const;
  size_t value_bytes() const { return value_stride() * cpus; }
};

// Hash, array, LRU hash and their per-CPU kinds.
bool is_metric_map_type(uint32_t type);

// The entries of one read: `count` keys of key_size bytes and values of value_bytes() each.
struct MapEntries {
  std::vector<std::byte> keys;
  std::vector<std::byte> values;
  size_t count = 0;
  std::span<const std::byte> key(const MapShape& shape, size_t i) const {
    return {keys.data() + i * shape.key_size, shape.key_size};
  }
  std::span<const std::byte> value(const MapShape& shape, size_t i) const {
    return {values.data() + i * shape.value_bytes(), shape.value_bytes()};
  }
};

class MapReader {
 public:
  MapReader(int fd, MapShape shape) : fd_(fd), shape_(shape) {}
  const MapShape& shape() const { return shape_; }
  // Replaces `out` with the map's current entries.
  Result<void> read(MapEntries& out);
  // The fallback for kernels or map types without batched lookups (public for tests).
  Result<void> read_by_key(MapEntries& out);
  // False once the kernel refused batched lookups for this map.
  bool batching() const { return !batch_unsupported_; }

 private:
  // false when this read must go key by key (batching not available for the map, or a hash
  // bucket larger than one batch).
  Result<bool> read_batched(MapEntries& out);

  int fd_;
  MapShape shape_;
  bool batch_unsupported_ = false;
};

}  // namespace ea
