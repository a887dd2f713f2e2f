#include "metrics/bpf_map_histogram.h"

#include <algorithm>
#include <cmath>

namespace ea {

BucketLayout::BucketLayout(const MapMetricSpec& metric)
    : type_(metric.bucket_type), multiplier_(metric.bucket_multiplier) {
  if (type_ == BucketType::Fixed) {
    keys_ = metric.bucket_keys;
  } else {
    for (uint64_t key = metric.bucket_min; key <= metric.bucket_max; ++key) keys_.push_back(key);
  }
  for (uint64_t key : keys_) {
    double bound = type_ == BucketType::Exp2 ? std::exp2(static_cast<double>(key)) : static_cast<double>(key);
    bounds_.push_back(bound * multiplier_);
  }
  sum_key_ = keys_.empty() ? 0 : keys_.back() + 1;
}

HistogramData BucketLayout::empty() const {
  HistogramData histogram;
  histogram.bounds = bounds_;
  histogram.counts.assign(bounds_.size() + 1, 0);
  return histogram;
}

void BucketLayout::add(HistogramData& histogram, int64_t key, uint64_t value) const {
  if (histogram.counts.size() != bounds_.size() + 1) return;
  if (key >= 0 && static_cast<uint64_t>(key) == sum_key_ && !keys_.empty()) {
    histogram.sum += static_cast<double>(value) * multiplier_;
    return;
  }
  add_to_bucket(histogram, key, value);
}

void BucketLayout::add_count_and_sum(HistogramData& histogram, int64_t key, uint64_t count, uint64_t sum) const {
  if (histogram.counts.size() != bounds_.size() + 1) return;
  histogram.sum += static_cast<double>(sum) * multiplier_;
  add_to_bucket(histogram, key, count);
}

void BucketLayout::add_to_bucket(HistogramData& histogram, int64_t key, uint64_t count) const {
  size_t bucket = 0;
  if (key > 0) {
    auto it = std::ranges::lower_bound(keys_, static_cast<uint64_t>(key));
    bucket = static_cast<size_t>(it - keys_.begin());  // keys_.size() = +Inf
  }
  histogram.counts[bucket] += count;
  histogram.count += count;
}

}  // namespace ea
