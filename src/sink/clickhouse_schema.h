// The tables the ClickHouse output writes, created on first use. The SQL stays within what
// ClickHouse 18.16 (Debian 12's clickhouse-server) accepts: no DateTime64, no LowCardinality,
// no TTL; MergeTree with PARTITION BY / ORDER BY.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ea {

inline constexpr std::string_view kClickHouseEventsTable = "events";
inline constexpr std::string_view kClickHouseMetricsTable = "metrics";

// Database names go into SQL unquoted-safe: [A-Za-z_][A-Za-z0-9_]*, at most 64 characters.
Result<void> check_clickhouse_identifier(std::string_view name, std::string_view what);
// CREATE DATABASE / CREATE TABLE ... IF NOT EXISTS, in order.
std::vector<std::string> clickhouse_schema_statements(std::string_view database);
std::string clickhouse_insert_statement(std::string_view database, std::string_view table);

}  // namespace ea
