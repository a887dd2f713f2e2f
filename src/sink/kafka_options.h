// The Kafka output's description:
//   kafka:BROKER[,BROKER...][,topic_prefix=ebpf-agent][,spool=/run/ebpf-agent/kafka-spool]
//        [,spool_max_bytes=256M][,queue_max_records=10000][,acks=all][,stop_timeout=5s]
//        [,rdkafka.<librdkafka property>=VALUE]...
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "sink/output_description.h"

namespace ea {

inline constexpr std::string_view kKafkaUsage =
    "kafka:BROKER[,BROKER...][,topic_prefix=P][,spool=DIR][,spool_max_bytes=SIZE][,queue_max_records=N]"
    "[,acks=all|1|0][,stop_timeout=D][,rdkafka.PROPERTY=VALUE]";

struct KafkaSinkOptions {
  std::string brokers;  // bootstrap servers, comma-separated host:port
  std::string topic_prefix = "ebpf-agent";
  std::string spool_dir = "/run/ebpf-agent/kafka-spool";  // /run is tmpfs: the talk's {kafka, tmpfs}
  uint64_t spool_max_bytes = 256ull << 20;
  uint64_t queue_max_records = 10000;  // records handed to librdkafka and not yet acknowledged
  std::string acks = "all";            // "all" turns on the idempotent producer
  std::chrono::milliseconds stop_timeout{5000};  // how long stop() waits for Kafka to take the spool
  // Passed to librdkafka as given (rdkafka.compression.type=zstd -> compression.type=zstd).
  std::vector<std::pair<std::string, std::string>> rdkafka;
};

Result<KafkaSinkOptions> parse_kafka_options(const OutputDescription& output);

}  // namespace ea
