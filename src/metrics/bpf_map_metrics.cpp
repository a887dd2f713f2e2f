#include "metrics/bpf_map_metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include "metrics/bpf_map_ksyms.h"
#include "spec/suggest.h"

namespace ea {
namespace {

std::string map_type_name(uint32_t type) {
  const char* name = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(type));
  return name ? name : fmt::format("type {}", type);
}

template <class T>
T load(const std::byte* at) {
  T value;
  std::memcpy(&value, at, sizeof value);
  return value;
}

}  // namespace

MapMetric::MapMetric(MapMetricSpec spec, const MetricMapInfo& map, std::string owner_spec)
    : spec_(std::move(spec)),
      owner_spec_(std::move(owner_spec)),
      fd_(fcntl(map.fd, F_DUPFD_CLOEXEC, 0)),
      reader_(fd_, map.shape) {}

MapMetric::~MapMetric() {
  if (fd_ >= 0) close(fd_);
}

Result<std::unique_ptr<MapMetric>> MapMetric::bind(const MapMetricSpec& spec, const MetricMapInfo& map,
                                                   std::string owner_spec) {
  auto error = [&](const Error& e) {
    return std::unexpected(Error{fmt::format("{}: metric '{}': map '{}' of program '{}': {}", spec.pos.str(), spec.name,
                                             spec.map, map.program, e.message)});
  };
  const MapShape& shape = map.shape;
  if (!is_metric_map_type(shape.type))
    return error(Error{fmt::format("is a {} map; metrics are read from hash, array, lru_hash and their percpu kinds — "
                                   "aggregate into one of those",
                                   map_type_name(shape.type))});
  auto value_type = map_value_type(map.btf, map.value_type_id, shape.value_size, spec.kind);
  if (!value_type) return error(value_type.error());

  std::vector<MapMetricLabel> labels;
  if (spec.labels) {
    labels = *spec.labels;
  } else {
    auto inferred = labels_from_key_btf(map.btf, map.key_type_id, spec.kind, spec.pos);
    if (!inferred) return error(inferred.error());
    labels = std::move(*inferred);
  }
  uint64_t label_bytes = 0;
  for (const MapMetricLabel& label : labels) label_bytes += label.size;
  if (label_bytes != shape.key_size)
    return error(Error{fmt::format("the labels at {} take {} bytes and the key is {} — make the sizes add up to the "
                                   "key's (mind alignment holes: skip them with '{{padding: N}}')",
                                   spec.labels_pos.str(), label_bytes,
                                   describe_map_type(map.btf, map.key_type_id, shape.key_size))});

  std::unique_ptr<MapMetric> metric(new MapMetric(spec, map, std::move(owner_spec)));
  if (metric->fd_ < 0) return error(Error{fmt::format("duplicating its descriptor: {}", std::strerror(errno))});
  metric->value_type_ = *value_type;
  metric->help_ = spec.help.empty() ? fmt::format("Read from BPF map '{}' of program '{}'", spec.map, map.program)
                                    : spec.help;
  std::shared_ptr<const KernelSymbols> symbols;
  uint32_t offset = 0;
  for (const MapMetricLabel& label : labels) {
    Label bound{.name = label.name, .offset = offset, .size = label.size};
    offset += label.size;
    if (label.name.empty()) continue;  // padding
    auto chain = LabelDecoderChain::make(label);
    if (!chain) return error(chain.error());
    bound.chain = std::move(*chain);
    if (bound.chain.needs_kernel_symbols()) {
      if (!symbols) symbols = KernelSymbols::system();
      bound.chain.set_kernel_symbols(symbols);
    }
    metric->labels_.push_back(std::move(bound));
  }
  if (spec.kind == MetricKind::Histogram) {
    if (metric->labels_.empty()) return error(Error{"a histogram's key needs a bucket label"});
    metric->bucket_ = std::move(metric->labels_.back());
    metric->labels_.pop_back();
    metric->layout_.emplace(spec);
  }
  return metric;
}

uint64_t MapMetric::sum_unsigned(std::span<const std::byte> value) const {
  const MapShape& shape = reader_.shape();
  const size_t stride = shape.value_stride();
  uint64_t sum = 0;
  for (size_t at = 0; at + value_type_.size <= value.size(); at += stride) {
    const std::byte* p = value.data() + at;
    switch (value_type_.size) {
      case 1: sum += load<uint8_t>(p); break;
      case 2: sum += load<uint16_t>(p); break;
      case 4: sum += load<uint32_t>(p); break;
      default: sum += load<uint64_t>(p); break;
    }
    if (!shape.per_cpu()) break;
  }
  return sum;
}

int64_t MapMetric::sum_signed(std::span<const std::byte> value) const {
  const MapShape& shape = reader_.shape();
  const size_t stride = shape.value_stride();
  uint64_t sum = 0;  // wraps like the kernel's own arithmetic instead of overflowing
  for (size_t at = 0; at + value_type_.size <= value.size(); at += stride) {
    const std::byte* p = value.data() + at;
    switch (value_type_.size) {
      case 1: sum += static_cast<uint64_t>(static_cast<int64_t>(load<int8_t>(p))); break;
      case 2: sum += static_cast<uint64_t>(static_cast<int64_t>(load<int16_t>(p))); break;
      case 4: sum += static_cast<uint64_t>(static_cast<int64_t>(load<int32_t>(p))); break;
      default: sum += load<uint64_t>(p); break;
    }
    if (!shape.per_cpu()) break;
  }
  return static_cast<int64_t>(sum);
}

std::pair<uint64_t, uint64_t> MapMetric::sum_count_and_sum(std::span<const std::byte> value) const {
  const MapShape& shape = reader_.shape();
  const size_t stride = shape.value_stride();
  uint64_t count = 0, sum = 0;  // wrapping, like the kernel's own counters
  for (size_t at = 0; at + 2 * sizeof(uint64_t) <= value.size(); at += stride) {
    count += load<uint64_t>(value.data() + at);
    sum += load<uint64_t>(value.data() + at + sizeof(uint64_t));
    if (!shape.per_cpu()) break;
  }
  return {count, sum};
}

MetricFamily MapMetric::build(const MapEntries& entries) {
  const MapShape& shape = reader_.shape();
  MetricFamily family{spec_.name, help_, spec_.unit, spec_.kind, owner_spec_, {}};
  std::unordered_map<std::string, size_t> index;  // label values joined by '\0' -> series
  std::vector<std::pair<std::string, std::string>> pairs;
  std::string joined;
  const bool histogram = spec_.kind == MetricKind::Histogram;
  const size_t count = std::min(entries.count, std::min(entries.keys.size() / std::max<size_t>(shape.key_size, 1),
                                                        entries.values.size() / std::max<size_t>(shape.value_bytes(), 1)));
  for (size_t i = 0; i < count; ++i) {
    std::span<const std::byte> key = entries.key(shape, i);
    std::span<const std::byte> value = entries.value(shape, i);
    uint64_t raw = 0, observed_sum = 0;  // observed_sum: a {count, sum} value's sum
    if (value_type_.count_and_sum)
      std::tie(raw, observed_sum) = sum_count_and_sum(value);
    else
      raw = value_type_.is_signed ? static_cast<uint64_t>(sum_signed(value)) : sum_unsigned(value);
    if (shape.array() && raw == 0 && observed_sum == 0) continue;  // an array entry nothing wrote to
    pairs.clear();
    joined.clear();
    bool keep = true;
    for (Label& label : labels_) {
      auto text = label.chain.decode(key.subspan(label.offset, label.size));
      if (!text) {
        keep = false;
        break;
      }
      joined += *text;
      joined += '\0';
      pairs.emplace_back(label.name, std::move(*text));
    }
    if (!keep) continue;
    auto [it, inserted] = index.try_emplace(joined, family.series.size());
    if (inserted) {
      MetricSeries series{.labels = make_labels(pairs)};
      if (histogram) series.histogram = layout_->empty();
      family.series.push_back(std::move(series));
    }
    MetricSeries& series = family.series[it->second];
    if (histogram) {
      int64_t bucket = bucket_->chain.integer(key.subspan(bucket_->offset, bucket_->size));
      if (value_type_.count_and_sum)
        layout_->add_count_and_sum(series.histogram, bucket, raw, observed_sum);
      else
        layout_->add(series.histogram, bucket, raw);
    } else {
      double number = value_type_.is_signed ? static_cast<double>(static_cast<int64_t>(raw)) : static_cast<double>(raw);
      series.value += number * spec_.value_scale;
    }
  }
  // Sorted, so that the cardinality cap keeps the same series from one collection to the next.
  std::ranges::sort(family.series, {}, &MetricSeries::labels);
  return family;
}

Result<MetricFamily> MapMetric::collect() {
  try {
    if (auto ok = reader_.read(entries_); !ok) return std::unexpected(ok.error());
    return build(entries_);
  } catch (const std::exception& error) {  // e.g. memory for a huge map: skip this collection, keep the agent
    return failf("reading the map: {}", error.what());
  }
}

Result<MetricMapInfo> BpfMapMetrics::find_map(bpf_object* object, const ProgramSpec& program,
                                              const MapMetricSpec& metric) {
  bpf_map* map = bpf_object__find_map_by_name(object, metric.map.c_str());
  if (!map || bpf_map__is_internal(map)) {
    std::set<std::string> names;
    bpf_map* each = nullptr;
    bpf_object__for_each_map(each, object) {
      if (!bpf_map__is_internal(each)) names.insert(bpf_map__name(each));
    }
    std::vector<std::string_view> candidates(names.begin(), names.end());
    return failf("{}: metric '{}': program '{}' has no map '{}'{}", metric.pos.str(), metric.name, program.name,
                 metric.map,
                 candidates.empty() ? std::string(" (the object has no maps)") : use_one_of(metric.map, candidates));
  }
  MetricMapInfo info{.program = program.name, .fd = bpf_map__fd(map)};
  info.shape.type = bpf_map__type(map);
  info.shape.key_size = bpf_map__key_size(map);
  info.shape.value_size = bpf_map__value_size(map);
  info.shape.max_entries = bpf_map__max_entries(map);
  if (info.shape.per_cpu()) {
    int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) return failf("{}: metric '{}': cannot count the possible CPUs: {}", metric.pos.str(), metric.name,
                                std::strerror(-cpus));
    info.shape.cpus = static_cast<uint32_t>(cpus);
  }
  info.btf = bpf_object__btf(object);
  info.key_type_id = bpf_map__btf_key_type_id(map);
  info.value_type_id = bpf_map__btf_value_type_id(map);
  if (info.fd < 0)
    return failf("{}: metric '{}': map '{}' is not loaded yet", metric.pos.str(), metric.name, metric.map);
  return info;
}

Result<std::shared_ptr<BpfMapMetrics>> BpfMapMetrics::bind(const Spec& spec, const ObjectLookup& object_of) {
  auto metrics = std::make_shared<BpfMapMetrics>();
  metrics->spec_name_ = spec.name;
  std::map<std::string, std::string, std::less<>> owners;  // metric name -> program
  for (const ProgramSpec& program : spec.programs) {
    if (program.metrics.empty()) continue;
    bpf_object* object = object_of(program.name);
    if (!object)
      return failf("{}: program '{}': its metrics need the loaded BPF object, which is missing", program.pos.str(),
                   program.name);
    for (const MapMetricSpec& metric : program.metrics) {
      auto [owner, inserted] = owners.emplace(metric.name, program.name);
      if (!inserted)
        return failf("{}: metric '{}' is also declared by program '{}' — give each metric its own name",
                     metric.pos.str(), metric.name, owner->second);
      auto map = find_map(object, program, metric);
      if (!map) return std::unexpected(map.error());
      auto bound = MapMetric::bind(metric, *map, spec.name);
      if (!bound) return std::unexpected(bound.error());
      metrics->metrics_.push_back(std::move(*bound));
    }
  }
  metrics->read_errors_.assign(metrics->metrics_.size(), 0);
  metrics->failing_.assign(metrics->metrics_.size(), false);
  return metrics;
}

void BpfMapMetrics::collect(std::vector<MetricFamily>& out) {
  std::lock_guard lock(mutex_);
  MetricFamily errors{"ebpf_agent_map_metric_read_errors", "Collections in which a BPF map metric could not be read",
                      "", MetricKind::Counter, spec_name_, {}};
  for (size_t i = 0; i < metrics_.size(); ++i) {
    auto family = metrics_[i]->collect();
    if (family) {
      if (failing_[i]) spdlog::info("spec '{}': metric '{}' reads again", spec_name_, metrics_[i]->name());
      failing_[i] = false;
      out.push_back(std::move(*family));
      continue;
    }
    ++read_errors_[i];
    if (!failing_[i])
      spdlog::warn("spec '{}': metric '{}': {}", spec_name_, metrics_[i]->name(), family.error().message);
    failing_[i] = true;
  }
  for (size_t i = 0; i < metrics_.size(); ++i)
    if (read_errors_[i] > 0)
      errors.series.push_back({{{"metric", metrics_[i]->name()}}, static_cast<double>(read_errors_[i]), {}});
  if (!errors.series.empty()) out.push_back(std::move(errors));
}

}  // namespace ea
