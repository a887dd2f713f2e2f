// ClickHouse output without a server: JSON encoding of hostile strings and numbers, row shapes,
// option parsing, and the bounded row queue's exact accounting.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "sink/clickhouse_json.h"
#include "sink/clickhouse_options.h"
#include "sink/clickhouse_row_queue.h"
#include "sink/clickhouse_rows.h"
#include "sink/clickhouse_schema.h"

namespace ea {
namespace {

std::string encoded(std::string_view text) {
  std::string out;
  append_clickhouse_string(text, out);
  return out;
}

// What a JSON parser reads back from the encoding.
std::string decoded(std::string_view text) { return nlohmann::json::parse(encoded(text)).get<std::string>(); }

TEST(ClickHouseJson, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(encoded("a\"b\\c\nd\re\tf"), R"("a\"b\\c\nd\re\tf")");
  EXPECT_EQ(encoded(std::string_view("x\0y\x01\x7f", 5)), R"("x\u0000y\u0001\u007f")");
  EXPECT_EQ(decoded(std::string_view("x\0y", 3)), std::string("x\0y", 3));
  EXPECT_EQ(encoded(""), "\"\"");
}

TEST(ClickHouseJson, KeepsValidUtf8) {
  std::string text = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF";  // é € 😀 U+10FFFF
  EXPECT_EQ(encoded(text), "\"" + text + "\"");
}

TEST(ClickHouseJson, ReplacesInvalidUtf8ByMaximalSubparts) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(decoded("a\xFF" "b"), "a" + fffd + "b");                // not a lead byte
  EXPECT_EQ(decoded("\x80"), fffd);                               // stray continuation
  EXPECT_EQ(decoded("\xE2\x82"), fffd);                           // truncated: one replacement
  EXPECT_EQ(decoded("\xE2\x82x"), fffd + "x");
  EXPECT_EQ(decoded("\xC0\xAF"), fffd + fffd);                    // overlong '/'
  EXPECT_EQ(decoded("\xE0\x80\xAF"), fffd + fffd + fffd);         // overlong, 3 bytes
  EXPECT_EQ(decoded("\xED\xA0\x80"), fffd + fffd + fffd);         // UTF-16 surrogate
  EXPECT_EQ(decoded("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // above U+10FFFF
  EXPECT_EQ(decoded("\xF0\x9F\x98"), fffd);                       // truncated 4-byte
  EXPECT_EQ(decoded("\xF0\x9F\x98\"q"), fffd + "\"q");           // the quote after it survives
}

TEST(ClickHouseJson, NumbersRoundTripAndNonFiniteAreQuoted) {
  auto number = [](double value) {
    std::string out;
    append_clickhouse_double(value, out);
    return out;
  };
  EXPECT_EQ(number(1.5), "1.5");
  EXPECT_EQ(number(0.1), "0.1");
  EXPECT_EQ(std::stod(number(1.0 / 3)), 1.0 / 3);
  EXPECT_EQ(number(std::numeric_limits<double>::quiet_NaN()), "\"nan\"");
  EXPECT_EQ(number(std::numeric_limits<double>::infinity()), "\"inf\"");
  EXPECT_EQ(number(-std::numeric_limits<double>::infinity()), "\"-inf\"");
  std::string out;
  append_clickhouse_uint(std::numeric_limits<uint64_t>::max(), out);
  EXPECT_EQ(out, "18446744073709551615");
}

TEST(ClickHouseRows, EventRowHasEveryColumn) {
  RecordOrigin origin{.spec = "s\"pec", .program = "prog", .channel = "chan", .processor = "btf:struct x"};
  RecordBatch batch;
  batch.arena = R"({"k":"v\n"})";
  Record record{.time_ns = 1'763'781'234'123'456'789ull, .origin = &origin, .pid = 42, .tgid = 41};
  std::memcpy(record.comm, "co\\mm\xFF", 6);
  record.fields_offset = 0;
  record.fields_length = static_cast<uint32_t>(batch.arena.size());
  std::string rows;
  append_event_row(record, batch.fields(record), clickhouse_origin_fields(&origin, "host-1"), rows);
  ASSERT_EQ(rows.back(), '\n');
  ASSERT_EQ(std::count(rows.begin(), rows.end(), '\n'), 1);
  auto row = nlohmann::json::parse(rows);
  EXPECT_EQ(row["time"], 1'763'781'234u);
  EXPECT_EQ(row["time_ns"], 1'763'781'234'123'456'789ull);
  EXPECT_EQ(row["host"], "host-1");
  EXPECT_EQ(row["spec"], "s\"pec");
  EXPECT_EQ(row["program"], "prog");
  EXPECT_EQ(row["channel"], "chan");
  EXPECT_EQ(row["processor"], "btf:struct x");
  EXPECT_EQ(row["pid"], 42);
  EXPECT_EQ(row["tgid"], 41);
  EXPECT_EQ(row["comm"], "co\\mm\xEF\xBF\xBD");
  EXPECT_EQ(row["data"], R"({"k":"v\n"})");
  EXPECT_EQ(nlohmann::json::parse(row["data"].get<std::string>())["k"], "v\n");
}

TEST(ClickHouseRows, EventRowClampsTimeAndKeepsUnknownIds) {
  Record record{.time_ns = std::numeric_limits<uint64_t>::max()};
  std::string rows;
  append_event_row(record, "", clickhouse_origin_fields(nullptr, "h"), rows);
  auto row = nlohmann::json::parse(rows);
  EXPECT_EQ(row["time"], std::numeric_limits<uint32_t>::max());
  EXPECT_EQ(row["pid"], -1);
  EXPECT_EQ(row["tgid"], -1);
  EXPECT_EQ(row["data"], "{}");
  EXPECT_EQ(row["spec"], "");
}

TEST(ClickHouseRows, CounterAndGaugeRows) {
  MetricFamily family{.name = "ebpf_agent_records", .unit = "", .kind = MetricKind::Counter, .spec = "s"};
  family.series.push_back({.labels = {{"a", "x\ny"}, {"b", "\xFF"}}, .value = 12});
  std::string rows;
  append_metric_row(family, family.series[0], 5'000'000'001ull, "h", rows);
  auto row = nlohmann::json::parse(rows);
  EXPECT_EQ(row["time"], 5u);
  EXPECT_EQ(row["time_ns"], 5'000'000'001ull);
  EXPECT_EQ(row["name"], "ebpf_agent_records");
  EXPECT_EQ(row["kind"], "counter");
  EXPECT_EQ(row["spec"], "s");
  EXPECT_EQ(row["labels.key"], nlohmann::json({"a", "b"}));
  EXPECT_EQ(row["labels.value"], nlohmann::json({"x\ny", "\xEF\xBF\xBD"}));
  EXPECT_EQ(row["value"], 12.0);
  EXPECT_TRUE(row["buckets.le"].empty());
  EXPECT_TRUE(row["buckets.count"].empty());
}

TEST(ClickHouseRows, HistogramRowsAreCumulativeWithInfLast) {
  MetricFamily family{.name = "latency_seconds", .unit = "seconds", .kind = MetricKind::Histogram};
  family.series.push_back({.histogram = {.bounds = {0.1, 1}, .counts = {3, 2, 1}, .sum = 4.5, .count = 6}});
  // A producer whose counts do not match its bounds: zero-padded.
  family.series.push_back({.histogram = {.bounds = {0.1, 1}, .counts = {1}, .sum = 0.05, .count = 1}});
  std::string rows;
  for (const auto& series : family.series) append_metric_row(family, series, 0, "h", rows);
  auto first = nlohmann::json::parse(rows.substr(0, rows.find('\n')));
  EXPECT_EQ(first["kind"], "histogram");
  EXPECT_EQ(first["unit"], "seconds");
  EXPECT_EQ(first["buckets.le"], nlohmann::json({0.1, 1.0, "inf"}));
  EXPECT_EQ(first["buckets.count"], nlohmann::json({3, 5, 6}));
  EXPECT_EQ(first["sum"], 4.5);
  EXPECT_EQ(first["count"], 6);
  auto second = nlohmann::json::parse(rows.substr(rows.find('\n') + 1));
  EXPECT_EQ(second["buckets.count"], nlohmann::json({1, 1, 1}));
}

TEST(ClickHouseOptions, ParsesEveryOption) {
  auto output = parse_output_description(
      "clickhouse:https://ch.example:8443/,database=obs_1,user=agent,password=p=w,batch_records=500,"
      "flush=250ms,queue_max=2000,queue_bytes=1M,timeout=3s,retention=30d");
  ASSERT_TRUE(output) << output.error().message;
  auto options = parse_clickhouse_options(*output);
  ASSERT_TRUE(options) << options.error().message;
  EXPECT_EQ(options->connection.url, "https://ch.example:8443");
  EXPECT_EQ(options->database, "obs_1");
  EXPECT_EQ(options->connection.user, "agent");
  EXPECT_EQ(options->connection.password, "p=w");
  EXPECT_EQ(options->batch_records, 500u);
  EXPECT_EQ(options->flush, std::chrono::milliseconds(250));
  EXPECT_EQ(options->queue_max, 2000u);
  EXPECT_EQ(options->queue_bytes, 1u << 20);
  EXPECT_EQ(options->connection.timeout, std::chrono::seconds(3));
  EXPECT_EQ(options->retention, std::chrono::hours(24 * 30));
}

TEST(ClickHouseOptions, RefusesWhatWouldBreakSqlOrLeakSecrets) {
  auto error = [](std::string_view text) {
    auto output = parse_output_description(text);
    if (!output) return output.error().message;
    auto options = parse_clickhouse_options(*output);
    return options ? std::string() : options.error().message;
  };
  EXPECT_NE(error("clickhouse:http://h:8123,database=a`b"), "");
  EXPECT_NE(error("clickhouse:http://h:8123,database=1db"), "");
  EXPECT_NE(error("clickhouse:http://h:8123,database=a;DROP"), "");
  EXPECT_NE(error("clickhouse:http://u:p@h:8123").find("user="), std::string::npos);
  EXPECT_NE(error("clickhouse:http://h:8123/?x=1"), "");
  EXPECT_NE(error("clickhouse:ftp://h"), "");
  EXPECT_NE(error("clickhouse"), "");
  EXPECT_NE(error("clickhouse:http://h,password=x"), "");  // a password without a user
  EXPECT_NE(error("clickhouse:http://h,user=u,password=x,password_file=/dev/null"), "");
  EXPECT_NE(error("clickhouse:http://h,password_file=/nonexistent/pw,user=u").find("/nonexistent/pw"),
            std::string::npos);
  EXPECT_NE(error("clickhouse:http://h,batch_records=0"), "");
  EXPECT_NE(error("clickhouse:http://h,batch_records=2000000"), "");
  EXPECT_NE(error("clickhouse:http://h,flush=0"), "");
  EXPECT_NE(error("clickhouse:http://h,retention=12h").find("whole days"), std::string::npos);
  EXPECT_NE(error("clickhouse:http://h,bogus=1").find("bogus"), std::string::npos);
  EXPECT_EQ(error("clickhouse:http://127.0.0.1:8123"), "");
}

TEST(ClickHouseSchema, StatementsNameTheDatabase) {
  auto statements = clickhouse_schema_statements("obs");
  ASSERT_EQ(statements.size(), 3u);
  EXPECT_EQ(statements[0], "CREATE DATABASE IF NOT EXISTS `obs`");
  EXPECT_NE(statements[1].find("`obs`.`events`"), std::string::npos);
  EXPECT_NE(statements[2].find("`obs`.`metrics`"), std::string::npos);
  EXPECT_EQ(clickhouse_insert_statement("obs", "events"), "INSERT INTO `obs`.`events` FORMAT JSONEachRow");
}

std::string lines(int from, int to) {
  std::string text;
  for (int i = from; i < to; ++i) text += "{\"n\":" + std::to_string(i) + "}\n";
  return text;
}

TEST(ClickHouseRowQueue, RefusesExactlyWhatExceedsTheRowBound) {
  RowQueue queue(10, 1 << 20, 4);
  auto now = RowQueue::Clock::now();
  EXPECT_EQ(queue.push(lines(0, 7), 7, now), 0u);
  EXPECT_EQ(queue.push(lines(7, 14), 7, now), 4u);  // 3 fit
  EXPECT_EQ(queue.rows(), 10u);
  EXPECT_EQ(queue.push(lines(14, 15), 1, now), 1u);
  // Chunks hold at most 4 rows; take() returns whole chunks in order.
  auto taken = queue.take(8);
  uint64_t rows = 0;
  std::string text;
  for (const auto& chunk : taken) {
    EXPECT_LE(chunk.rows, 4u);
    rows += chunk.rows;
    text += chunk.text;
  }
  EXPECT_EQ(rows, 8u);
  EXPECT_EQ(text, lines(0, 8));
  EXPECT_EQ(queue.waiting_rows(), 2u);
  EXPECT_EQ(queue.rows(), 10u);  // taken rows keep their room until committed
  EXPECT_EQ(queue.push(lines(20, 21), 1, now), 1u);
  queue.restore(std::move(taken));
  auto again = queue.take(100);
  text.clear();
  for (const auto& chunk : again) text += chunk.text;
  EXPECT_EQ(text, lines(0, 10));  // order kept across the failed attempt
  queue.commit(again);
  EXPECT_EQ(queue.rows(), 0u);
  EXPECT_EQ(queue.bytes(), 0u);
  EXPECT_FALSE(queue.has_waiting());
}

TEST(ClickHouseRowQueue, RefusesExactlyWhatExceedsTheByteBound) {
  std::string rows = lines(0, 10);  // rows of 8 bytes each ({"n":0}\n)
  RowQueue queue(1000, 8 * 6, 100);
  EXPECT_EQ(queue.push(rows, 10, RowQueue::Clock::now()), 4u);
  EXPECT_EQ(queue.rows(), 6u);
  EXPECT_EQ(queue.bytes(), 48u);
  EXPECT_EQ(queue.clear(), 6u);
}

TEST(ClickHouseRowQueue, DueWhenFullOrOld) {
  RowQueue queue(100, 1 << 20, 10);
  auto t0 = RowQueue::Clock::now();
  EXPECT_EQ(queue.due_at(5, std::chrono::seconds(2)), RowQueue::Clock::time_point::max());
  queue.push(lines(0, 3), 3, t0);
  EXPECT_EQ(queue.due_at(5, std::chrono::seconds(2)), t0 + std::chrono::seconds(2));
  queue.push(lines(3, 5), 2, t0 + std::chrono::seconds(1));
  EXPECT_EQ(queue.due_at(5, std::chrono::seconds(2)), RowQueue::Clock::time_point::min());
}

}  // namespace
}  // namespace ea
