#include "sink/clickhouse_retention.h"

#include <fmt/format.h>

namespace ea {

Result<uint64_t> drop_expired_partitions(ClickHouseClient& client, std::string_view database, std::string_view table,
                                         uint64_t cutoff_seconds) {
  // The server computes the cutoff's day in its own time zone, as it did for the partition key.
  auto listed = client.execute(fmt::format(
      "SELECT DISTINCT partition FROM system.parts WHERE database = '{}' AND table = '{}' AND active "
      "AND toUInt32(partition) < toYYYYMMDD(toDateTime({})) FORMAT TabSeparated",
      database, table, cutoff_seconds));
  if (!listed) return failf("listing expired partitions of {}.{}: {}", database, table, listed.error().message);
  uint64_t dropped = 0;
  std::string_view text = *listed;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view partition = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (partition.empty()) continue;
    // Only our YYYYMMDD partitions go into the statement.
    if (partition.size() != 8 || partition.find_first_not_of("0123456789") != std::string_view::npos)
      return failf("{}.{} has partition '{}', not a YYYYMMDD day: not made by this agent, left alone", database, table,
                   partition);
    auto done = client.execute(fmt::format("ALTER TABLE `{}`.`{}` DROP PARTITION {}", database, table, partition));
    if (!done) return failf("dropping partition {} of {}.{}: {}", partition, database, table, done.error().message);
    ++dropped;
  }
  return dropped;
}

}  // namespace ea
