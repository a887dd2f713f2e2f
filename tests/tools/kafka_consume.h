// Test helper (header-only, shared by the unit tests and tests/tools/kafka_mock_cluster.cpp):
// reads every message a topic holds right now, from each partition's low to high watermark.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "core/result.h"

namespace ea::test {

struct ConsumedMessage {
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
};

// Messages ordered by partition, then offset. A topic that does not exist yields no messages.
inline Result<std::vector<ConsumedMessage>> consume_topic(const std::string& brokers, const std::string& topic,
                                                          int timeout_ms = 10000) {
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  const std::pair<const char*, const char*> settings[] = {
      {"bootstrap.servers", brokers.c_str()},
      {"group.id", "ebpf-agent-test-reader"},  // assign() needs a group; nothing is committed to it
      {"enable.auto.commit", "false"},
      {"log_level", "3"}};
  for (const auto& [name, value] : settings)
    if (rd_kafka_conf_set(conf, name, value, error, sizeof(error)) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return failf("consumer {}={}: {}", name, value, error);
    }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, error, sizeof(error));
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return failf("consumer: {}", error);
  }
  struct Closer {
    rd_kafka_t* rk;
    ~Closer() {
      rd_kafka_consumer_close(rk);
      rd_kafka_destroy(rk);
    }
  } closer{rk};

  rd_kafka_topic_t* handle = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* metadata = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, handle, &metadata, timeout_ms);
  rd_kafka_topic_destroy(handle);
  if (err) return failf("metadata for {}: {}", topic, rd_kafka_err2str(err));
  std::vector<int32_t> partitions;
  bool missing = metadata->topic_cnt == 0 || metadata->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
  if (!missing)
    for (int i = 0; i < metadata->topics[0].partition_cnt; ++i) partitions.push_back(metadata->topics[0].partitions[i].id);
  rd_kafka_metadata_destroy(metadata);
  if (missing) return std::vector<ConsumedMessage>{};

  std::map<int32_t, int64_t> high;  // next offset to read up to, per partition with data
  rd_kafka_topic_partition_list_t* assignment = rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size()));
  for (int32_t partition : partitions) {
    int64_t low = 0, hi = 0;
    err = rd_kafka_query_watermark_offsets(rk, topic.c_str(), partition, &low, &hi, timeout_ms);
    if (err) {
      rd_kafka_topic_partition_list_destroy(assignment);
      return failf("watermarks of {} [{}]: {}", topic, partition, rd_kafka_err2str(err));
    }
    if (hi > low) {
      high[partition] = hi;
      rd_kafka_topic_partition_list_add(assignment, topic.c_str(), partition)->offset = low;
    }
  }
  if (high.empty()) {
    rd_kafka_topic_partition_list_destroy(assignment);
    return std::vector<ConsumedMessage>{};
  }
  err = rd_kafka_assign(rk, assignment);
  rd_kafka_topic_partition_list_destroy(assignment);
  if (err) return failf("assign {}: {}", topic, rd_kafka_err2str(err));

  std::map<int32_t, std::vector<ConsumedMessage>> by_partition;
  std::map<int32_t, int64_t> next;
  auto done = [&] {
    for (const auto& [partition, hi] : high)
      if (next[partition] < hi) return false;
    return true;
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return failf("timed out reading {}", topic);
    rd_kafka_message_t* message = rd_kafka_consumer_poll(rk, 100);
    if (!message) continue;
    if (message->err) {
      rd_kafka_resp_err_t message_error = message->err;
      std::string text = rd_kafka_message_errstr(message);
      rd_kafka_message_destroy(message);
      if (message_error == RD_KAFKA_RESP_ERR__PARTITION_EOF) continue;
      return failf("reading {}: {}", topic, text);
    }
    ConsumedMessage consumed{.partition = message->partition,
                             .offset = message->offset,
                             .key = message->key ? std::string(static_cast<const char*>(message->key), message->key_len) : "",
                             .value = message->payload ? std::string(static_cast<const char*>(message->payload), message->len) : ""};
    next[message->partition] = message->offset + 1;
    by_partition[message->partition].push_back(std::move(consumed));
    rd_kafka_message_destroy(message);
  }
  std::vector<ConsumedMessage> out;
  for (auto& [partition, messages] : by_partition)
    for (auto& message : messages)
      if (message.offset < high[partition]) out.push_back(std::move(message));
  return out;
}

}  // namespace ea::test
