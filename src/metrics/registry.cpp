#include "metrics/registry.h"

#include "core/record.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace ea {

SeriesCell::SeriesCell(size_t buckets) : bucket_count_(buckets) {
  if (buckets > 0) {
    buckets_ = std::make_unique<std::atomic<uint64_t>[]>(buckets);
    for (size_t i = 0; i < buckets; ++i) buckets_[i].store(0, std::memory_order_relaxed);
  }
}

void SeriesCell::add(double delta) { value_.fetch_add(delta, std::memory_order_relaxed); }
void SeriesCell::set(double value) { value_.store(value, std::memory_order_relaxed); }

void SeriesCell::observe(double value, std::span<const double> bounds) {
  if (bucket_count_ == 0) return;
  size_t bucket = std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin();
  buckets_[std::min(bucket, bucket_count_ - 1)].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

void SeriesCell::add_histogram(const HistogramData& data) {
  size_t n = std::min(bucket_count_, data.counts.size());
  for (size_t i = 0; i < n; ++i) buckets_[i].fetch_add(data.counts[i], std::memory_order_relaxed);
  sum_.fetch_add(data.sum, std::memory_order_relaxed);
  count_.fetch_add(data.count, std::memory_order_relaxed);
}

void SeriesCell::read(MetricKind kind, MetricSeries& out) const {
  if (kind != MetricKind::Histogram) {
    out.value = value_.load(std::memory_order_relaxed);
    return;
  }
  out.histogram.counts.resize(bucket_count_);
  for (size_t i = 0; i < bucket_count_; ++i) out.histogram.counts[i] = buckets_[i].load(std::memory_order_relaxed);
  out.histogram.sum = sum_.load(std::memory_order_relaxed);
  out.histogram.count = count_.load(std::memory_order_relaxed);
}

Metric::Metric(MetricDesc desc, size_t max_series) : desc_(std::move(desc)), max_series_(max_series) {
  size_t buckets = desc_.kind == MetricKind::Histogram ? desc_.bounds.size() + 1 : 0;
  overflow_ = std::make_unique<SeriesCell>(buckets);
}

SeriesCell& Metric::with(std::span<const std::string_view> values) {
  std::string key;
  for (std::string_view value : values) {
    key.append(value);
    key.push_back('\0');
  }
  {
    std::shared_lock lock(mutex_);
    if (auto it = cells_.find(key); it != cells_.end()) return *it->second;
  }
  std::unique_lock lock(mutex_);
  if (auto it = cells_.find(key); it != cells_.end()) return *it->second;
  if (cells_.size() >= max_series_ || values.size() != desc_.label_names.size()) {
    folded_.fetch_add(1, std::memory_order_relaxed);
    return *overflow_;
  }
  size_t buckets = desc_.kind == MetricKind::Histogram ? desc_.bounds.size() + 1 : 0;
  auto cell = std::make_unique<SeriesCell>(buckets);
  std::vector<std::pair<std::string, std::string>> pairs;
  for (size_t i = 0; i < values.size(); ++i) pairs.emplace_back(desc_.label_names[i], std::string(values[i]));
  order_.emplace_back(make_labels(std::move(pairs)), cell.get());
  return *cells_.emplace(std::move(key), std::move(cell)).first->second;
}

MetricFamily Metric::snapshot() const {
  MetricFamily family{desc_.name, desc_.help, desc_.unit, desc_.kind, desc_.spec, {}};
  std::shared_lock lock(mutex_);
  family.series.reserve(order_.size() + 1);
  for (const auto& [labels, cell] : order_) {
    MetricSeries& series = family.series.emplace_back();
    series.labels = labels;
    cell->read(desc_.kind, series);
    if (desc_.kind == MetricKind::Histogram) series.histogram.bounds = desc_.bounds;
  }
  if (folded() > 0) {
    MetricSeries& series = family.series.emplace_back();
    series.labels = {{kOverflowLabel, "true"}};
    overflow_->read(desc_.kind, series);
    if (desc_.kind == MetricKind::Histogram) series.histogram.bounds = desc_.bounds;
  }
  return family;
}

size_t fold_over_cap(MetricFamily& family, size_t cap) {
  if (family.series.size() <= cap) return 0;
  MetricSeries overflow;
  overflow.labels = {{kOverflowLabel, "true"}};
  size_t folded = 0;
  for (size_t i = cap; i < family.series.size(); ++i, ++folded) {
    const MetricSeries& series = family.series[i];
    if (family.kind == MetricKind::Gauge) {
      overflow.value = series.value;
    } else if (family.kind == MetricKind::Counter) {
      overflow.value += series.value;
    } else {
      HistogramData& into = overflow.histogram;
      if (into.counts.empty()) {
        into = series.histogram;
        continue;
      }
      for (size_t b = 0; b < into.counts.size() && b < series.histogram.counts.size(); ++b)
        into.counts[b] += series.histogram.counts[b];
      into.sum += series.histogram.sum;
      into.count += series.histogram.count;
    }
  }
  family.series.resize(cap);
  family.series.push_back(std::move(overflow));
  return folded;
}

namespace {

// Labels of the fold accounting series: the metric, and the spec that owns it when one does.
LabelSet fold_labels(const std::string& metric, const std::string& spec) {
  if (spec.empty()) return {{"metric", metric}};
  return {{"metric", metric}, {"spec", spec}};
}

}  // namespace

MetricRegistry::MetricRegistry(size_t default_max_series) : default_max_series_(default_max_series) {}

Result<std::shared_ptr<Metric>> MetricRegistry::metric(MetricDesc desc) {
  if (!valid_metric_name(desc.name))
    return failf("metric name '{}' is not valid: use letters, digits and '_' (e.g. http_requests)", desc.name);
  for (const std::string& label : desc.label_names)
    if (!valid_label_name(label) || label.starts_with("__"))
      return failf("metric '{}': label name '{}' is not valid: use letters, digits and '_', not starting with '__'",
                   desc.name, label);
  if (desc.kind == MetricKind::Histogram) {
    if (desc.bounds.empty()) return failf("histogram '{}' needs at least one bucket bound", desc.name);
    if (!std::is_sorted(desc.bounds.begin(), desc.bounds.end()) ||
        std::adjacent_find(desc.bounds.begin(), desc.bounds.end()) != desc.bounds.end())
      return failf("histogram '{}': bucket bounds must be strictly ascending", desc.name);
  }
  std::lock_guard lock(mutex_);
  if (auto it = metrics_.find({desc.spec, desc.name}); it != metrics_.end()) {
    const MetricDesc& known = it->second->desc();
    if (known.kind != desc.kind || known.label_names != desc.label_names || known.bounds != desc.bounds)
      return failf("metric '{}' is already registered as a {} with labels [{}]; asked again as a {} with labels [{}]",
                   desc.name, to_string(known.kind), fmt::join(known.label_names, ", "), to_string(desc.kind),
                   fmt::join(desc.label_names, ", "));
    return it->second;
  }
  size_t cap = desc.max_series ? desc.max_series : default_max_series_;
  auto metric = std::make_shared<Metric>(std::move(desc), cap);
  metrics_.emplace(std::make_pair(metric->desc().spec, metric->desc().name), metric);
  return metric;
}

uint64_t MetricRegistry::add_collector(std::string spec, Collector collector) {
  std::lock_guard lock(mutex_);
  uint64_t id = next_collector_id_++;
  collectors_.emplace(id, std::make_pair(std::move(spec), std::move(collector)));
  return id;
}

void MetricRegistry::remove_collector(uint64_t id) {
  std::lock_guard lock(mutex_);
  collectors_.erase(id);
}

void MetricRegistry::remove_spec(std::string_view spec) {
  std::lock_guard lock(mutex_);
  std::erase_if(metrics_, [&](const auto& entry) { return entry.second->desc().spec == spec; });
  std::erase_if(collectors_, [&](const auto& entry) { return entry.second.first == spec; });
}

MetricsSnapshot MetricRegistry::collect_unmerged() const {
  std::vector<std::shared_ptr<Metric>> metrics;
  std::vector<std::pair<std::string, Collector>> collectors;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, metric] : metrics_) metrics.push_back(metric);
    for (const auto& [id, collector] : collectors_) collectors.push_back(collector);
  }
  MetricsSnapshot snapshot;
  MetricFamily updates{"ebpf_agent_metric_overflow_updates", "Updates folded into a metric's overflow series (label cardinality cap reached)", "", MetricKind::Counter, "", {}};
  MetricFamily series{"ebpf_agent_metric_overflow_series", "Series folded into a metric's overflow series in this collection (label cardinality cap reached)", "", MetricKind::Gauge, "", {}};
  for (const auto& metric : metrics) {
    snapshot.families.push_back(metric->snapshot());
    if (metric->folded() > 0)
      updates.series.push_back({fold_labels(metric->desc().name, metric->desc().spec), static_cast<double>(metric->folded()), {}});
  }
  for (const auto& [spec, collector] : collectors) {
    std::vector<MetricFamily> produced;
    collector(produced);
    for (MetricFamily& family : produced) {
      if (family.spec.empty()) family.spec = spec;
      if (size_t folded = fold_over_cap(family, default_max_series_); folded > 0)
        series.series.push_back({fold_labels(family.name, family.spec), static_cast<double>(folded), {}});
      snapshot.families.push_back(std::move(family));
    }
  }
  if (!updates.series.empty()) snapshot.families.push_back(std::move(updates));
  if (!series.series.empty()) snapshot.families.push_back(std::move(series));
  std::stable_sort(snapshot.families.begin(), snapshot.families.end(),
                   [](const MetricFamily& a, const MetricFamily& b) { return a.name < b.name; });
  snapshot.time_ns = wall_clock_ns();
  return snapshot;
}

MetricsSnapshot MetricRegistry::collect() const {
  MetricsSnapshot snapshot = collect_unmerged();
  snapshot.families = merge_families(std::move(snapshot.families));
  return snapshot;
}

namespace {

void label_with_spec(MetricFamily& family) {
  if (family.spec.empty()) return;
  for (MetricSeries& series : family.series) {
    auto at = std::lower_bound(series.labels.begin(), series.labels.end(), std::string("spec"),
                               [](const auto& label, const std::string& name) { return label.first < name; });
    if (at == series.labels.end() || at->first != "spec") series.labels.insert(at, {"spec", family.spec});
  }
}

}  // namespace

std::vector<MetricFamily> merge_families(std::vector<MetricFamily> families) {
  std::vector<MetricFamily> merged;
  for (size_t i = 0; i < families.size();) {
    size_t end = i + 1;
    bool several_specs = false;
    while (end < families.size() && families[end].name == families[i].name && families[end].kind == families[i].kind) {
      several_specs |= families[end].spec != families[i].spec;
      ++end;
    }
    MetricFamily into = std::move(families[i]);
    if (several_specs) label_with_spec(into);
    for (size_t j = i + 1; j < end; ++j) {
      if (several_specs) label_with_spec(families[j]);
      into.series.insert(into.series.end(), std::make_move_iterator(families[j].series.begin()),
                         std::make_move_iterator(families[j].series.end()));
    }
    if (several_specs) into.spec.clear();
    merged.push_back(std::move(into));
    i = end;
  }
  return merged;
}

}  // namespace ea
