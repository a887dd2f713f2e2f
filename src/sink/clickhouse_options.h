// `--output clickhouse:URL[,database=..][,user=..][,password=..|password_file=..][,batch_records=..]
//  [,flush=..][,queue_max=..][,queue_bytes=..][,timeout=..][,retention=..]`
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

#include "core/result.h"
#include "sink/clickhouse_client.h"
#include "sink/output_description.h"

namespace ea {

inline constexpr std::string_view kClickHouseUsage =
    "clickhouse:http://HOST:8123[,database=ebpf_agent][,user=U][,password=P|password_file=PATH]"
    "[,batch_records=10000][,flush=2s][,queue_max=100000][,queue_bytes=64M][,timeout=10s][,retention=30d]";

struct ClickHouseOptions {
  ClickHouseConnection connection;
  std::string database = "ebpf_agent";
  uint64_t batch_records = 10'000;              // rows per INSERT at most
  std::chrono::milliseconds flush{2'000};       // longest a row waits before it is sent
  uint64_t queue_max = 100'000;                 // rows waiting per table (events, metrics)
  uint64_t queue_bytes = 64ull << 20;           // bytes waiting per table
  std::chrono::milliseconds retention{0};       // drop day partitions older than this; 0 = keep all
};

Result<ClickHouseOptions> parse_clickhouse_options(const OutputDescription& output);

}  // namespace ea
