// Series identity in the store: a label set in its canonical text form, as Prometheus writes it
// ({name="value",...}, names sorted, values with \\ \" and \n escaped). The text is the key of
// the series table and what `ebpf-agent query` prints; any byte sequence survives the round trip.
#pragma once
#include <string>
#include <string_view>

#include "core/result.h"
#include "metrics/metric.h"

namespace ea::tsdb {

// `labels` must be sorted by name (LabelSet's canonical form).
std::string canonical_labels(const LabelSet& labels);
void append_canonical_labels(const LabelSet& labels, std::string& out);
Result<LabelSet> parse_canonical_labels(std::string_view text);

// A histogram bucket bound as the `le` label value: "+Inf", integers without exponent below
// 1e15, else the shortest text that reads back exactly ("0.005", "2.5e+20").
std::string format_bound(double bound);
// A sample value for people: like format_bound, with NaN, +Inf and -Inf.
std::string format_value(double value);

}  // namespace ea::tsdb
