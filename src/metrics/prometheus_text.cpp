#include "metrics/prometheus_text.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace ea {
namespace {

constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

bool continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of the valid UTF-8 sequence starting at p (RFC 3629: no overlongs, no surrogates,
// nothing past U+10FFFF), or 0 when it is not one. p[0] >= 0x80.
size_t utf8_sequence_length(const unsigned char* p, size_t available) {
  unsigned char c = p[0];
  if (c >= 0xC2 && c <= 0xDF) return available >= 2 && continuation(p[1]) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (available < 3 || !continuation(p[1]) || !continuation(p[2])) return 0;
    if (c == 0xE0 && p[1] < 0xA0) return 0;  // overlong
    if (c == 0xED && p[1] > 0x9F) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (available < 4 || !continuation(p[1]) || !continuation(p[2]) || !continuation(p[3])) return 0;
    if (c == 0xF0 && p[1] < 0x90) return 0;  // overlong
    if (c == 0xF4 && p[1] > 0x8F) return 0;  // past U+10FFFF
    return 4;
  }
  return 0;
}

// Copies text, escaping backslash and newline (and '"' in label values) and replacing each byte
// that does not start a valid UTF-8 sequence. Plain runs are appended in one piece.
void append_escaped(std::string& out, std::string_view text, bool escape_quotes) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  size_t size = text.size();
  size_t run_start = 0;
  size_t i = 0;
  auto flush_run = [&] { out.append(text.data() + run_start, i - run_start); };
  while (i < size) {
    unsigned char c = bytes[i];
    if (c < 0x80) {
      if (c == '\\' || c == '\n' || (escape_quotes && c == '"')) {
        flush_run();
        out.append(c == '\\' ? "\\\\" : c == '\n' ? "\\n" : "\\\"");
        run_start = ++i;
      } else {
        ++i;
      }
      continue;
    }
    if (size_t length = utf8_sequence_length(bytes + i, size - i); length > 0) {
      i += length;
      continue;
    }
    flush_run();
    out.append(kReplacementCharacter);
    run_start = ++i;
  }
  flush_run();
}

template <class T>
void append_number(std::string& out, T value) {
  char buffer[32];
  auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, result.ptr);
}

// Metric and label names as Prometheus accepts them: invalid characters become '_', a leading
// digit gets a '_' before it (the same rule as prometheus_name, keeping ':' in metric names).
void append_valid_name(std::string& out, std::string_view name, bool metric) {
  if ((metric && valid_metric_name(name)) || (!metric && valid_label_name(name))) {
    out.append(name);
    return;
  }
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) out.push_back('_');
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              (metric && c == ':');
    out.push_back(ok ? c : '_');
  }
}

std::string rendered_family_name(const MetricFamily& family) {
  std::string name;
  name.reserve(family.name.size() + 6);
  append_valid_name(name, family.name, true);
  if (family.kind == MetricKind::Counter && !name.ends_with("_total")) name.append("_total");
  return name;
}

std::string_view type_name(MetricKind kind) {
  switch (kind) {
    case MetricKind::Counter: return "counter";
    case MetricKind::Gauge: return "gauge";
    case MetricKind::Histogram: return "histogram";
  }
  return "untyped";
}

// A histogram series' own "le" label would clash with the bucket label; Prometheus renames
// clashing target labels to exported_*, and so do we.
constexpr std::string_view kBucketLabel = "le";
constexpr std::string_view kRenamedBucketLabel = "exported_le";

bool canonical_labels(const LabelSet& labels, bool histogram) {
  for (size_t i = 0; i < labels.size(); ++i) {
    const std::string& name = labels[i].first;
    if (!valid_label_name(name)) return false;
    if (i > 0 && !(labels[i - 1].first < name)) return false;
    if (histogram && name == kBucketLabel) return false;
  }
  return true;
}

// The rare path for label sets a producer handed over unsorted, duplicated or with bad names:
// same outcome as make_labels (valid names, sorted, the last of duplicates wins).
LabelSet canonicalized(const LabelSet& labels, bool histogram) {
  LabelSet fixed;
  fixed.reserve(labels.size());
  for (const auto& [name, value] : labels) {
    std::string valid;
    if (histogram && name == kBucketLabel)
      valid = kRenamedBucketLabel;
    else
      append_valid_name(valid, name, false);
    fixed.emplace_back(std::move(valid), value);
  }
  std::stable_sort(fixed.begin(), fixed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  LabelSet unique;
  for (auto& pair : fixed) {
    if (!unique.empty() && unique.back().first == pair.first)
      unique.back().second = std::move(pair.second);
    else
      unique.push_back(std::move(pair));
  }
  return unique;
}

// `{a="x",b="y"` without the closing brace, so bucket lines can add their le label.
void render_label_prefix(std::string& prefix, const LabelSet& labels) {
  prefix.clear();
  for (const auto& [name, value] : labels) {
    prefix.push_back(prefix.empty() ? '{' : ',');
    prefix.append(name);
    prefix.append("=\"");
    append_escaped(prefix, value, true);
    prefix.push_back('"');
  }
}

// Reused buffers: one render allocates per family at most, never per sample.
struct RenderState {
  std::string label_prefix;
  std::vector<double> le_bounds;      // the bounds le_text was made for
  std::string le_text;                // each usable bound as `le="..."`, back to back
  std::vector<uint32_t> le_ends;      // end offset in le_text of each bound's text (0 width = skipped)
  PrometheusRenderStats stats;
};

void begin_sample(std::string& out, std::string_view name, std::string_view suffix) {
  out.append(name);
  out.append(suffix);
}

void plain_sample(std::string& out, RenderState& state, std::string_view name, std::string_view suffix,
                  double value) {
  begin_sample(out, name, suffix);
  if (!state.label_prefix.empty()) {
    out.append(state.label_prefix);
    out.push_back('}');
  }
  out.push_back(' ');
  append_prometheus_float(out, value);
  out.push_back('\n');
  ++state.stats.samples;
}

void count_sample(std::string& out, RenderState& state, std::string_view name, std::string_view suffix,
                  std::string_view le, uint64_t value) {
  begin_sample(out, name, suffix);
  if (!le.empty()) {
    out.append(state.label_prefix.empty() ? "{" : state.label_prefix);
    if (!state.label_prefix.empty()) out.push_back(',');
    out.append(le);
    out.push_back('}');
  } else if (!state.label_prefix.empty()) {
    out.append(state.label_prefix);
    out.push_back('}');
  }
  out.push_back(' ');
  append_number(out, value);
  out.push_back('\n');
  ++state.stats.samples;
}

// Bounds that are NaN, infinite or not above the previous one cannot be a bucket: they get no
// line, and their observations show up in the next bucket that is written.
void prepare_bucket_labels(RenderState& state, const std::vector<double>& bounds) {
  if (!state.le_ends.empty() && state.le_bounds == bounds) return;
  state.le_bounds = bounds;
  state.le_text.clear();
  state.le_ends.clear();
  double previous = -std::numeric_limits<double>::infinity();
  for (double bound : bounds) {
    if (std::isfinite(bound) && bound > previous) {
      state.le_text.append("le=\"");
      append_prometheus_float(state.le_text, bound);
      state.le_text.push_back('"');
      previous = bound;
    }
    state.le_ends.push_back(static_cast<uint32_t>(state.le_text.size()));
  }
}

void render_histogram(std::string& out, RenderState& state, std::string_view name, const HistogramData& data) {
  prepare_bucket_labels(state, data.bounds);
  uint64_t cumulative = 0;
  uint32_t start = 0;
  for (size_t b = 0; b < data.bounds.size(); ++b) {
    if (b < data.counts.size()) cumulative += data.counts[b];
    uint32_t end = state.le_ends[b];
    if (end == start) continue;
    count_sample(out, state, name, "_bucket", std::string_view(state.le_text).substr(start, end - start),
                 cumulative);
    start = end;
  }
  for (size_t b = data.bounds.size(); b < data.counts.size(); ++b) cumulative += data.counts[b];
  // Prometheus expects _count to equal the +Inf bucket; both are the observations counted in
  // buckets (a producer without bucket counts gives its count alone).
  if (data.counts.empty()) cumulative = data.count;
  count_sample(out, state, name, "_bucket", "le=\"+Inf\"", cumulative);
  plain_sample(out, state, name, "_sum", data.sum);
  count_sample(out, state, name, "_count", {}, cumulative);
}

void render_series(std::string& out, RenderState& state, std::string_view name, MetricKind kind,
                   const MetricSeries& series) {
  bool histogram = kind == MetricKind::Histogram;
  if (canonical_labels(series.labels, histogram))
    render_label_prefix(state.label_prefix, series.labels);
  else
    render_label_prefix(state.label_prefix, canonicalized(series.labels, histogram));
  if (histogram)
    render_histogram(out, state, name, series.histogram);
  else
    plain_sample(out, state, name, {}, series.value);
}

struct NamedFamily {
  std::string name;  // as rendered: valid, counters with _total
  const MetricFamily* family;
};

}  // namespace

void append_prometheus_float(std::string& out, double value) {
  if (std::isnan(value)) {
    out.append("NaN");
  } else if (std::isinf(value)) {
    out.append(value > 0 ? "+Inf" : "-Inf");
  } else if (value == std::trunc(value) && std::fabs(value) < 1e15) {
    append_number(out, static_cast<int64_t>(value));
  } else {
    append_number(out, value);
  }
}

void append_prometheus_label_value(std::string& out, std::string_view value) { append_escaped(out, value, true); }

PrometheusRenderStats render_prometheus_text(const MetricsSnapshot& snapshot, std::string& out) {
  std::vector<NamedFamily> families;
  families.reserve(snapshot.families.size());
  for (const MetricFamily& family : snapshot.families) families.push_back({rendered_family_name(family), &family});
  std::stable_sort(families.begin(), families.end(),
                   [](const NamedFamily& a, const NamedFamily& b) { return a.name < b.name; });

  RenderState state;
  for (size_t first = 0; first < families.size();) {
    size_t last = first;
    while (last < families.size() && families[last].name == families[first].name) ++last;
    // One family per name: the first kind seen wins, same-kind ones are merged into it.
    const MetricFamily& lead = *families[first].family;
    const std::string& name = families[first].name;
    size_t series_count = 0;
    std::string_view help;
    for (size_t i = first; i < last; ++i) {
      const MetricFamily& family = *families[i].family;
      if (family.kind != lead.kind) {
        ++state.stats.skipped_families;
        continue;
      }
      series_count += family.series.size();
      if (help.empty()) help = family.help;
    }
    if (series_count > 0) {
      ++state.stats.families;
      if (!help.empty()) {
        out.append("# HELP ").append(name).push_back(' ');
        append_escaped(out, help, false);
        out.push_back('\n');
      }
      out.append("# TYPE ").append(name).push_back(' ');
      out.append(type_name(lead.kind)).push_back('\n');
      // Histogram samples are NAME_bucket etc.: the base name without a suffix.
      for (size_t i = first; i < last; ++i) {
        const MetricFamily& family = *families[i].family;
        if (family.kind != lead.kind) continue;
        for (const MetricSeries& series : family.series) render_series(out, state, name, lead.kind, series);
      }
    }
    first = last;
  }
  return state.stats;
}

std::string render_prometheus_text(const MetricsSnapshot& snapshot) {
  std::string out;
  render_prometheus_text(snapshot, out);
  return out;
}

}  // namespace ea
