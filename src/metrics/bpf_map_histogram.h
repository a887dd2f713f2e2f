// Histograms read from a map whose key ends in a bucket index (ebpf_exporter's convention):
// how a bucket key becomes a bucket bound, and where each key's count goes.
//   exp2:   key k counts values up to 2^k * multiplier, k in [bucket_min, bucket_max]
//   linear: key k counts values up to k * multiplier
//   fixed:  key k (one of bucket_keys) counts values up to k * multiplier
// Keys below the first bucket fold into it; a key between two fixed keys into the next one up;
// keys above the last bucket count in +Inf, except the key just past it (bucket_max + 1, or
// the last fixed key + 1), which holds the sum of the observed values in key units. A map whose
// value is {count, sum} carries the sum in every entry instead, and has no sum key.
#pragma once
#include <cstdint>
#include <vector>

#include "metrics/metric.h"
#include "spec/spec.h"

namespace ea {

class BucketLayout {
 public:
  explicit BucketLayout(const MapMetricSpec& metric);

  const std::vector<double>& bounds() const { return bounds_; }
  HistogramData empty() const;
  // Adds what the map holds under bucket key `key` (a count, or the sum for the sum key).
  void add(HistogramData& histogram, int64_t key, uint64_t value) const;
  // Adds a {count, sum} entry of bucket key `key`: its count to that key's bucket (the key past
  // the last bucket is +Inf like any key above), its sum (key units) to the histogram's sum.
  void add_count_and_sum(HistogramData& histogram, int64_t key, uint64_t count, uint64_t sum) const;

 private:
  void add_to_bucket(HistogramData& histogram, int64_t key, uint64_t count) const;

  BucketType type_;
  double multiplier_;
  std::vector<uint64_t> keys_;  // bucket key of each bound
  std::vector<double> bounds_;
  uint64_t sum_key_;
};

}  // namespace ea
