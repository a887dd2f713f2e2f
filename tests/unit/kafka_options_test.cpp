// The kafka:... output description: defaults, every option, and errors that say how to fix them.
#include <gtest/gtest.h>

#include <filesystem>

#include "sink/kafka_options.h"
#include "sink/sink.h"

namespace ea {
namespace {

Result<KafkaSinkOptions> parse(std::string_view text) {
  auto output = parse_output_description(text);
  if (!output) return std::unexpected(output.error());
  return parse_kafka_options(*output);
}

void expect_error(std::string_view text, std::initializer_list<std::string_view> needles) {
  auto options = parse(text);
  ASSERT_FALSE(options) << text;
  for (std::string_view needle : needles)
    EXPECT_NE(options.error().message.find(needle), std::string::npos) << options.error().message;
}

TEST(KafkaOptions, DefaultsAndBrokerList) {
  auto options = parse("kafka:b1:9092,b2:9092");
  ASSERT_TRUE(options) << options.error().message;
  EXPECT_EQ(options->brokers, "b1:9092,b2:9092");
  EXPECT_EQ(options->topic_prefix, "ebpf-agent");
  EXPECT_EQ(options->spool_dir, "/run/ebpf-agent/kafka-spool");
  EXPECT_EQ(options->spool_max_bytes, 256ull << 20);
  EXPECT_EQ(options->acks, "all");
  EXPECT_TRUE(options->rdkafka.empty());
}

TEST(KafkaOptions, EveryOption) {
  auto options = parse(
      "kafka:b1:9092,topic_prefix=prod.agent,spool=/var/spool/ea,spool_max_bytes=1G,queue_max_records=500,acks=1,"
      "stop_timeout=2s,rdkafka.compression.type=zstd,rdkafka.linger.ms=20");
  ASSERT_TRUE(options) << options.error().message;
  EXPECT_EQ(options->topic_prefix, "prod.agent");
  EXPECT_EQ(options->spool_dir, "/var/spool/ea");
  EXPECT_EQ(options->spool_max_bytes, 1ull << 30);
  EXPECT_EQ(options->queue_max_records, 500u);
  EXPECT_EQ(options->acks, "1");
  EXPECT_EQ(options->stop_timeout, std::chrono::milliseconds(2000));
  ASSERT_EQ(options->rdkafka.size(), 2u);
  EXPECT_EQ(options->rdkafka[0], (std::pair<std::string, std::string>{"compression.type", "zstd"}));
}

TEST(KafkaOptions, ErrorsSayWhatAndHow) {
  expect_error("kafka", {"needs its brokers", "kafka:host1:9092"});
  expect_error("kafka:b:9092,colour=red", {"unknown option 'colour'", "topic_prefix", "rdkafka.PROPERTY"});
  expect_error("kafka:b:9092,topic_prefix=a/b", {"topic_prefix", "'/'"});
  expect_error("kafka:b:9092,spool_max_bytes=12", {"at least 4K"});
  expect_error("kafka:b:9092,spool_max_bytes=lots", {"spool_max_bytes"});
  expect_error("kafka:b:9092,queue_max_records=0", {"queue_max_records"});
  expect_error("kafka:b:9092,acks=2", {"acks must be all, 1 or 0"});
  expect_error("kafka:b:9092,rdkafka.message.timeout.ms=1000", {"set by the kafka output itself", "spool_max_bytes"});
  expect_error("kafka:b:9092,rdkafka.bootstrap.servers=x:1", {"kafka:host1:9092"});
  expect_error("kafka:b:9092,rdkafka.enable.idempotence=false", {"acks="});
  expect_error("kafka:b:9092,rdkafka.=1", {"property name"});
}

TEST(KafkaOptions, LibrdkafkaValidatesPassThroughProperties) {
  // Checked when the output is created: librdkafka's own message, naming the property.
  auto sink = make_sink("kafka:127.0.0.1:1,spool=/tmp/ea-kafka-options-test,rdkafka.no.such.property=1");
  ASSERT_FALSE(sink);
  EXPECT_NE(sink.error().message.find("rdkafka.no.such.property=1"), std::string::npos) << sink.error().message;
  EXPECT_NE(sink.error().message.find("No such configuration property"), std::string::npos) << sink.error().message;
  sink = make_sink("kafka:127.0.0.1:1,spool=/tmp/ea-kafka-options-test,rdkafka.compression.type=brotli");
  ASSERT_FALSE(sink);
  EXPECT_NE(sink.error().message.find("compression.type"), std::string::npos) << sink.error().message;
  std::filesystem::remove_all("/tmp/ea-kafka-options-test");
}

}  // namespace
}  // namespace ea
