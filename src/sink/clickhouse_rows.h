// Records and metric samples as JSONEachRow rows for the `events` and `metrics` tables
// (clickhouse_schema.h). One row per line; rows never contain a raw newline.
#pragma once
#include <string>
#include <string_view>

#include "core/record.h"
#include "metrics/metric.h"

namespace ea {

// Renders one record's row. `origin_fields` is the record's origin as rendered by
// clickhouse_origin_fields(), so a batch renders each origin once.
void append_event_row(const Record& record, std::string_view data, std::string_view origin_fields, std::string& out);
// ,"host":"..","spec":"..","program":"..","channel":"..","processor":".."
std::string clickhouse_origin_fields(const RecordOrigin* origin, std::string_view host);

// Renders one series of a family as one row (histograms: cumulative bucket counts, +Inf last).
void append_metric_row(const MetricFamily& family, const MetricSeries& series, uint64_t time_ns,
                       std::string_view host, std::string& out);

}  // namespace ea
