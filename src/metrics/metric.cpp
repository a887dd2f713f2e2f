#include "metrics/metric.h"

#include <algorithm>

namespace ea {

std::string_view to_string(MetricKind kind) {
  switch (kind) {
    case MetricKind::Counter: return "counter";
    case MetricKind::Gauge: return "gauge";
    case MetricKind::Histogram: return "histogram";
  }
  return "unknown";
}

LabelSet make_labels(std::vector<std::pair<std::string, std::string>> pairs) {
  for (auto& [name, value] : pairs) name = prometheus_name(name);
  std::stable_sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  // The last of duplicate names wins, as a later attribute overrides an earlier one.
  LabelSet labels;
  for (auto& pair : pairs) {
    if (!labels.empty() && labels.back().first == pair.first)
      labels.back().second = std::move(pair.second);
    else
      labels.push_back(std::move(pair));
  }
  return labels;
}

namespace {
bool name_char(char c, bool first, bool colon) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (colon && c == ':') return true;
  return !first && c >= '0' && c <= '9';
}
bool valid_name(std::string_view name, bool colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i)
    if (!name_char(name[i], i == 0, colon)) return false;
  return true;
}
}  // namespace

bool valid_metric_name(std::string_view name) { return valid_name(name, true); }
bool valid_label_name(std::string_view name) { return valid_name(name, false); }

std::string prometheus_name(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 1);
  if (!name.empty() && name[0] >= '0' && name[0] <= '9') out.push_back('_');
  for (char c : name) out.push_back(name_char(c, false, false) ? c : '_');
  if (out.empty()) out = "_";
  return out;
}

}  // namespace ea
