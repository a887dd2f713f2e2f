// The Kafka output against librdkafka's in-process mock cluster: topics, keys and values, order,
// brokers going down and coming back, the spool bound, and replay after a restart.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>  // after rdkafka.h
#include <nlohmann/json.hpp>

#include "../tools/kafka_consume.h"
#include "sink/kafka_sink.h"

namespace ea {
namespace {

using namespace std::chrono_literals;

class MockCluster {
 public:
  MockCluster() {
    char error[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "2", error, sizeof(error));
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof(error));
    cluster_ = rd_kafka_mock_cluster_new(rk_, 3);
    bootstrap_ = rd_kafka_mock_cluster_bootstraps(cluster_);
  }
  ~MockCluster() {
    rd_kafka_mock_cluster_destroy(cluster_);
    rd_kafka_destroy(rk_);
  }
  const std::string& bootstrap() const { return bootstrap_; }
  void down() { rd_kafka_mock_broker_set_down(cluster_, -1); }
  void up() { rd_kafka_mock_broker_set_up(cluster_, -1); }

 private:
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  std::string bootstrap_;
};

class KafkaSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/ea-kafka-sink-test-XXXXXX";
    spool_dir_ = mkdtemp(pattern);
    prefix_ = fmt::format("t{}", getpid());
  }
  void TearDown() override { std::filesystem::remove_all(spool_dir_); }

  std::unique_ptr<KafkaSink> open_sink(std::string_view extra = "") {
    std::string description = fmt::format("kafka:{},topic_prefix={},spool={}{}", cluster_.bootstrap(), prefix_,
                                          spool_dir_, extra);
    auto output = parse_output_description(description);
    EXPECT_TRUE(output);
    auto options = parse_kafka_options(*output);
    EXPECT_TRUE(options) << options.error().message;
    auto sink = KafkaSink::open(std::move(*options));
    EXPECT_TRUE(sink) << sink.error().message;
    return sink ? std::move(*sink) : nullptr;
  }

  // Writes records with data {"seq":first..last}, from process 4242, in batches of `batch`.
  void write_events(Sink& sink, int first, int last, int batch = 50) {
    std::string origin = origin_json(origin_, host_name());
    for (int start = first; start <= last; start += batch) {
      RecordBatch records;
      std::string jsonl;
      for (int seq = start; seq <= std::min(last, start + batch - 1); ++seq) {
        Record record{.time_ns = wall_clock_ns(), .origin = &origin_, .pid = 4243, .tgid = 4242};
        std::string fields = fmt::format("{{\"seq\":{}}}", seq);
        record.fields_offset = static_cast<uint32_t>(records.arena.size());
        record.fields_length = static_cast<uint32_t>(fields.size());
        records.arena += fields;
        append_json_line(record, fields, origin, jsonl);
        records.records.push_back(record);
      }
      sink.write(records, jsonl);
    }
  }

  std::vector<test::ConsumedMessage> consume(std::string_view kind) {
    auto messages = test::consume_topic(cluster_.bootstrap(), fmt::format("{}.{}", prefix_, kind));
    EXPECT_TRUE(messages) << messages.error().message;
    return messages ? *messages : std::vector<test::ConsumedMessage>{};
  }

  static std::vector<int> sequences(const std::vector<test::ConsumedMessage>& messages) {
    std::vector<int> out;
    for (const auto& message : messages) out.push_back(nlohmann::json::parse(message.value)["data"]["seq"].get<int>());
    return out;
  }

  static std::vector<int> range(int first, int last) {
    std::vector<int> out;
    for (int i = first; i <= last; ++i) out.push_back(i);
    return out;
  }

  template <class Predicate>
  static bool eventually(Predicate predicate, std::chrono::milliseconds timeout = 30s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (predicate()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return predicate();
  }

  MockCluster cluster_;
  std::string spool_dir_;
  std::string prefix_;
  RecordOrigin origin_{.spec = "s", .program = "p", .channel = "c", .processor = "builtin:test"};
};

TEST_F(KafkaSinkTest, EventsAndMetricsGoToTheirTopicsWithKeysInOrder) {
  auto sink = open_sink();
  ASSERT_TRUE(sink);
  EXPECT_EQ(sink->name(), "kafka:" + cluster_.bootstrap());
  EXPECT_EQ(sink->kind(), "kafka");
  write_events(*sink, 1, 300);
  MetricsSnapshot snapshot{.time_ns = 1234};
  snapshot.families.push_back(MetricFamily{.name = "requests", .kind = MetricKind::Counter, .series = {{.value = 7}}});
  MetricSeries histogram;
  histogram.labels = {{"route", "/"}};
  histogram.histogram = HistogramData{.bounds = {1}, .counts = {2, 1}, .sum = 3.5, .count = 3};
  snapshot.families.push_back(
      MetricFamily{.name = "latency_seconds", .unit = "seconds", .kind = MetricKind::Histogram, .series = {histogram}});
  sink->write_metrics(snapshot);
  ASSERT_TRUE(eventually([&] { return sink->counters().records == 300 && sink->counters().metric_samples == 2; }))
      << sink->counters().records << " events, " << sink->counters().metric_samples << " samples delivered";
  EXPECT_EQ(sink->queue_depth(), 0u);

  auto events = consume("events");
  ASSERT_EQ(events.size(), 300u);
  EXPECT_EQ(sequences(events), range(1, 300));
  for (const auto& event : events) EXPECT_EQ(event.key, host_name() + "/4242");
  auto first = nlohmann::json::parse(events[0].value);
  EXPECT_EQ(first["spec"], "s");
  EXPECT_EQ(first["tgid"], 4242);

  auto metrics = consume("metrics");
  ASSERT_EQ(metrics.size(), 2u);
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& metric : metrics) {
    EXPECT_EQ(metric.key, host_name());
    auto parsed = nlohmann::json::parse(metric.value);
    by_name[parsed["name"]] = parsed;
  }
  EXPECT_EQ(by_name["requests"]["value"], 7);
  EXPECT_EQ(by_name["requests"]["time"], 1234);
  EXPECT_EQ(by_name["latency_seconds"]["buckets"][1]["count"], 3);
  sink->stop();
  EXPECT_EQ(sink->spool_counters().spool_records, 0u);
  EXPECT_EQ(sink->spool_counters().dropped_over_bound, 0u);
}

TEST_F(KafkaSinkTest, BrokersDownThenBackDeliversEverythingInOrderWithoutDuplicates) {
  auto sink = open_sink(",queue_max_records=20");
  ASSERT_TRUE(sink);
  write_events(*sink, 1, 10);
  ASSERT_TRUE(eventually([&] { return sink->counters().records == 10; }));

  cluster_.down();
  write_events(*sink, 11, 510);
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(sink->counters().records, 10u) << "delivered while every broker was down";
  EXPECT_EQ(sink->queue_depth(), 500u);
  EXPECT_GE(sink->spool_counters().spooled, 480u) << "all but the producer's window waited in the spool";
  EXPECT_GT(sink->spool_counters().spool_bytes, 0u);

  cluster_.up();
  ASSERT_TRUE(eventually([&] { return sink->counters().records >= 510; })) << sink->counters().records;
  EXPECT_TRUE(eventually([&] { return sink->spool_counters().spool_bytes == 0; }));
  auto events = consume("events");
  EXPECT_EQ(sequences(events), range(1, 510));
  EXPECT_EQ(sink->counters().failures, 0u);
  EXPECT_EQ(sink->spool_counters().replayed, sink->spool_counters().spooled);
}

TEST_F(KafkaSinkTest, BeyondTheSpoolBoundTheLossIsCountedExactly) {
  auto sink = open_sink(",spool_max_bytes=16K,queue_max_records=10");
  ASSERT_TRUE(sink);
  cluster_.down();
  write_events(*sink, 1, 400, 7);
  KafkaSpoolCounters counters = sink->spool_counters();
  EXPECT_GT(counters.dropped_events, 0u);
  EXPECT_EQ(counters.dropped_over_bound, counters.dropped_events);
  EXPECT_LE(counters.spool_bytes, 16u << 10);
  EXPECT_EQ(sink->counters().failures, counters.dropped_events);

  cluster_.up();
  uint64_t kept = 400 - counters.dropped_events;
  ASSERT_TRUE(eventually([&] { return sink->counters().records == kept; })) << sink->counters().records;
  auto events = consume("events");
  auto received = sequences(events);
  EXPECT_EQ(received.size() + counters.dropped_events, 400u);
  EXPECT_TRUE(std::is_sorted(received.begin(), received.end()));
  EXPECT_EQ(std::adjacent_find(received.begin(), received.end()), received.end()) << "duplicates";
  EXPECT_EQ(received, range(1, static_cast<int>(kept))) << "the oldest records are kept, newer ones refused";
}

TEST_F(KafkaSinkTest, WhatIsUndeliveredAtStopIsReplayedAtTheNextStartBeforeNewRecords) {
  {
    auto sink = open_sink(",stop_timeout=300ms");
    ASSERT_TRUE(sink);
    write_events(*sink, 1, 5);
    ASSERT_TRUE(eventually([&] { return sink->counters().records == 5; }));
    cluster_.down();
    write_events(*sink, 6, 205);
    std::this_thread::sleep_for(300ms);
    auto started = std::chrono::steady_clock::now();
    sink->stop();
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s) << "stop waits about stop_timeout, not forever";
    EXPECT_EQ(sink->spool_counters().spool_records, 200u);
  }
  cluster_.up();
  auto sink = open_sink();
  ASSERT_TRUE(sink);
  EXPECT_EQ(sink->queue_depth(), 200u);
  write_events(*sink, 206, 210);
  ASSERT_TRUE(eventually([&] { return sink->counters().records == 205; })) << sink->counters().records;
  EXPECT_EQ(sequences(consume("events")), range(1, 210));
  EXPECT_EQ(sink->spool_counters().replayed, 200u);
}

TEST_F(KafkaSinkTest, AFatalProducerErrorIsSurvivedByANewProducerResendingFromTheSpool) {
  auto sink = open_sink();
  ASSERT_TRUE(sink);
  write_events(*sink, 1, 100);
  ASSERT_TRUE(eventually([&] { return sink->counters().records == 100; }));
  write_events(*sink, 101, 3000);
  sink->inject_fatal_error_for_test();  // while records are in flight
  ASSERT_TRUE(eventually([&] { return sink->spool_counters().producer_restarts == 1 && sink->queue_depth() == 0; }))
      << sink->spool_counters().producer_restarts << " restarts, " << sink->queue_depth() << " records waiting";
  EXPECT_EQ(sink->counters().failures, 0u);
  EXPECT_EQ(sequences(consume("events")), range(1, 3000));
}

TEST_F(KafkaSinkTest, StartsWhileTheBrokersAreDownAndDeliversWhenTheyAppear) {
  cluster_.down();
  auto sink = open_sink();
  ASSERT_TRUE(sink) << "an unreachable cluster is not a configuration error";
  write_events(*sink, 1, 100);
  std::this_thread::sleep_for(500ms);
  cluster_.up();
  ASSERT_TRUE(eventually([&] { return sink->counters().records == 100; })) << sink->counters().records;
  EXPECT_EQ(sequences(consume("events")), range(1, 100));
}

}  // namespace
}  // namespace ea
