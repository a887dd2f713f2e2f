// Series selectors as Prometheus writes them, for `ebpf-agent query`:
//   http_server_request_duration_seconds_bucket{route="/api",status=~"5..",method!="GET",le!~"\+Inf"}
// A metric name and/or matchers; operators = != =~ !~; values in "double", 'single' or `back`
// quotes; regular expressions are anchored (they must match the whole value). A label a series
// lacks has the empty value, so x="" selects series without x and x!="y" selects them too.
#pragma once
#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "metrics/metric.h"

namespace ea::tsdb {

struct LabelMatcher {
  enum class Op { Equal, NotEqual, Regex, NotRegex };
  std::string name;
  Op op = Op::Equal;
  std::string value;
  std::shared_ptr<const std::regex> regex;  // Regex and NotRegex
  bool matches(std::string_view label_value) const;
};

struct Selector {
  std::vector<LabelMatcher> matchers;  // the metric name is a matcher on __name__
  // The label matchers only (not __name__) against a label set.
  bool matches_labels(const LabelSet& labels) const;
  // The __name__ matchers against a stored series' name as Prometheus shows it (NAME_total,
  // NAME_bucket, ...); an equality matcher naming the metric family selects all of its series.
  bool matches_name(std::string_view series_name, std::string_view family_name) const;
  // A literal metric name (NAME{...} or {__name__="NAME"}), or empty.
  std::string literal_name() const;
};

// Errors say what was expected, at which column, and show the text with a caret under it.
Result<Selector> parse_selector(std::string_view text);

}  // namespace ea::tsdb
