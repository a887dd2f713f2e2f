#include "sink/clickhouse_rows.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "sink/clickhouse_json.h"

namespace ea {

namespace {

// `time` is a DateTime (UInt32 seconds): clamp so a wild clock cannot make the row unparsable.
void append_time_columns(uint64_t time_ns, std::string& out) {
  uint64_t seconds = std::min<uint64_t>(time_ns / 1'000'000'000ull, std::numeric_limits<uint32_t>::max());
  out += "{\"time\":";
  append_clickhouse_uint(seconds, out);
  out += ",\"time_ns\":";
  append_clickhouse_uint(time_ns, out);
}

void append_string_column(std::string_view name, std::string_view value, std::string& out) {
  out += ",\"";
  out += name;
  out += "\":";
  append_clickhouse_string(value, out);
}

std::string_view kind_name(MetricKind kind) {
  switch (kind) {
    case MetricKind::Counter: return "counter";
    case MetricKind::Gauge: return "gauge";
    case MetricKind::Histogram: return "histogram";
  }
  return "gauge";
}

}  // namespace

std::string clickhouse_origin_fields(const RecordOrigin* origin, std::string_view host) {
  static const RecordOrigin kUnknown;
  if (origin == nullptr) origin = &kUnknown;
  std::string out;
  append_string_column("host", host, out);
  append_string_column("spec", origin->spec, out);
  append_string_column("program", origin->program, out);
  append_string_column("channel", origin->channel, out);
  append_string_column("processor", origin->processor, out);
  return out;
}

void append_event_row(const Record& record, std::string_view data, std::string_view origin_fields, std::string& out) {
  append_time_columns(record.time_ns, out);
  out += origin_fields;
  out += ",\"pid\":";
  append_clickhouse_int(record.pid, out);
  out += ",\"tgid\":";
  append_clickhouse_int(record.tgid, out);
  append_string_column("comm", std::string_view(record.comm, strnlen(record.comm, sizeof(record.comm))), out);
  // The processor's fields, kept as JSON text: queried with visitParam*/JSONExtract*.
  append_string_column("data", data.empty() ? std::string_view("{}") : data, out);
  out += "}\n";
}

void append_metric_row(const MetricFamily& family, const MetricSeries& series, uint64_t time_ns,
                       std::string_view host, std::string& out) {
  append_time_columns(time_ns, out);
  append_string_column("host", host, out);
  append_string_column("spec", family.spec, out);
  append_string_column("name", family.name, out);
  out += ",\"kind\":\"";
  out += kind_name(family.kind);
  out += '"';
  append_string_column("unit", family.unit, out);
  out += ",\"labels.key\":[";
  for (size_t i = 0; i < series.labels.size(); ++i) {
    if (i) out += ',';
    append_clickhouse_string(series.labels[i].first, out);
  }
  out += "],\"labels.value\":[";
  for (size_t i = 0; i < series.labels.size(); ++i) {
    if (i) out += ',';
    append_clickhouse_string(series.labels[i].second, out);
  }
  out += "],\"value\":";
  if (family.kind == MetricKind::Histogram) {
    const HistogramData& histogram = series.histogram;
    append_clickhouse_double(0, out);
    // Prometheus' `le` semantics: each bucket counts every observation <= its bound, +Inf last.
    // A producer's counts array that does not match its bounds is read as zero-padded/truncated.
    out += ",\"buckets.le\":[";
    for (double bound : histogram.bounds) {
      append_clickhouse_double(bound, out);
      out += ',';
    }
    append_clickhouse_double(std::numeric_limits<double>::infinity(), out);
    out += "],\"buckets.count\":[";
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= histogram.bounds.size(); ++i) {
      if (i < histogram.counts.size()) cumulative += histogram.counts[i];
      if (i) out += ',';
      append_clickhouse_uint(cumulative, out);
    }
    out += "],\"sum\":";
    append_clickhouse_double(histogram.sum, out);
    out += ",\"count\":";
    append_clickhouse_uint(histogram.count, out);
  } else {
    append_clickhouse_double(series.value, out);
    out += ",\"buckets.le\":[],\"buckets.count\":[],\"sum\":0,\"count\":0";
  }
  out += "}\n";
}

}  // namespace ea
