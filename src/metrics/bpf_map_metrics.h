// Metrics read straight from BPF maps where a program aggregates in the kernel: each `metrics:`
// entry of an ebpf_object program names a map, and on every collection its entries are read
// (per-CPU values summed), keys decoded into labels and values into counters, gauges or
// histograms. The registry applies the cardinality cap to what comes out.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"
#include "metrics/bpf_map_btf.h"
#include "metrics/bpf_map_decoders.h"
#include "metrics/bpf_map_histogram.h"
#include "metrics/bpf_map_reader.h"
#include "metrics/metric.h"
#include "spec/spec.h"

struct bpf_object;

namespace ea {

// The map a metric reads, as the loaded object describes it.
struct MetricMapInfo {
  std::string program;  // for messages and help text
  int fd = -1;          // duplicated: the metric keeps the map alive as long as it lives
  MapShape shape;
  const struct btf* btf = nullptr;  // used while binding only
  uint32_t key_type_id = 0;
  uint32_t value_type_id = 0;
};

// One `metrics:` entry bound to its map.
class MapMetric {
 public:
  // Checks the map against the metric (type, key size = the labels' sizes, value an integer or
  // a histogram's {count, sum}, labels inferred from the key's BTF when none are given). Errors
  // start with the metric's position and say what to change.
  static Result<std::unique_ptr<MapMetric>> bind(const MapMetricSpec& spec, const MetricMapInfo& map,
                                                 std::string owner_spec);
  ~MapMetric();
  MapMetric(const MapMetric&) = delete;
  MapMetric& operator=(const MapMetric&) = delete;

  const std::string& name() const { return spec_.name; }
  // Reads the map and decodes it into a family (not thread-safe: one collection at a time).
  Result<MetricFamily> collect();
  // Decodes entries already read: what collect() does after reading.
  MetricFamily build(const MapEntries& entries);

 private:
  MapMetric(MapMetricSpec spec, const MetricMapInfo& map, std::string owner_spec);
  // Sum of the per-CPU copies of one entry's value, as unsigned or signed 64-bit.
  uint64_t sum_unsigned(std::span<const std::byte> value) const;
  int64_t sum_signed(std::span<const std::byte> value) const;
  // The same for a {count, sum} value: {count, sum}, each summed over CPUs.
  std::pair<uint64_t, uint64_t> sum_count_and_sum(std::span<const std::byte> value) const;

  struct Label {
    std::string name;  // "" = padding
    uint32_t offset = 0;
    uint32_t size = 0;
    LabelDecoderChain chain;
  };

  MapMetricSpec spec_;
  std::string owner_spec_;
  std::string help_;
  int fd_;
  MapReader reader_;
  MapValueType value_type_;
  std::vector<Label> labels_;  // decoded into series labels (the bucket label excluded)
  std::optional<Label> bucket_;
  std::optional<BucketLayout> layout_;
  MapEntries entries_;  // reused between collections
};

// Every map metric of one spec, collected together (registered with the MetricRegistry).
class BpfMapMetrics {
 public:
  // `object_of(program)` gives the loaded bpf_object of an ebpf_object program of the spec.
  using ObjectLookup = std::function<bpf_object*(std::string_view program)>;
  static Result<std::shared_ptr<BpfMapMetrics>> bind(const Spec& spec, const ObjectLookup& object_of);
  // The map a metric names in a loaded object, or an error naming the maps it has.
  static Result<MetricMapInfo> find_map(bpf_object* object, const ProgramSpec& program, const MapMetricSpec& metric);

  bool empty() const { return metrics_.empty(); }
  // Thread-safe. A map that cannot be read is logged (once until it reads again) and counted in
  // ebpf_agent_map_metric_read_errors{metric}.
  void collect(std::vector<MetricFamily>& out);

 private:
  std::string spec_name_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<MapMetric>> metrics_;
  std::vector<uint64_t> read_errors_;
  std::vector<bool> failing_;
};

}  // namespace ea
