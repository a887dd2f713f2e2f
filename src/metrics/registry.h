// Live metrics: instruments updated on hot paths (lock-free after the first use of a label set)
// plus collectors that produce families on demand (BPF maps, agent health). Thread-safe.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "metrics/metric.h"

namespace ea {

struct MetricDesc {
  std::string name;  // see MetricFamily::name
  std::string help;
  std::string unit;
  MetricKind kind = MetricKind::Counter;
  std::string spec;                      // owner; "" = the agent
  std::vector<std::string> label_names;  // label values are given in this order
  std::vector<double> bounds;            // histograms: bucket upper bounds, ascending
  size_t max_series = 0;                 // cardinality cap; 0 = the registry's default
};

// One label set's current value. Updates are atomic; readers see each field atomically.
class SeriesCell {
 public:
  explicit SeriesCell(size_t buckets);
  void add(double delta);    // counters (delta >= 0) and gauges
  void set(double value);    // gauges
  void observe(double value, std::span<const double> bounds);  // histograms
  void add_histogram(const HistogramData& data);               // merge pre-bucketed counts
  void read(MetricKind kind, MetricSeries& out) const;

 private:
  std::atomic<double> value_{0};
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  size_t bucket_count_ = 0;
};

class Metric {
 public:
  explicit Metric(MetricDesc desc, size_t max_series);
  const MetricDesc& desc() const { return desc_; }
  // The cell for these label values (in desc().label_names order). Past the cardinality cap a
  // new label set gets the overflow cell, and the fold is counted. The reference stays valid
  // for the metric's lifetime, so hot paths may cache it.
  SeriesCell& with(std::span<const std::string_view> values);
  SeriesCell& with(std::initializer_list<std::string_view> values) {
    return with(std::span<const std::string_view>(values.begin(), values.size()));
  }
  void observe(std::initializer_list<std::string_view> values, double value) {
    with(values).observe(value, desc_.bounds);
  }
  uint64_t folded() const { return folded_.load(std::memory_order_relaxed); }
  MetricFamily snapshot() const;

 private:
  MetricDesc desc_;
  size_t max_series_;
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, std::unique_ptr<SeriesCell>> cells_;  // key: values joined by \0
  std::vector<std::pair<LabelSet, SeriesCell*>> order_;                  // creation order
  std::unique_ptr<SeriesCell> overflow_;
  std::atomic<uint64_t> folded_{0};
};

// Folds the series of `family` past `cap` into one overflow series (summing counters and
// histograms; gauges keep the last). Returns how many series were folded.
size_t fold_over_cap(MetricFamily& family, size_t cap);

// Merges families of one name and kind (sorted by name) into one. When they come from different
// specs, each series gets a `spec` label so that equal label sets stay distinct series.
std::vector<MetricFamily> merge_families(std::vector<MetricFamily> families);

class MetricRegistry {
 public:
  explicit MetricRegistry(size_t default_max_series = 2000);

  // Get-or-create, per spec: asking again with the same spec and name returns the same metric
  // when kind, labels and bounds agree, and an error naming the difference otherwise. Two specs
  // declaring one name get two metrics (deleting one spec leaves the other's).
  Result<std::shared_ptr<Metric>> metric(MetricDesc desc);
  // Produces families on collect() (already-aggregated data: BPF maps, health, process stats).
  using Collector = std::function<void(std::vector<MetricFamily>&)>;
  uint64_t add_collector(std::string spec, Collector collector);
  void remove_collector(uint64_t id);
  // Forgets every metric and collector a spec owns (spec deleted or replaced).
  void remove_spec(std::string_view spec);

  // Everything, families sorted by name, plus the fold accounting:
  // ebpf_agent_metric_overflow_updates_total{metric}: instrument updates folded into overflow;
  // ebpf_agent_metric_overflow_series{metric}: collector series folded in this collection.
  MetricsSnapshot collect() const;
  // The same before families of one name are merged (to select by spec first, then merge).
  MetricsSnapshot collect_unmerged() const;
  size_t default_max_series() const { return default_max_series_; }

 private:
  size_t default_max_series_;
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<Metric>> metrics_;  // by (spec, name)
  std::map<uint64_t, std::pair<std::string, Collector>> collectors_;
  uint64_t next_collector_id_ = 1;
};

}  // namespace ea
