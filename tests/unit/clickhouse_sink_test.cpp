// The ClickHouse output against a real clickhouse-server (Debian's 18.16 here), started per test
// on a free loopback port: events and metrics read back exactly (hostile strings included),
// a server that comes up late, the queue bound, refused rows, a dropped table, authentication.
// Skipped when clickhouse-server is not installed.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>

#include <nlohmann/json.hpp>

#include "clickhouse_test_server.h"
#include "sink/clickhouse_sink.h"

namespace ea {
namespace {

using namespace std::chrono_literals;

const std::string kHostile = "q\"uo\\te\nline\ttab\x01\x7f \xFF\xFE é😀 ' ` ; DROP TABLE x; --";
const std::string kHostileAsStored = "q\"uo\\te\nline\ttab\x01\x7f \xEF\xBF\xBD\xEF\xBF\xBD é😀 ' ` ; DROP TABLE x; --";

template <class Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout = 20s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return predicate();
}

class ClickHouseSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::clickhouse_server_available())
      GTEST_SKIP() << test::kClickHouseServerBinary << " is not installed (apt-get install clickhouse-server)";
    server_ = std::make_unique<test::ClickHouseTestServer>();
    database_ = "ea_test_" + std::to_string(getpid());
  }

  void start_server() {
    std::string why;
    ASSERT_TRUE(server_->start(why)) << why;
  }

  ClickHouseOptions options() const {
    ClickHouseOptions options;
    options.connection.url = server_->url();
    options.connection.timeout = 5s;
    options.database = database_;
    options.flush = 100ms;
    return options;
  }

  std::vector<nlohmann::json> select(const std::string& query) {
    ClickHouseClient client(ClickHouseConnection{.url = server_->url()});
    auto result = client.execute(query + " FORMAT JSONEachRow");
    EXPECT_TRUE(result) << query << ": " << result.error().message;
    std::vector<nlohmann::json> rows;
    if (!result) return rows;
    std::string_view text = *result;
    while (!text.empty()) {
      size_t end = text.find('\n');
      rows.push_back(nlohmann::json::parse(text.substr(0, end)));
      text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    }
    return rows;
  }

  uint64_t count(const std::string& table) {
    auto rows = select("SELECT toString(count()) AS n FROM `" + database_ + "`." + table);
    return rows.empty() ? 0 : std::stoull(rows[0]["n"].get<std::string>());
  }

  // A batch of `n` records from one origin with a sequence number in their fields.
  RecordBatch batch(int n, int first = 0, std::string_view comm = "tester") {
    RecordBatch batch;
    for (int i = first; i < first + n; ++i) {
      Record record{.time_ns = 1'763'781'234'000'000'000ull + static_cast<uint64_t>(i), .origin = &origin_,
                    .pid = 1000 + i, .tgid = 1000};
      std::memcpy(record.comm, comm.data(), std::min(comm.size(), sizeof(record.comm) - 1));
      std::string fields = fmt::format(R"({{"seq":{},"text":"a\"b"}})", i);
      record.fields_offset = static_cast<uint32_t>(batch.arena.size());
      record.fields_length = static_cast<uint32_t>(fields.size());
      batch.arena += fields;
      batch.records.push_back(record);
    }
    return batch;
  }

  RecordOrigin origin_{.spec = "spec_a", .program = "prog", .channel = "chan", .processor = "btf:struct e"};
  std::unique_ptr<test::ClickHouseTestServer> server_;
  std::string database_;
};

TEST_F(ClickHouseSinkTest, EventsRoundTripExactly) {
  start_server();
  RecordOrigin hostile{.spec = kHostile, .program = "p", .channel = "c", .processor = "x"};
  ClickHouseSink sink(options());
  sink.write(batch(3), "");
  RecordBatch odd;
  Record record{.time_ns = 5'000'000'007ull, .origin = &hostile, .pid = -1, .tgid = -1};
  std::memcpy(record.comm, "c\"o\\m\n\xFF", 7);
  odd.arena = R"({"s":"\u0000\n"})";
  record.fields_length = static_cast<uint32_t>(odd.arena.size());
  odd.records.push_back(record);
  sink.write(odd, "");
  sink.flush();
  EXPECT_EQ(sink.counters().records.load(), 4u);
  EXPECT_EQ(sink.counters().failures.load(), 0u);
  EXPECT_GT(sink.counters().bytes.load(), 0u);
  EXPECT_EQ(sink.queue_depth(), 0u);

  auto rows = select("SELECT toUInt32(time) AS t, toString(time_ns) AS ns, host, spec, program, channel, processor, "
                     "pid, tgid, comm, data FROM `" + database_ + "`.events ORDER BY time_ns");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0]["t"], 5u);
  EXPECT_EQ(rows[0]["ns"], "5000000007");
  EXPECT_EQ(rows[0]["spec"], kHostileAsStored);
  EXPECT_EQ(rows[0]["comm"], "c\"o\\m\n\xEF\xBF\xBD");
  EXPECT_EQ(rows[0]["pid"], "-1");  // ClickHouse quotes 64-bit integers in JSON
  EXPECT_EQ(rows[0]["data"], R"({"s":"\u0000\n"})");
  for (int i = 0; i < 3; ++i) {
    const auto& row = rows[i + 1];
    EXPECT_EQ(row["t"], 1'763'781'234u);
    EXPECT_EQ(row["ns"], std::to_string(1'763'781'234'000'000'000ull + i));
    EXPECT_EQ(row["host"], host_name());
    EXPECT_EQ(row["spec"], "spec_a");
    EXPECT_EQ(row["program"], "prog");
    EXPECT_EQ(row["channel"], "chan");
    EXPECT_EQ(row["processor"], "btf:struct e");
    EXPECT_EQ(row["pid"], std::to_string(1000 + i));
    EXPECT_EQ(row["tgid"], "1000");
    EXPECT_EQ(row["comm"], "tester");
    EXPECT_EQ(row["data"], fmt::format(R"({{"seq":{},"text":"a\"b"}})", i));
  }
  // The data column is queryable as JSON.
  auto seqs = select("SELECT visitParamExtractUInt(data, 'seq') AS seq FROM `" + database_ +
                     "`.events WHERE spec = 'spec_a' AND visitParamExtractUInt(data, 'seq') >= 1 ORDER BY seq");
  ASSERT_EQ(seqs.size(), 2u);
  EXPECT_EQ(seqs[1]["seq"], "2");
}

TEST_F(ClickHouseSinkTest, MetricsRoundTripExactly) {
  start_server();
  ClickHouseSink sink(options());
  MetricsSnapshot snapshot{.time_ns = 1'763'781'234'500'000'000ull};
  MetricFamily counter{.name = "ebpf_agent_records", .kind = MetricKind::Counter, .spec = "spec_a"};
  counter.series.push_back({.labels = {{"channel", "c1"}, {"spec", "spec_a"}}, .value = 12});
  counter.series.push_back({.labels = {{"channel", kHostile}, {"spec", "spec_a"}}, .value = 3});
  MetricFamily gauge{.name = "queue_depth", .kind = MetricKind::Gauge};
  gauge.series.push_back({.value = std::numeric_limits<double>::quiet_NaN()});
  gauge.series.push_back({.labels = {{"k", "inf"}}, .value = -std::numeric_limits<double>::infinity()});
  gauge.series.push_back({.labels = {{"k", "max"}}, .value = std::numeric_limits<double>::max()});
  MetricFamily histogram{.name = "latency_seconds", .unit = "seconds", .kind = MetricKind::Histogram};
  histogram.series.push_back(
      {.labels = {{"route", "/a"}}, .histogram = {.bounds = {0.005, 0.1}, .counts = {4, 1, 2}, .sum = 1.25, .count = 7}});
  snapshot.families = {counter, gauge, histogram};
  sink.write_metrics(snapshot);
  sink.flush();
  EXPECT_EQ(sink.counters().metric_samples.load(), 6u);
  EXPECT_EQ(sink.counters().metric_failures.load(), 0u);

  std::string table = "`" + database_ + "`.metrics";
  // The operator's queries: by name and label, over time.
  auto by_label = select("SELECT value FROM " + table +
                         " WHERE name = 'ebpf_agent_records' AND labels.value[indexOf(labels.key, 'channel')] = 'c1'"
                         " AND time >= toDateTime(1763781234)");
  ASSERT_EQ(by_label.size(), 1u);
  EXPECT_EQ(by_label[0]["value"], 12);
  auto hostile = select("SELECT labels.key AS k, labels.value AS v, value, kind, spec, toString(time_ns) AS ns, host FROM " +
                        table + " WHERE name = 'ebpf_agent_records' AND value = 3");
  ASSERT_EQ(hostile.size(), 1u);
  EXPECT_EQ(hostile[0]["k"], nlohmann::json({"channel", "spec"}));
  EXPECT_EQ(hostile[0]["v"], nlohmann::json({kHostileAsStored, "spec_a"}));
  EXPECT_EQ(hostile[0]["kind"], "counter");
  EXPECT_EQ(hostile[0]["spec"], "spec_a");
  EXPECT_EQ(hostile[0]["ns"], "1763781234500000000");
  EXPECT_EQ(hostile[0]["host"], host_name());

  auto gauges = select("SELECT toString(value) AS v, kind FROM " + table + " WHERE name = 'queue_depth' ORDER BY v");
  ASSERT_EQ(gauges.size(), 3u);
  EXPECT_EQ(gauges[0]["v"], "-inf");
  EXPECT_EQ(gauges[1]["v"], "1.7976931348623157e308");
  EXPECT_EQ(gauges[2]["v"], "nan");
  EXPECT_EQ(gauges[0]["kind"], "gauge");

  auto histograms = select("SELECT buckets.le AS le, buckets.count AS c, sum, toString(count) AS n, unit FROM " + table +
                           " WHERE name = 'latency_seconds'");
  ASSERT_EQ(histograms.size(), 1u);
  EXPECT_EQ(histograms[0]["le"].dump(), "[0.005,0.1,null]");  // ClickHouse prints +Inf as null in JSON
  EXPECT_EQ(histograms[0]["c"], nlohmann::json({"4", "5", "7"}));
  EXPECT_EQ(histograms[0]["sum"], 1.25);
  EXPECT_EQ(histograms[0]["n"], "7");
  EXPECT_EQ(histograms[0]["unit"], "seconds");
  auto infinite = select("SELECT count() AS n FROM " + table + " WHERE name = 'latency_seconds' AND isInfinite(buckets.le[3])");
  ASSERT_EQ(infinite.size(), 1u);
  EXPECT_EQ(infinite[0]["n"], "1");
}

TEST_F(ClickHouseSinkTest, RowsGoOutAfterTheFlushIntervalWithoutBeingAsked) {
  start_server();
  ClickHouseOptions timed = options();
  timed.flush = 300ms;
  ClickHouseSink sink(timed);
  for (int round = 0; round < 2; ++round) {  // the second round finds the writer idle
    sink.write(batch(2, round * 2), "");
    auto written = std::chrono::steady_clock::now();
    ASSERT_TRUE(eventually([&] { return sink.counters().records.load() == uint64_t(2 * (round + 1)); }, 5s));
    EXPECT_GE(std::chrono::steady_clock::now() - written, 250ms);  // batched, not sent row by row
  }
}

TEST_F(ClickHouseSinkTest, ServerDownAtStartThenUpDeliversEverythingQueued) {
  ClickHouseSink sink(options());
  sink.write(batch(50), "");
  sink.write(batch(50, 50), "");
  std::this_thread::sleep_for(1500ms);  // several failed attempts
  EXPECT_EQ(sink.counters().records.load(), 0u);
  EXPECT_EQ(sink.counters().failures.load(), 0u);
  EXPECT_EQ(sink.queue_depth(), 100u);
  start_server();
  ASSERT_TRUE(eventually([&] { return sink.counters().records.load() == 100; }, 30s))
      << sink.counters().records.load() << " records written";
  EXPECT_EQ(count("events"), 100u);
  EXPECT_EQ(sink.counters().failures.load(), 0u);
  auto seqs = select("SELECT groupArray(visitParamExtractUInt(data, 'seq')) AS s FROM (SELECT data FROM `" + database_ +
                     "`.events ORDER BY time_ns)");
  ASSERT_EQ(seqs.size(), 1u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(seqs[0]["s"][i], std::to_string(i));
}

TEST_F(ClickHouseSinkTest, QueueBoundDropsAndCountsExactly) {
  ClickHouseOptions bounded = options();
  bounded.queue_max = 120;
  bounded.batch_records = 50;
  ClickHouseSink sink(bounded);
  sink.write(batch(100), "");
  sink.write(batch(100, 100), "");  // 20 fit
  MetricsSnapshot snapshot{.time_ns = 1};
  MetricFamily gauge{.name = "g", .kind = MetricKind::Gauge};
  for (int i = 0; i < 130; ++i) gauge.series.push_back({.labels = {{"i", std::to_string(i)}}, .value = double(i)});
  snapshot.families.push_back(gauge);
  sink.write_metrics(snapshot);  // 120 fit: the metrics table has its own bound
  EXPECT_EQ(sink.counters().failures.load(), 80u);
  EXPECT_EQ(sink.counters().metric_failures.load(), 10u);
  EXPECT_EQ(sink.queue_depth(), 240u);
  start_server();
  ASSERT_TRUE(eventually([&] {
    return sink.counters().records.load() == 120 && sink.counters().metric_samples.load() == 120;
  }, 30s));
  EXPECT_EQ(count("events"), 120u);
  EXPECT_EQ(count("metrics"), 120u);
  auto last = select("SELECT max(visitParamExtractUInt(data, 'seq')) AS m FROM `" + database_ + "`.events");
  EXPECT_EQ(last[0]["m"], "119");  // the oldest rows were kept
  sink.stop();
  EXPECT_EQ(sink.counters().failures.load(), 80u);
  EXPECT_EQ(sink.counters().metric_failures.load(), 10u);
}

TEST_F(ClickHouseSinkTest, StopWithServerDownCountsWhatWasNotSentAndReturns) {
  ClickHouseSink sink(options());
  sink.write(batch(10), "");
  MetricsSnapshot snapshot{.time_ns = 1};
  MetricFamily gauge{.name = "g", .kind = MetricKind::Gauge};
  gauge.series.resize(3);
  snapshot.families.push_back(gauge);
  sink.write_metrics(snapshot);
  auto started = std::chrono::steady_clock::now();
  sink.flush();  // answers after a failed attempt, not after the back-off
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
  sink.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 12s);
  EXPECT_EQ(sink.counters().failures.load(), 10u);
  EXPECT_EQ(sink.counters().metric_failures.load(), 3u);
  EXPECT_EQ(sink.queue_depth(), 0u);
  sink.write(batch(2), "");  // after stop: counted, never queued
  EXPECT_EQ(sink.counters().failures.load(), 12u);
  sink.stop();  // idempotent
}

TEST_F(ClickHouseSinkTest, RowsTheServerRefusesAreCountedNotRetriedForever) {
  start_server();
  // An events table of another shape, made by someone else: every row has unknown fields.
  ClickHouseClient admin(ClickHouseConnection{.url = server_->url()});
  ASSERT_TRUE(admin.execute("CREATE DATABASE `" + database_ + "`"));
  ASSERT_TRUE(admin.execute("CREATE TABLE `" + database_ + "`.events (time DateTime) ENGINE = MergeTree ORDER BY time"));
  ClickHouseSink sink(options());
  sink.write(batch(7), "");
  MetricsSnapshot snapshot{.time_ns = 1};
  MetricFamily gauge{.name = "g", .kind = MetricKind::Gauge};
  gauge.series.resize(2);
  snapshot.families.push_back(gauge);
  sink.write_metrics(snapshot);
  ASSERT_TRUE(eventually([&] { return sink.counters().failures.load() == 7; }));
  ASSERT_TRUE(eventually([&] { return sink.counters().metric_samples.load() == 2; }));
  EXPECT_EQ(sink.queue_depth(), 0u);
  EXPECT_EQ(count("events"), 0u);
  EXPECT_EQ(count("metrics"), 2u);
}

TEST_F(ClickHouseSinkTest, TablesDroppedBehindItsBackAreCreatedAgain) {
  start_server();
  ClickHouseSink sink(options());
  sink.write(batch(5), "");
  sink.flush();
  ASSERT_EQ(count("events"), 5u);
  ClickHouseClient admin(ClickHouseConnection{.url = server_->url()});
  ASSERT_TRUE(admin.execute("DROP DATABASE `" + database_ + "`"));
  sink.write(batch(3, 5), "");
  ASSERT_TRUE(eventually([&] { return sink.counters().records.load() == 8; }));
  EXPECT_EQ(count("events"), 3u);
  EXPECT_EQ(sink.counters().failures.load(), 0u);
}

TEST_F(ClickHouseSinkTest, AuthenticatesWithUserAndPassword) {
  start_server();
  ClickHouseOptions wrong = options();
  wrong.connection.user = test::kClickHouseTestUser;
  wrong.connection.password = "wrong";
  {
    ClickHouseSink sink(wrong);
    sink.write(batch(4), "");
    sink.flush();
    EXPECT_EQ(sink.counters().records.load(), 0u);
    EXPECT_EQ(sink.queue_depth(), 4u);  // kept for retry: the operator may fix the server's users
  }
  ClickHouseOptions right = options();
  right.connection.user = test::kClickHouseTestUser;
  right.connection.password = test::kClickHouseTestPassword;
  ClickHouseSink sink(right);
  sink.write(batch(4), "");
  sink.flush();
  EXPECT_EQ(sink.counters().records.load(), 4u);
  EXPECT_EQ(count("events"), 4u);
}

TEST_F(ClickHouseSinkTest, RetentionDropsWholeDaysOlderThanIt) {
  start_server();
  ClickHouseOptions kept = options();
  kept.retention = std::chrono::hours(24 * 7);
  ClickHouseSink sink(kept);
  uint64_t now = wall_clock_ns();
  uint64_t day = 86'400'000'000'000ull;
  RecordBatch mixed = batch(3);
  mixed.records[0].time_ns = now - 10 * day;
  mixed.records[1].time_ns = now - 9 * day;
  mixed.records[2].time_ns = now - day;
  sink.write(mixed, "");
  MetricFamily gauge{.name = "g", .kind = MetricKind::Gauge};
  gauge.series.resize(1);
  sink.write_metrics(MetricsSnapshot{.time_ns = now - 30 * day, .families = {gauge}});
  sink.write_metrics(MetricsSnapshot{.time_ns = now, .families = {gauge}});
  sink.flush();
  EXPECT_EQ(sink.counters().records.load(), 3u);
  EXPECT_EQ(sink.counters().metric_samples.load(), 2u);
  auto left = select("SELECT visitParamExtractUInt(data, 'seq') AS seq FROM `" + database_ + "`.events");
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0]["seq"], "2");
  EXPECT_EQ(count("metrics"), 1u);
}

TEST_F(ClickHouseSinkTest, BatchesSplitAtBatchRecords) {
  start_server();
  ClickHouseOptions small = options();
  small.batch_records = 7;
  ClickHouseSink sink(small);
  sink.write(batch(30), "");
  sink.flush();
  EXPECT_EQ(sink.counters().records.load(), 30u);
  // One INSERT per part here: 30 rows in 5 inserts of at most 7 rows.
  auto parts = select("SELECT toString(count()) AS parts, toString(max(rows)) AS biggest FROM system.parts "
                      "WHERE database = '" + database_ + "' AND table = 'events'");
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0]["biggest"], "7");
}

}  // namespace
}  // namespace ea
