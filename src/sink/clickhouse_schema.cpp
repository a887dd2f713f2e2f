#include "sink/clickhouse_schema.h"

#include <fmt/format.h>

namespace ea {

Result<void> check_clickhouse_identifier(std::string_view name, std::string_view what) {
  auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  bool valid = !name.empty() && name.size() <= 64 && letter(name[0]);
  for (char c : name) valid = valid && (letter(c) || (c >= '0' && c <= '9'));
  if (!valid)
    return failf("clickhouse {} '{}' is not a plain identifier: use letters, digits and '_' (not first), "
                 "at most 64 characters",
                 what, name);
  return {};
}

std::vector<std::string> clickhouse_schema_statements(std::string_view database) {
  // Day partitions: retention drops whole days cheaply (ALTER TABLE ... DROP PARTITION), and the
  // partition key's min/max index prunes time-range queries. Sort keys put the column every
  // query filters on first (spec for events, metric name for metrics), then time.
  return {
      fmt::format("CREATE DATABASE IF NOT EXISTS `{}`", database),
      fmt::format("CREATE TABLE IF NOT EXISTS `{}`.`{}` ("
                  "time DateTime, "
                  "time_ns UInt64, "
                  "host String, "
                  "spec String, "
                  "program String, "
                  "channel String, "
                  "processor String, "
                  "pid Int64, "
                  "tgid Int64, "
                  "comm String, "
                  "data String"
                  ") ENGINE = MergeTree PARTITION BY toYYYYMMDD(time) ORDER BY (spec, time)",
                  database, kClickHouseEventsTable),
      fmt::format("CREATE TABLE IF NOT EXISTS `{}`.`{}` ("
                  "time DateTime, "
                  "time_ns UInt64, "
                  "host String, "
                  "spec String, "
                  "name String, "
                  "kind Enum8('counter' = 1, 'gauge' = 2, 'histogram' = 3), "
                  "unit String, "
                  "labels Nested(key String, value String), "
                  "value Float64, "
                  "buckets Nested(le Float64, count UInt64), "
                  "sum Float64, "
                  "count UInt64"
                  ") ENGINE = MergeTree PARTITION BY toYYYYMMDD(time) ORDER BY (name, time)",
                  database, kClickHouseMetricsTable),
  };
}

std::string clickhouse_insert_statement(std::string_view database, std::string_view table) {
  return fmt::format("INSERT INTO `{}`.`{}` FORMAT JSONEachRow", database, table);
}

}  // namespace ea
