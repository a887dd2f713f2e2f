// One metric series at one instant as a self-contained JSON object, for outputs that ship
// metrics as messages or rows (Kafka, ClickHouse, files):
//   {"time":NS,"host":"h","name":"n","kind":"counter","unit":"bytes","spec":"s","labels":{...},"value":1}
//   histograms: ...,"buckets":[{"le":0.1,"count":3},...,{"le":"+Inf","count":9}],"sum":1.5,"count":9}
// Bucket counts are cumulative (Prometheus `le` semantics), the last bucket is "+Inf" and equals
// `count`. "spec" is present only for metrics a spec owns. Non-finite numbers are written as the
// strings "NaN", "+Inf", "-Inf" since JSON has no such numbers.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "metrics/metric.h"

namespace ea {

// Appends the object without a trailing newline.
void append_metric_json(const MetricFamily& family, const MetricSeries& series, uint64_t time_ns,
                        std::string_view host, std::string& out);

}  // namespace ea
