// Kernel-side helper for histograms read straight from a map (spec `metrics:` with
// `type: histogram, bucket_type: exp2`): the agent reads bucket key k as "values up to 2^k".
#pragma once

// A histogram map's value that counts and sums in one entry (spec `metrics:` histograms read
// `count` into the bucket of the entry's key and add `sum` to the series' sum): one map lookup
// per observation instead of a bucket key and a sum key.
struct ea_hist_value {
  __u64 count;
  __u64 sum;
};

// The entry of `key` after a lookup missed: created empty (failing harmlessly when another
// context made it first), then looked up again.
static __always_inline struct ea_hist_value *ea_hist_create(void *map, void *key) {
  struct ea_hist_value zero = {};
  bpf_map_update_elem(map, key, &zero, BPF_NOEXIST);
  return bpf_map_lookup_elem(map, key);
}

// The smallest k with value <= 2^k (0 for values 0 and 1), capped at max_bucket.
// ceil(log2(v)) = floor(log2(v - 1)) + 1, with floor(log2) by halving: no loops, no clz.
static __always_inline __u32 ea_exp2_bucket(__u64 value, __u32 max_bucket) {
  if (value <= 1) return 0;
  __u64 v = value - 1;
  __u32 k = 0;
  if (v >> 32) { v >>= 32; k += 32; }
  if (v >> 16) { v >>= 16; k += 16; }
  if (v >> 8) { v >>= 8; k += 8; }
  if (v >> 4) { v >>= 4; k += 4; }
  if (v >> 2) { v >>= 2; k += 2; }
  if (v >> 1) { k += 1; }
  k += 1;
  return k > max_bucket ? max_bucket : k;
}
