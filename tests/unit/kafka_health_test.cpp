// The Kafka output's spool counters as list JSON and as health metric families.
#include <gtest/gtest.h>

#include "sink/kafka_health.h"

namespace ea {
namespace {

TEST(KafkaHealth, SpoolCountersBecomeSeriesPerOutput) {
  KafkaSpoolCounters counters{.spooled = 40, .replayed = 30, .dropped_over_bound = 7, .dropped_events = 5,
                              .dropped_metric_samples = 2, .spool_bytes = 4096, .spool_records = 10,
                              .producer_restarts = 1};
  nlohmann::json outputs = nlohmann::json::array(
      {{{"name", "file:/x"}, {"records", 3}},
       {{"name", "kafka:b1:9092"}, {"kafka_spool", kafka_spool_json(counters)}}});
  std::vector<MetricFamily> out;
  append_kafka_spool_metrics(outputs, out);
  std::map<std::string, const MetricFamily*> by_name;
  for (const MetricFamily& family : out) {
    EXPECT_TRUE(valid_metric_name(family.name)) << family.name;
    by_name[family.name] = &family;
  }
  ASSERT_TRUE(by_name.count("ebpf_agent_kafka_spool_bytes"));
  EXPECT_EQ(by_name["ebpf_agent_kafka_spool_bytes"]->kind, MetricKind::Gauge);
  EXPECT_EQ(by_name["ebpf_agent_kafka_spool_bytes"]->unit, "bytes");
  EXPECT_EQ(by_name["ebpf_agent_kafka_spool_bytes"]->series.at(0).value, 4096);
  EXPECT_EQ(by_name["ebpf_agent_kafka_spool_bytes"]->series.at(0).labels, (LabelSet{{"output", "kafka:b1:9092"}}));
  EXPECT_EQ(by_name["ebpf_agent_kafka_spool_records"]->series.at(0).value, 10);
  EXPECT_EQ(by_name["ebpf_agent_kafka_spooled_records"]->series.at(0).value, 40);
  EXPECT_EQ(by_name["ebpf_agent_kafka_replayed_records"]->series.at(0).value, 30);
  EXPECT_EQ(by_name["ebpf_agent_kafka_producer_restarts"]->series.at(0).value, 1);
  const MetricFamily* dropped = by_name["ebpf_agent_kafka_dropped_records"];
  ASSERT_TRUE(dropped);
  ASSERT_EQ(dropped->series.size(), 2u);
  EXPECT_EQ(dropped->series[0].labels, (LabelSet{{"kind", "events"}, {"output", "kafka:b1:9092"}}));
  EXPECT_EQ(dropped->series[0].value, 5);
  EXPECT_EQ(dropped->series[1].value, 2);
}

TEST(KafkaHealth, NoKafkaOutputNoFamilies) {
  std::vector<MetricFamily> out;
  append_kafka_spool_metrics(nlohmann::json::array({{{"name", "stdout"}}}), out);
  append_kafka_spool_metrics(nlohmann::json("junk"), out);
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace ea
