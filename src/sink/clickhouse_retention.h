// Retention for ClickHouse 18.16, which has no TTL: whole day partitions (PARTITION BY
// toYYYYMMDD(time)) older than the cutoff are dropped, which is cheap and atomic.
#pragma once
#include <cstdint>
#include <string_view>

#include "core/result.h"
#include "sink/clickhouse_client.h"

namespace ea {

// Drops the partitions of `table` whose whole day lies before `cutoff_seconds` (Unix time; the
// day is the server's, as toYYYYMMDD computes it). Returns how many were dropped.
Result<uint64_t> drop_expired_partitions(ClickHouseClient& client, std::string_view database, std::string_view table,
                                         uint64_t cutoff_seconds);

}  // namespace ea
