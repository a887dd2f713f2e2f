// The embedded store's write side and its sink: commit, reopen and continue, histograms,
// events, chunk cutting, the one-writer lock, concurrent readers, queue bounds.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include <nlohmann/json.hpp>

#include "sink/sink.h"
#include "tsdb/schema.h"
#include "tsdb/tsdb_defaults.h"
#include "tsdb/tsdb_reader.h"
#include "tsdb/tsdb_sink.h"
#include "tsdb/tsdb_writer.h"
#include "tsdb_test_util.h"

namespace ea::tsdb {
namespace {

using namespace testing;

constexpr uint64_t kStart = 1'700'000'000'000;  // ms

std::unique_ptr<TsdbWriter> open_writer(const std::string& dir, ChunkLimits limits = {}) {
  auto writer = TsdbWriter::open(WriterOptions{.dir = dir}, limits);
  EXPECT_TRUE(writer.has_value()) << (writer ? "" : writer.error().message);
  return writer ? std::move(*writer) : nullptr;
}

TsdbReader open_reader(const std::string& dir) {
  auto reader = TsdbReader::open(dir);
  EXPECT_TRUE(reader.has_value()) << (reader ? "" : reader.error().message);
  return std::move(*reader);
}

std::vector<SeriesSamples> select(const std::string& dir, std::string_view selector_text, int64_t from = 0,
                                  int64_t to = INT64_MAX) {
  auto selector = parse_selector(selector_text);
  EXPECT_TRUE(selector.has_value());
  TsdbReader reader = open_reader(dir);
  auto series = reader.select(*selector, from, to);
  EXPECT_TRUE(series.has_value()) << (series ? "" : series.error().message);
  return series ? *series : std::vector<SeriesSamples>{};
}

int64_t count_rows(const std::string& dir, const std::string& sql) {
  auto db = open_store_for_reading(dir + "/" + kDatabaseFileName);
  EXPECT_TRUE(db.has_value());
  return *db->query_int(sql);
}

TEST(TsdbStore, WritesCommitsReopensAndContinues) {
  TempDir dir;
  {
    auto writer = open_writer(dir.path());
    for (int i = 0; i < 30; ++i) {
      auto result = writer->append_metrics(snapshot(kStart + i * 10'000, {counter("requests", {{{{"route", "/a"}}, 100.0 * i},
                                                                                                {{{"route", "/b"}}, 7.0 * i}}),
                                                                        gauge("memory", {{{}, 1e6 + 0.5 + (i % 5) * 0.25}})}));
      EXPECT_EQ(result.accepted, 3u);
    }
    EXPECT_EQ(writer->uncommitted_samples(), 90u);
    auto committed = writer->commit();
    ASSERT_TRUE(committed.has_value()) << committed.error().message;
    EXPECT_EQ(committed->samples, 90u);
    EXPECT_EQ(writer->uncommitted_samples(), 0u);
  }
  auto first = select(dir.path(), R"(requests{route="/a"})");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].name, "requests_total");
  ASSERT_EQ(first[0].samples.size(), 30u);
  EXPECT_EQ(first[0].samples[29].value, 2900.0);
  {
    auto writer = open_writer(dir.path());
    for (int i = 30; i < 60; ++i)
      writer->append_metrics(snapshot(kStart + i * 10'000, {counter("requests", {{{{"route", "/a"}}, 100.0 * i}}),
                                                            gauge("memory", {{{}, 1e6 + 0.5 + (i % 5) * 0.25}})}));
    ASSERT_TRUE(writer->commit().has_value());
  }
  auto all = select(dir.path(), "requests_total");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].labels, (LabelSet{{"route", "/a"}}));
  ASSERT_EQ(all[0].samples.size(), 60u);
  for (int i = 0; i < 60; ++i) {
    EXPECT_EQ(all[0].samples[i].time_ms, static_cast<int64_t>(kStart + i * 10'000));
    EXPECT_EQ(all[0].samples[i].value, 100.0 * i);
  }
  EXPECT_EQ(all[1].samples.size(), 30u);
  auto memory = select(dir.path(), "memory");
  ASSERT_EQ(memory.size(), 1u);
  ASSERT_EQ(memory[0].samples.size(), 60u);
  EXPECT_EQ(memory[0].samples[33].value, 1e6 + 0.5 + 3 * 0.25);
  EXPECT_EQ(memory[0].unit, "bytes");
  // Reopening continued the open chunks: nothing was cut.
  EXPECT_EQ(count_rows(dir.path(), "SELECT count(*) FROM chunks"), 0);
}

TEST(TsdbStore, UncommittedDataIsLostButTheStoreStaysConsistent) {
  TempDir dir;
  {
    auto writer = open_writer(dir.path());
    for (int i = 0; i < 10; ++i) writer->append_metrics(snapshot(kStart + i * 1000, {counter("c", {{{}, 1.0 * i}})}));
    ASSERT_TRUE(writer->commit().has_value());
    for (int i = 10; i < 15; ++i) writer->append_metrics(snapshot(kStart + i * 1000, {counter("c", {{{}, 1.0 * i}})}));
    writer->append_event(kStart * 1'000'000, "spec", R"({"lost":true})");
  }  // closed without a commit, as a crash between flushes
  auto series = select(dir.path(), "c");
  ASSERT_EQ(series.size(), 1u);
  EXPECT_EQ(series[0].samples.size(), 10u);
  EXPECT_EQ(count_rows(dir.path(), "SELECT count(*) FROM event_blocks"), 0);
  auto writer = open_writer(dir.path());
  // The sample after the last committed one continues the reopened chunk.
  auto appended = writer->append_metrics(snapshot(kStart + 10 * 1000, {counter("c", {{{}, 10.0}})}));
  EXPECT_EQ(appended.accepted, 1u);
  ASSERT_TRUE(writer->commit().has_value());
  EXPECT_EQ(select(dir.path(), "c")[0].samples.size(), 11u);
}

TEST(TsdbStore, HistogramsAreStoredAsPrometheusCountsThem) {
  TempDir dir;
  auto writer = open_writer(dir.path());
  for (int i = 1; i <= 5; ++i) {
    auto result = writer->append_metrics(snapshot(
        kStart + i * 10'000, {histogram("latency_seconds", {{"route", "/"}}, {0.01, 0.1, 1},
                                        {uint64_t(i), uint64_t(2 * i), 0, uint64_t(i)}, 0.37 * i)}));
    EXPECT_EQ(result.accepted, 6u);  // 4 buckets (the last is +Inf), _sum, _count
  }
  ASSERT_TRUE(writer->commit().has_value());
  auto buckets = select(dir.path(), "latency_seconds_bucket");
  ASSERT_EQ(buckets.size(), 4u);
  std::map<std::string, double> last;
  for (const auto& series : buckets) {
    std::string le;
    for (const auto& [name, value] : series.labels)
      if (name == "le") le = value;
    last[le] = series.samples.back().value;
    EXPECT_EQ(series.kind, MetricKind::Histogram);
  }
  EXPECT_EQ(last["0.01"], 5);  // cumulative
  EXPECT_EQ(last["0.1"], 15);
  EXPECT_EQ(last["1"], 15);
  EXPECT_EQ(last["+Inf"], 20);
  auto count = select(dir.path(), "latency_seconds_count");
  ASSERT_EQ(count.size(), 1u);
  EXPECT_EQ(count[0].samples.back().value, 20);
  auto sum = select(dir.path(), "latency_seconds_sum");
  EXPECT_DOUBLE_EQ(sum[0].samples.back().value, 0.37 * 5);
  EXPECT_EQ(select(dir.path(), "latency_seconds").size(), 6u);
  EXPECT_EQ(select(dir.path(), R"(latency_seconds_bucket{le="+Inf"})").size(), 1u);
  TsdbReader reader = open_reader(dir.path());
  auto metrics = reader.metrics();
  ASSERT_TRUE(metrics.has_value());
  ASSERT_EQ(metrics->size(), 1u);
  EXPECT_EQ((*metrics)[0].series, 6u);
  EXPECT_EQ((*metrics)[0].samples, 30u);
  EXPECT_EQ((*metrics)[0].kind, MetricKind::Histogram);
  EXPECT_EQ((*metrics)[0].min_time_ms, static_cast<int64_t>(kStart + 10'000));
  EXPECT_EQ((*metrics)[0].max_time_ms, static_cast<int64_t>(kStart + 50'000));
}

TEST(TsdbStore, ChangedBucketBoundsMakeNewSeries) {
  TempDir dir;
  auto writer = open_writer(dir.path());
  writer->append_metrics(snapshot(kStart, {histogram("h", {}, {1}, {1, 1}, 1)}));
  writer->append_metrics(snapshot(kStart + 1000, {histogram("h", {}, {1, 2}, {1, 1, 1}, 2)}));
  ASSERT_TRUE(writer->commit().has_value());
  EXPECT_EQ(select(dir.path(), "h_bucket").size(), 3u);  // le=1, le=2, le=+Inf
  EXPECT_EQ(select(dir.path(), R"(h_bucket{le="+Inf"})")[0].samples.size(), 2u);
}

TEST(TsdbStore, ChunksAreCutAndReadBackWhole) {
  TempDir dir;
  ChunkLimits limits;
  limits.max_samples = 10;
  auto writer = open_writer(dir.path(), limits);
  for (int i = 0; i < 35; ++i) writer->append_metrics(snapshot(kStart + i * 1000, {counter("c", {{{}, 3.0 * i}})}));
  ASSERT_TRUE(writer->commit().has_value());
  EXPECT_EQ(count_rows(dir.path(), "SELECT count(*) FROM chunks"), 3);
  EXPECT_EQ(count_rows(dir.path(), "SELECT sum(samples) FROM chunks"), 30);
  auto series = select(dir.path(), "c");
  ASSERT_EQ(series[0].samples.size(), 35u);
  auto window = select(dir.path(), "c", kStart + 8000, kStart + 21'000);
  ASSERT_EQ(window[0].samples.size(), 14u);
  EXPECT_EQ(window[0].samples.front().time_ms, static_cast<int64_t>(kStart + 8000));
  EXPECT_EQ(window[0].samples.back().time_ms, static_cast<int64_t>(kStart + 21'000));
}

TEST(TsdbStore, ChunksSpanAtMostTheLimit) {
  TempDir dir;
  ChunkLimits limits;
  limits.max_span_ms = 60'000;
  auto writer = open_writer(dir.path(), limits);
  for (int i = 0; i < 10; ++i) writer->append_metrics(snapshot(kStart + i * 25'000, {counter("c", {{{}, 1.0 * i}})}));
  ASSERT_TRUE(writer->commit().has_value());
  EXPECT_EQ(count_rows(dir.path(), "SELECT max(end_ms - start_ms) FROM chunks"), 50'000);
}

TEST(TsdbStore, ValuesSwitchFromIntegerToFloatChunks) {
  TempDir dir;
  auto writer = open_writer(dir.path());
  std::vector<double> values = {1, 2, 3, 3.5, 4, 5, -0.0, NAN, INFINITY, 6};
  for (size_t i = 0; i < values.size(); ++i)
    writer->append_metrics(snapshot(kStart + i * 1000, {gauge("g", {{{}, values[i]}})}));
  ASSERT_TRUE(writer->commit().has_value());
  auto series = select(dir.path(), "g");
  ASSERT_EQ(series[0].samples.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::isnan(values[i]))
      EXPECT_TRUE(std::isnan(series[0].samples[i].value));
    else
      EXPECT_EQ(series[0].samples[i].value, values[i]) << i;
  }
  EXPECT_TRUE(std::signbit(series[0].samples[6].value));
}

TEST(TsdbStore, JitterWithinAThousandthOfTheIntervalIsAligned) {
  TempDir dir;
  auto writer = open_writer(dir.path());
  // 10 s interval: times within 10 ms of the expected one are stored as expected; a drift of
  // 40 ms is kept (and becomes the new interval).
  std::vector<int64_t> offsets = {0, 0, 3, -7, 10, 11, 40, 40, 40, -2};
  for (size_t i = 0; i < offsets.size(); ++i)
    writer->append_metrics(snapshot(kStart + i * 10'000 + offsets[i], {gauge("g", {{{}, 1.0 * i}})}));
  ASSERT_TRUE(writer->commit().has_value());
  auto series = select(dir.path(), "g");
  ASSERT_EQ(series[0].samples.size(), offsets.size());
  std::vector<int64_t> stored;
  for (const Sample& sample : series[0].samples) stored.push_back(sample.time_ms - static_cast<int64_t>(kStart));
  EXPECT_EQ(stored, (std::vector<int64_t>{0, 10'000, 20'000, 30'000, 40'000, 50'011, 60'040, 70'040, 80'040, 89'998}));
}

TEST(TsdbStore, RejectsSamplesNotAfterTheLastOne) {
  TempDir dir;
  auto writer = open_writer(dir.path());
  EXPECT_EQ(writer->append_metrics(snapshot(kStart + 5000, {counter("c", {{{}, 1}})})).accepted, 1u);
  EXPECT_EQ(writer->append_metrics(snapshot(kStart + 5000, {counter("c", {{{}, 2}})})).rejected, 1u);
  EXPECT_EQ(writer->append_metrics(snapshot(kStart + 1000, {counter("c", {{{}, 2}})})).rejected, 1u);
  // The same label set twice in one snapshot: the second is a duplicate.
  auto twice = writer->append_metrics(snapshot(kStart + 6000, {counter("c", {{{}, 3}, {{}, 4}})}));
  EXPECT_EQ(twice.accepted, 1u);
  EXPECT_EQ(twice.rejected, 1u);
}

TEST(TsdbStore, IdleSeriesHaveTheirChunksClosed) {
  TempDir dir;
  ChunkLimits limits;
  limits.idle_close_ms = 60'000;
  auto writer = open_writer(dir.path(), limits);
  writer->append_metrics(snapshot(kStart, {counter("gone", {{{}, 1}}), counter("alive", {{{}, 1}})}));
  ASSERT_TRUE(writer->commit().has_value());
  EXPECT_EQ(count_rows(dir.path(), "SELECT count(*) FROM chunks"), 0);
  writer->append_metrics(snapshot(kStart + 120'000, {counter("alive", {{{}, 2}})}));
  ASSERT_TRUE(writer->commit().has_value());
  EXPECT_EQ(count_rows(dir.path(), "SELECT count(*) FROM chunks"), 1);
  EXPECT_EQ(count_rows(dir.path(), "SELECT series_id FROM chunks"), 1);  // "gone", the first series
  EXPECT_EQ(select(dir.path(), "gone")[0].samples.size(), 1u);
}

TEST(TsdbStore, MetadataAndHostileLabelsSurvive) {
  TempDir dir;
  {
    auto writer = open_writer(dir.path());
    LabelSet labels = {{"comm", std::string("a\"b\\c\n\xff{}", 9)}, {"z", ""}};
    MetricFamily family = counter("weird", {{labels, 1}}, "owner_spec");
    family.help = "first help";
    writer->append_metrics(snapshot(kStart, {family}));
    family.help = "second \"help\"\n";
    family.unit = "bytes";
    family.series[0].value = 2;
    writer->append_metrics(snapshot(kStart + 1, {family}));
    ASSERT_TRUE(writer->commit().has_value());
  }
  TsdbReader reader = open_reader(dir.path());
  auto metrics = reader.metrics();
  ASSERT_EQ(metrics->size(), 1u);
  EXPECT_EQ((*metrics)[0].help, "second \"help\"\n");
  EXPECT_EQ((*metrics)[0].unit, "bytes");
  EXPECT_EQ((*metrics)[0].spec, "owner_spec");
  auto series = select(dir.path(), R"(weird{comm=~"a\"b[\\s\\S]*"})");
  ASSERT_EQ(series.size(), 1u);
  EXPECT_EQ(series[0].labels[0].second, std::string("a\"b\\c\n\xff{}", 9));
  EXPECT_EQ(series[0].samples.size(), 2u);
}

TEST(TsdbStore, OneWriterPerStore) {
  TempDir dir;
  auto writer = open_writer(dir.path());
  auto second = TsdbWriter::open(WriterOptions{.dir = dir.path()});
  ASSERT_FALSE(second.has_value());
  EXPECT_NE(second.error().message.find("in use by another process (pid " + std::to_string(getpid())), std::string::npos)
      << second.error().message;
  writer.reset();
  EXPECT_TRUE(TsdbWriter::open(WriterOptions{.dir = dir.path()}).has_value());
}

TEST(TsdbStore, ReadersSeeEachCommitWhileTheWriterWrites) {
  TempDir dir;
  auto writer = open_writer(dir.path());
  writer->append_metrics(snapshot(kStart, {counter("c", {{{}, 1}})}));
  ASSERT_TRUE(writer->commit().has_value());
  TsdbReader reader = open_reader(dir.path());
  auto selector = parse_selector("c");
  EXPECT_EQ((*reader.select(*selector, 0, INT64_MAX))[0].samples.size(), 1u);
  for (int i = 1; i < 20; ++i) {
    writer->append_metrics(snapshot(kStart + i * 1000, {counter("c", {{{}, 1.0 + i}})}));
    if (i % 5 == 0) {
      ASSERT_TRUE(writer->commit().has_value());
    }
  }
  // Appended but not committed samples are invisible; committed ones appear.
  EXPECT_EQ((*reader.select(*selector, 0, INT64_MAX))[0].samples.size(), 16u);
  ASSERT_TRUE(writer->commit().has_value());
  EXPECT_EQ((*reader.select(*selector, 0, INT64_MAX))[0].samples.size(), 20u);
}

TEST(TsdbStore, EventsInBlocksPerSpec) {
  TempDir dir;
  uint64_t base = kStart * 1'000'000;
  std::string padding(300, 'x');
  {
    auto writer = open_writer(dir.path());
    for (int i = 0; i < 3000; ++i)  // ~1 MB: several full blocks and an open one
      writer->append_event(base + i * 1000, "busy", fmt::format(R"({{"seq":{},"pad":"{}"}})", i, padding));
    writer->append_event(base + 500, "quiet", R"({"seq":0})");
    auto committed = writer->commit();
    ASSERT_TRUE(committed.has_value());
    EXPECT_EQ(committed->records, 3001u);
    writer->append_event(base + 3000 * 1000, "busy", R"({"seq":3000})");
    ASSERT_TRUE(writer->commit().has_value());
  }
  EXPECT_GE(count_rows(dir.path(), "SELECT count(*) FROM event_blocks WHERE spec = 'busy'"), 4);
  EXPECT_LT(count_rows(dir.path(), "SELECT sum(length(data)) FROM event_blocks"),
            count_rows(dir.path(), "SELECT sum(raw_bytes) FROM event_blocks") / 10);
  {
    auto writer = open_writer(dir.path());  // a restart starts new blocks after the old ones
    writer->append_event(base + 3001 * 1000, "busy", R"({"seq":3001})");
    ASSERT_TRUE(writer->commit().has_value());
  }
  TsdbReader reader = open_reader(dir.path());
  auto all = reader.events(EventQuery{.spec = "busy"});
  ASSERT_TRUE(all.has_value()) << all.error().message;
  ASSERT_EQ(all->records.size(), 3002u);
  for (int i = 0; i < 3002; ++i) {
    ASSERT_EQ(all->records[i].time_ns, static_cast<int64_t>(base + i * 1000));
    auto envelope = nlohmann::json::parse(all->records[i].line);
    ASSERT_EQ(envelope["seq"], i);
  }
  EXPECT_FALSE(all->truncated);
  auto both = reader.events(EventQuery{.from_ns = static_cast<int64_t>(base), .to_ns = static_cast<int64_t>(base + 1000), .limit = 0});
  ASSERT_EQ(both->records.size(), 3u);  // busy 0, quiet (500 ns), busy 1
  EXPECT_EQ(both->records[1].spec, "quiet");
  auto limited = reader.events(EventQuery{.limit = 10});
  ASSERT_EQ(limited->records.size(), 10u);
  EXPECT_TRUE(limited->truncated);
  EXPECT_EQ(limited->records[9].time_ns, static_cast<int64_t>(base + 8 * 1000));
  auto specs = reader.event_specs();
  ASSERT_EQ(specs->size(), 2u);
  EXPECT_EQ((*specs)[0].spec, "busy");
  EXPECT_EQ((*specs)[0].records, 3002u);
  EXPECT_EQ((*specs)[1].records, 1u);
}

TEST(TsdbReader, MissingStoreSaysHowToPointAtOne) {
  TempDir dir;
  auto reader = TsdbReader::open(dir.path());
  ASSERT_FALSE(reader.has_value());
  EXPECT_NE(reader.error().message.find("--db DIR"), std::string::npos) << reader.error().message;
  EXPECT_FALSE(std::filesystem::exists(dir.path()));  // reading creates nothing
}

// The sink: queue, thread, flush and counters, through the output description as the agent uses it.
RecordBatch make_batch(const RecordOrigin& origin, uint64_t first_seq, size_t count, std::string& jsonl) {
  RecordBatch batch;
  std::string origin_text = origin_json(origin, "host");
  for (size_t i = 0; i < count; ++i) {
    Record record;
    record.time_ns = wall_clock_ns();
    record.origin = &origin;
    record.pid = record.tgid = 42;
    record.fields_offset = static_cast<uint32_t>(batch.arena.size());
    batch.arena += fmt::format(R"({{"seq":{}}})", first_seq + i);
    record.fields_length = static_cast<uint32_t>(batch.arena.size() - record.fields_offset);
    batch.records.push_back(record);
    append_json_line(record, batch.fields(record), origin_text, jsonl);
  }
  return batch;
}

TEST(TsdbSink, WritesEventsAndMetricsThroughTheOutputDescription) {
  TempDir dir;
  auto sink = make_sink("tsdb:" + dir.path() + ",flush=10s,retention=1d,max_size=64M");
  ASSERT_TRUE(sink.has_value()) << sink.error().message;
  EXPECT_EQ((*sink)->kind(), "tsdb");
  EXPECT_TRUE((*sink)->accepts_metrics());
  RecordOrigin origin{"my_spec", "prog", "chan", "builtin:x"};
  for (int b = 0; b < 10; ++b) {
    std::string jsonl;
    RecordBatch batch = make_batch(origin, b * 100, 100, jsonl);
    (*sink)->write(batch, jsonl);
  }
  uint64_t now_ms = wall_clock_ns() / 1'000'000;
  (*sink)->write_metrics(snapshot(now_ms, {counter("records", {{{{"spec", "my_spec"}}, 1000}}),
                                           histogram("lat", {}, {1, 2}, {1, 2, 3}, 9)}));
  (*sink)->flush();  // long before the 10 s flush interval
  EXPECT_EQ((*sink)->queue_depth(), 0u);
  EXPECT_EQ((*sink)->counters().records.load(), 1000u);
  EXPECT_EQ((*sink)->counters().metric_samples.load(), 6u);
  EXPECT_EQ((*sink)->counters().failures.load(), 0u);
  EXPECT_GT((*sink)->counters().bytes.load(), 1000u * 50);
  TsdbReader reader = open_reader(dir.path());
  auto events = reader.events(EventQuery{.spec = "my_spec"});
  ASSERT_EQ(events->records.size(), 1000u);
  auto envelope = nlohmann::json::parse(events->records[999].line);
  EXPECT_EQ(envelope["data"]["seq"], 999);
  EXPECT_EQ(envelope["spec"], "my_spec");
  EXPECT_EQ(select(dir.path(), "records_total").size(), 1u);
  (*sink)->stop();
  (*sink)->stop();  // idempotent
  std::string jsonl;
  RecordBatch late = make_batch(origin, 0, 3, jsonl);
  (*sink)->write(late, jsonl);  // after stop: counted, not written
  EXPECT_EQ((*sink)->counters().failures.load(), 3u);
}

TEST(TsdbSink, CommitsEveryFlushIntervalWithoutBeingAsked) {
  TempDir dir;
  auto sink = make_sink("tsdb:" + dir.path() + ",flush=100ms");
  ASSERT_TRUE(sink.has_value());
  uint64_t now_ms = wall_clock_ns() / 1'000'000;
  (*sink)->write_metrics(snapshot(now_ms, {gauge("g", {{{}, 5}})}));
  for (int i = 0; i < 100 && (*sink)->counters().metric_samples.load() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ((*sink)->counters().metric_samples.load(), 1u);
  EXPECT_EQ(select(dir.path(), "g").size(), 1u);
}

TEST(TsdbSink, DropsWhatDoesNotFitTheQueueAndCountsIt) {
  TempDir dir;
  auto opened = TsdbSink::open(TsdbSinkOptions{.writer = {.dir = dir.path()}, .queue_bytes = 64 << 10});
  ASSERT_TRUE(opened.has_value());
  TsdbSink& sink = **opened;
  RecordOrigin origin{"s", "p", "c", "x"};
  std::string jsonl;
  RecordBatch big = make_batch(origin, 0, 2000, jsonl);  // > 64 KiB on its own
  sink.write(big, jsonl);
  EXPECT_EQ(sink.counters().failures.load(), 2000u);
  std::vector<MetricFamily> families;
  std::vector<std::pair<LabelSet, double>> many;
  for (int i = 0; i < 2000; ++i) many.push_back({{{"i", std::to_string(i)}}, 1});
  sink.write_metrics(snapshot(wall_clock_ns() / 1'000'000, {counter("c", many)}));
  EXPECT_EQ(sink.counters().metric_failures.load(), 2000u);
  std::string small_jsonl;
  RecordBatch small = make_batch(origin, 0, 10, small_jsonl);
  sink.write(small, small_jsonl);
  sink.flush();
  EXPECT_EQ(sink.counters().records.load(), 10u);
}

TEST(TsdbSink, OptionErrorsAreClear) {
  TempDir dir;
  for (auto [description, expected] :
       std::vector<std::pair<std::string, std::string>>{{",bogus=1", "bogus"},
                                                        {",flush=0", "flush must be more than 0"},
                                                        {",retention=soon", "not a duration"},
                                                        {",max_size=big", "not a size"},
                                                        {",queue=1", "queue must be at least"}}) {
    auto sink = make_sink("tsdb:" + dir.path() + description);
    ASSERT_FALSE(sink.has_value()) << description;
    EXPECT_NE(sink.error().message.find(expected), std::string::npos) << sink.error().message;
  }
  auto file_in_the_way = make_sink("tsdb:/proc/version/x");
  ASSERT_FALSE(file_in_the_way.has_value());
  EXPECT_NE(file_in_the_way.error().message.find("/proc/version/x"), std::string::npos) << file_in_the_way.error().message;
}

}  // namespace
}  // namespace ea::tsdb
