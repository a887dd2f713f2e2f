#include "metrics/metric_json.h"

#include <charconv>
#include <cmath>

#include "core/json_escape.h"

namespace ea {

namespace {

void append_string(std::string_view text, std::string& out) {
  out += '"';
  append_json_escaped(text, out);
  out += '"';
}

void append_unsigned(uint64_t value, std::string& out) {
  char buffer[24];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, result.ptr);
}

// Shortest text that reads back as the same double; JSON has no NaN or infinities.
void append_double(double value, std::string& out) {
  if (std::isnan(value)) {
    out += "\"NaN\"";
    return;
  }
  if (std::isinf(value)) {
    out += value > 0 ? "\"+Inf\"" : "\"-Inf\"";
    return;
  }
  char buffer[32];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, result.ptr);
}

void append_histogram(const HistogramData& histogram, std::string& out) {
  out += ",\"buckets\":[";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < histogram.counts.size(); ++i) {
    cumulative += histogram.counts[i];
    if (i > 0) out += ',';
    out += "{\"le\":";
    if (i < histogram.bounds.size())
      append_double(histogram.bounds[i], out);
    else
      out += "\"+Inf\"";
    out += ",\"count\":";
    append_unsigned(cumulative, out);
    out += '}';
  }
  out += "],\"sum\":";
  append_double(histogram.sum, out);
  out += ",\"count\":";
  append_unsigned(histogram.count, out);
}

}  // namespace

void append_metric_json(const MetricFamily& family, const MetricSeries& series, uint64_t time_ns,
                        std::string_view host, std::string& out) {
  out += "{\"time\":";
  append_unsigned(time_ns, out);
  out += ",\"host\":";
  append_string(host, out);
  out += ",\"name\":";
  append_string(family.name, out);
  out += ",\"kind\":";
  append_string(to_string(family.kind), out);
  out += ",\"unit\":";
  append_string(family.unit, out);
  if (!family.spec.empty()) {
    out += ",\"spec\":";
    append_string(family.spec, out);
  }
  out += ",\"labels\":{";
  for (size_t i = 0; i < series.labels.size(); ++i) {
    if (i > 0) out += ',';
    append_string(series.labels[i].first, out);
    out += ':';
    append_string(series.labels[i].second, out);
  }
  out += '}';
  if (family.kind == MetricKind::Histogram) {
    append_histogram(series.histogram, out);
  } else {
    out += ",\"value\":";
    append_double(series.value, out);
  }
  out += '}';
}

}  // namespace ea
