#include "metrics/bpf_map_reader.h"

#include <linux/bpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <bpf/bpf.h>

namespace ea {
namespace {

constexpr size_t kBatchEntries = 4096;
constexpr int kEnotsupp = 524;  // the kernel's ENOTSUPP, seen by user space as a raw number

size_t round_up8(size_t n) { return (n + 7) & ~size_t{7}; }

}  // namespace

bool MapShape::per_cpu() const {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

bool MapShape::array() const { return type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY; }

size_t MapShape::value_stride() const { return per_cpu() ? round_up8(value_size) : value_size; }

bool is_metric_map_type(uint32_t type) {
  switch (type) {
    case BPF_MAP_TYPE_HASH:
    case BPF_MAP_TYPE_ARRAY:
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_ARRAY:
    case BPF_MAP_TYPE_LRU_HASH:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH: return true;
    default: return false;
  }
}

Result<void> MapReader::read(MapEntries& out) {
  out.count = 0;
  if (shape_.key_size == 0 || shape_.value_size == 0) return {};
  if (!batch_unsupported_) {
    auto batched = read_batched(out);
    if (!batched) return std::unexpected(batched.error());
    if (*batched) return {};
  }
  return read_by_key(out);
}

Result<bool> MapReader::read_batched(MapEntries& out) {
  const size_t key_size = shape_.key_size, value_bytes = shape_.value_bytes();
  // Batch positions: a bucket index for hash maps, a key for arrays.
  const size_t token_size = std::max<size_t>(key_size, 8);
  std::vector<std::byte> in_token(token_size), out_token(token_size);
  const size_t limit = shape_.max_entries;
  bool first = true;
  while (out.count < limit) {
    __u32 count = static_cast<__u32>(std::min(kBatchEntries, limit - out.count));
    out.keys.resize((out.count + count) * key_size);
    out.values.resize((out.count + count) * value_bytes);
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int rc = bpf_map_lookup_batch(fd_, first ? nullptr : in_token.data(), out_token.data(),
                                  out.keys.data() + out.count * key_size, out.values.data() + out.count * value_bytes,
                                  &count, &opts);
    int error = rc < 0 ? -rc : 0;
    if (error && error != ENOENT) {
      // Not for this map type or kernel, or a hash bucket larger than one batch: read key by key.
      if (error == EINVAL || error == ENOTSUP || error == kEnotsupp || error == ENOSPC) {
        out.count = 0;
        batch_unsupported_ = error != ENOSPC;  // ENOSPC: batching works, just not for this read
        return false;
      }
      return failf("reading BPF map entries in batches: {}", std::strerror(error));
    }
    out.count += std::min<size_t>(count, limit - out.count);
    if (error == ENOENT) break;
    std::swap(in_token, out_token);
    first = false;
  }
  out.keys.resize(out.count * key_size);
  out.values.resize(out.count * value_bytes);
  return true;
}

Result<void> MapReader::read_by_key(MapEntries& out) {
  out.count = 0;
  const size_t key_size = shape_.key_size, value_bytes = shape_.value_bytes();
  std::vector<std::byte> previous(key_size), next(key_size);
  out.keys.clear();
  out.values.clear();
  // A key deleted while we walk restarts the walk at the first key: bound the steps.
  const size_t max_steps = 2 * static_cast<size_t>(shape_.max_entries) + 16;
  bool first = true;
  for (size_t step = 0; step < max_steps && out.count < shape_.max_entries; ++step) {
    int rc = bpf_map_get_next_key(fd_, first ? nullptr : previous.data(), next.data());
    if (rc == -ENOENT) break;
    if (rc < 0) return failf("walking BPF map keys: {}", std::strerror(-rc));
    first = false;
    out.keys.resize((out.count + 1) * key_size);
    out.values.resize((out.count + 1) * value_bytes);
    std::byte* value = out.values.data() + out.count * value_bytes;
    rc = bpf_map_lookup_elem(fd_, next.data(), value);
    if (rc == 0) {
      std::memcpy(out.keys.data() + out.count * key_size, next.data(), key_size);
      ++out.count;
    } else if (rc != -ENOENT) {
      return failf("looking up a BPF map entry: {}", std::strerror(-rc));
    }
    std::swap(previous, next);
  }
  out.keys.resize(out.count * key_size);
  out.values.resize(out.count * value_bytes);
  return {};
}

}  // namespace ea
