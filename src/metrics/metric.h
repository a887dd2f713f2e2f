// The metrics model: what every producer (built-in processors, user_so plugins, BPF maps, the
// agent's own health) hands to every output (Prometheus, embedded store, Kafka, ClickHouse).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ea {

enum class MetricKind { Counter, Gauge, Histogram };
std::string_view to_string(MetricKind kind);

// Label name/value pairs, sorted by name, names unique. Names follow Prometheus rules
// ([a-zA-Z_][a-zA-Z0-9_]*); OpenTelemetry attribute names are rendered with '.' -> '_'.
using LabelSet = std::vector<std::pair<std::string, std::string>>;

// The series every metric folds new label sets into once it reaches its cardinality cap,
// named after OpenTelemetry's overflow attribute (otel.metric.overflow=true).
inline constexpr const char* kOverflowLabel = "otel_metric_overflow";

struct HistogramData {
  std::vector<double> bounds;    // bucket upper bounds, ascending; +Inf is implicit
  std::vector<uint64_t> counts;  // per bucket, not cumulative: bounds.size() + 1 entries
  double sum = 0;
  uint64_t count = 0;
};

struct MetricSeries {
  LabelSet labels;
  double value = 0;         // counters (monotonic total) and gauges
  HistogramData histogram;  // histograms
};

struct MetricFamily {
  // Prometheus base name with the unit suffix and without `_total`, which the Prometheus text
  // renderer appends to counters: "http_server_request_duration_seconds", "ebpf_agent_records".
  std::string name;
  std::string help;
  std::string unit;  // "seconds", "bytes", "" (dimensionless)
  MetricKind kind = MetricKind::Counter;
  std::string spec;  // the spec that owns it ("" = the agent): per-spec storage selection
  std::vector<MetricSeries> series;
};

struct MetricsSnapshot {
  uint64_t time_ns = 0;  // wall clock when collected
  std::vector<MetricFamily> families;

  // The family named `name` (without _total), or null.
  const MetricFamily* find(std::string_view name) const {
    for (const MetricFamily& family : families)
      if (family.name == name) return &family;
    return nullptr;
  }
};

// Sorts by name and checks the names: the canonical form producers hand over.
LabelSet make_labels(std::vector<std::pair<std::string, std::string>> pairs);
// Prometheus-valid metric/label name: letters, digits, '_' (and ':' in metric names).
bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);
// OpenTelemetry attribute / metric name as Prometheus renders it: invalid characters become '_'.
std::string prometheus_name(std::string_view name);

}  // namespace ea
