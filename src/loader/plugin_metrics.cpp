#include "loader/plugin_metrics.h"

#include <cerrno>
#include <cstring>
#include <string_view>

namespace ea {

namespace {

constexpr uint32_t kMaxLabels = 32;
constexpr uint32_t kMaxBounds = 512;
constexpr size_t kMaxText = 1024;

Metric* as_metric(ea_metric* handle) { return reinterpret_cast<Metric*>(handle); }

void set_error(char* err, uint32_t err_len, std::string_view why) {
  if (!err || err_len == 0) return;
  size_t n = std::min<size_t>(why.size(), err_len - 1);
  memcpy(err, why.data(), n);
  err[n] = '\0';
}

// Bounded strlen: plugin strings are untrusted.
bool text(const char* value, std::string& out) {
  if (!value) return false;
  size_t n = strnlen(value, kMaxText + 1);
  if (n > kMaxText) return false;
  out.assign(value, n);
  return true;
}

SeriesCell* cell(ea_metric* handle, const char* const* values, uint32_t count, MetricKind kind) {
  Metric* metric = as_metric(handle);
  if (!metric || metric->desc().kind != kind || count != metric->desc().label_names.size()) return nullptr;
  if (count > 0 && !values) return nullptr;
  std::string_view views[kMaxLabels];
  for (uint32_t i = 0; i < count; ++i) {
    if (!values[i]) return nullptr;
    views[i] = std::string_view(values[i], strnlen(values[i], kMaxText));
  }
  return &metric->with(std::span<const std::string_view>(views, count));
}

int counter_add(ea_metric* handle, const char* const* values, uint32_t count, double delta) {
  if (!(delta >= 0)) return -EINVAL;
  SeriesCell* c = cell(handle, values, count, MetricKind::Counter);
  if (!c) return -EINVAL;
  c->add(delta);
  return 0;
}

int gauge_set(ea_metric* handle, const char* const* values, uint32_t count, double value) {
  SeriesCell* c = cell(handle, values, count, MetricKind::Gauge);
  if (!c) return -EINVAL;
  c->set(value);
  return 0;
}

int histogram_observe(ea_metric* handle, const char* const* values, uint32_t count, double value) {
  SeriesCell* c = cell(handle, values, count, MetricKind::Histogram);
  if (!c) return -EINVAL;
  c->observe(value, as_metric(handle)->desc().bounds);
  return 0;
}

}  // namespace

PluginMetrics::PluginMetrics(MetricRegistry* registry, std::string spec)
    : registry_(registry), spec_(std::move(spec)) {
  api_ = ea_metrics_api{.size = sizeof(ea_metrics_api),
                        .host = this,
                        .declare = &PluginMetrics::declare,
                        .counter_add = counter_add,
                        .gauge_set = gauge_set,
                        .histogram_observe = histogram_observe};
}

ea_metric* PluginMetrics::declare(void* host, const ea_metric_desc* desc, char* err, uint32_t err_len) {
  auto* self = static_cast<PluginMetrics*>(host);
  if (!self || !desc) {
    set_error(err, err_len, "declare: NULL host or description");
    return nullptr;
  }
  if (!self->registry_) {
    set_error(err, err_len, "declare: this agent context collects no metrics");
    return nullptr;
  }
  MetricDesc d;
  d.spec = self->spec_;
  if (!text(desc->name, d.name)) {
    set_error(err, err_len, "declare: name is NULL or longer than 1024 bytes");
    return nullptr;
  }
  if (desc->help) text(desc->help, d.help);
  if (desc->unit) text(desc->unit, d.unit);
  switch (desc->kind) {
    case EA_METRIC_COUNTER: d.kind = MetricKind::Counter; break;
    case EA_METRIC_GAUGE: d.kind = MetricKind::Gauge; break;
    case EA_METRIC_HISTOGRAM: d.kind = MetricKind::Histogram; break;
    default:
      set_error(err, err_len, "declare: kind must be EA_METRIC_COUNTER, EA_METRIC_GAUGE or EA_METRIC_HISTOGRAM");
      return nullptr;
  }
  if (desc->label_count > kMaxLabels || (desc->label_count > 0 && !desc->label_names)) {
    set_error(err, err_len, "declare: at most 32 labels, and label_names must not be NULL");
    return nullptr;
  }
  for (uint32_t i = 0; i < desc->label_count; ++i) {
    std::string label;
    if (!text(desc->label_names[i], label)) {
      set_error(err, err_len, "declare: a label name is NULL or too long");
      return nullptr;
    }
    d.label_names.push_back(std::move(label));
  }
  if (desc->bound_count > kMaxBounds || (desc->bound_count > 0 && !desc->bounds)) {
    set_error(err, err_len, "declare: at most 512 bucket bounds, and bounds must not be NULL");
    return nullptr;
  }
  d.bounds.assign(desc->bounds, desc->bounds + desc->bound_count);
  auto metric = self->registry_->metric(std::move(d));
  if (!metric) {
    set_error(err, err_len, metric.error().message);
    return nullptr;
  }
  std::lock_guard lock(self->mutex_);
  self->declared_.push_back(*metric);
  return reinterpret_cast<ea_metric*>(metric->get());
}

}  // namespace ea
