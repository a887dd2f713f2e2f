// Prometheus text exposition format 0.0.4: what GET /metrics serves.
//
// One malformed line makes Prometheus reject the whole scrape, so the renderer never trusts its
// input: names are made valid, label sets are checked for order and duplicates, label values and
// HELP texts are escaped and made valid UTF-8 (a process name is arbitrary bytes from the kernel).
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include "metrics/metric.h"

namespace ea {

inline constexpr std::string_view kPrometheusTextContentType = "text/plain; version=0.0.4; charset=utf-8";

struct PrometheusRenderStats {
  size_t families = 0;          // families written (after merging same-named ones)
  size_t samples = 0;           // sample lines written
  size_t skipped_families = 0;  // families dropped: same rendered name as an earlier one of another kind
};

// Appends the snapshot to `out`: families by rendered name, each once with its # HELP / # TYPE,
// counters as NAME_total, histograms as cumulative NAME_bucket{le=...} (ending with +Inf),
// NAME_sum and NAME_count. Series keep their order.
PrometheusRenderStats render_prometheus_text(const MetricsSnapshot& snapshot, std::string& out);
std::string render_prometheus_text(const MetricsSnapshot& snapshot);

// A sample value as Prometheus writes it: NaN, +Inf, -Inf, integers without an exponent
// (below 1e15), anything else in the shortest form that reads back exactly.
void append_prometheus_float(std::string& out, double value);
// A label value between its quotes: \ " and newline escaped, invalid UTF-8 replaced by U+FFFD.
void append_prometheus_label_value(std::string& out, std::string_view value);

}  // namespace ea
