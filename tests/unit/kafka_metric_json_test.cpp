// metric_json.h: the one JSON shape of a metric sample (Kafka messages, other outputs reuse it).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "metrics/metric_json.h"

namespace ea {
namespace {

TEST(MetricJson, CounterWithLabelsAndSpec) {
  MetricFamily family{.name = "http_server_requests", .unit = "", .kind = MetricKind::Counter, .spec = "web"};
  MetricSeries series{.labels = make_labels({{"route", "/a\"b"}, {"method", "GET"}}), .value = 42};
  std::string out;
  append_metric_json(family, series, 1700000000123456789ull, "host-1", out);
  EXPECT_EQ(out,
            "{\"time\":1700000000123456789,\"host\":\"host-1\",\"name\":\"http_server_requests\",\"kind\":\"counter\","
            "\"unit\":\"\",\"spec\":\"web\",\"labels\":{\"method\":\"GET\",\"route\":\"/a\\\"b\"},\"value\":42}");
  auto parsed = nlohmann::json::parse(out);
  EXPECT_EQ(parsed["labels"]["route"], "/a\"b");
}

TEST(MetricJson, GaugeWithoutSpecKeepsFractionsExactly) {
  MetricFamily family{.name = "process_memory_usage_bytes", .unit = "bytes", .kind = MetricKind::Gauge};
  MetricSeries series{.value = 0.1};
  std::string out;
  append_metric_json(family, series, 5, "h", out);
  auto parsed = nlohmann::json::parse(out);
  EXPECT_FALSE(parsed.contains("spec"));
  EXPECT_EQ(parsed["kind"], "gauge");
  EXPECT_EQ(parsed["unit"], "bytes");
  EXPECT_EQ(parsed["value"].get<double>(), 0.1);
  EXPECT_TRUE(parsed["labels"].is_object() && parsed["labels"].empty());
}

TEST(MetricJson, HistogramBucketsAreCumulativeWithInfLast) {
  MetricFamily family{.name = "latency_seconds", .unit = "seconds", .kind = MetricKind::Histogram};
  MetricSeries series;
  series.histogram = HistogramData{.bounds = {0.005, 0.1, 1}, .counts = {3, 0, 2, 1}, .sum = 2.75, .count = 6};
  std::string out;
  append_metric_json(family, series, 7, "h", out);
  auto parsed = nlohmann::json::parse(out);
  EXPECT_FALSE(parsed.contains("value"));
  ASSERT_EQ(parsed["buckets"].size(), 4u);
  EXPECT_EQ(parsed["buckets"][0]["le"].get<double>(), 0.005);
  EXPECT_EQ(parsed["buckets"][0]["count"], 3);
  EXPECT_EQ(parsed["buckets"][1]["count"], 3);
  EXPECT_EQ(parsed["buckets"][2]["count"], 5);
  EXPECT_EQ(parsed["buckets"][3]["le"], "+Inf");
  EXPECT_EQ(parsed["buckets"][3]["count"], 6);
  EXPECT_EQ(parsed["sum"].get<double>(), 2.75);
  EXPECT_EQ(parsed["count"], 6);
}

TEST(MetricJson, NonFiniteValuesStayValidJson) {
  MetricFamily family{.name = "g", .kind = MetricKind::Gauge};
  for (double value : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                       -std::numeric_limits<double>::infinity()}) {
    std::string out;
    append_metric_json(family, MetricSeries{.value = value}, 1, "h", out);
    auto parsed = nlohmann::json::parse(out);  // throws on NaN/Infinity literals
    EXPECT_TRUE(parsed["value"].is_string()) << out;
  }
}

TEST(MetricJson, HostileLabelTextIsEscaped) {
  MetricFamily family{.name = "c", .kind = MetricKind::Counter};
  MetricSeries series{.labels = {{"path", std::string("a\nb\x01\\", 5)}}, .value = 1};
  std::string out;
  append_metric_json(family, series, 1, "h\"", out);
  auto parsed = nlohmann::json::parse(out);
  EXPECT_EQ(parsed["labels"]["path"], std::string("a\nb\x01\\", 5));
  EXPECT_EQ(parsed["host"], "h\"");
}

}  // namespace
}  // namespace ea
