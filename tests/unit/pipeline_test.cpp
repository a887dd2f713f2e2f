// Fan-out, shards, envelope and file sink: the user-space pipeline without the kernel.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include <nlohmann/json.hpp>

#include "pipeline/fanout.h"
#include "pipeline/shard_pool.h"
#include "sink/file_sink.h"

namespace ea {
namespace {

struct TestRecord {
  uint32_t tgid;
  uint32_t sequence;
};

// Emits {"tgid":..,"seq":..} and remembers which shard instance saw it.
class SequenceProcessor : public Processor {
 public:
  explicit SequenceProcessor(int shard) : shard_(shard) {}
  ProcessOutcome process(std::span<const std::byte> input, RecordMeta& meta, std::string& fields) override {
    if (input.size() != sizeof(TestRecord)) {
      error_ = "bad size";
      return ProcessOutcome::Failed;
    }
    TestRecord record;
    std::memcpy(&record, input.data(), sizeof(record));
    if (record.sequence % 10 == 9) return ProcessOutcome::Skipped;
    meta.tgid = record.tgid;
    fields += fmt::format("{{\"tgid\":{},\"seq\":{},\"shard\":{}}}", record.tgid, record.sequence, shard_);
    return ProcessOutcome::Emitted;
  }
  std::string_view error() const override { return error_; }

 private:
  int shard_;
  std::string error_;
};

class CaptureSink : public Sink {
 public:
  std::string name() const override { return "capture"; }
  void write(const RecordBatch& batch, std::string_view jsonl) override {
    std::lock_guard lock(mutex);
    for (const Record& record : batch.records) fields.emplace_back(batch.fields(record));
    lines.append(jsonl);
  }
  void flush() override {}
  void stop() override {}
  std::mutex mutex;
  std::vector<std::string> fields;
  std::string lines;
};

std::shared_ptr<Route> make_test_route(unsigned shards, DispatchStrategy strategy, std::shared_ptr<Sink> sink) {
  auto route = std::make_shared<Route>();
  route->origin = {"spec", "prog", "chan", "test"};
  route->origin.processor = "test";
  route->strategy = strategy;
  route->key = KeyField{offsetof(TestRecord, tgid), sizeof(uint32_t)};
  for (unsigned i = 0; i < shards; ++i) route->processors.push_back(std::make_unique<SequenceProcessor>(i));
  route->sinks = std::make_shared<SinkSet>(SinkSet{std::move(sink)});
  return route;
}

void feed(ChannelFanout& fanout, uint32_t tgid, uint32_t sequence) {
  TestRecord record{tgid, sequence};
  fanout.on_record(std::as_bytes(std::span(&record, 1)));
}

TEST(Pipeline, HashDispatchKeepsPerKeyOrderAcrossShards) {
  auto sink = std::make_shared<CaptureSink>();
  ShardPool pool(4);
  auto route = make_test_route(4, DispatchStrategy::Hash, sink);
  ChannelFanout fanout(pool, {route});
  constexpr uint32_t kKeys = 50, kPerKey = 400;
  for (uint32_t seq = 0; seq < kPerKey; ++seq) {
    for (uint32_t key = 0; key < kKeys; ++key) feed(fanout, key, seq);
    if (seq % 37 == 0) fanout.flush();
  }
  fanout.flush();
  pool.drain();

  std::map<uint32_t, int64_t> last_seq;
  std::map<uint32_t, std::set<int>> shards_of_key;
  std::set<int> shards_used;
  for (const std::string& text : sink->fields) {
    auto json = nlohmann::json::parse(text);
    uint32_t key = json["tgid"];
    int64_t seq = json["seq"];
    auto [it, inserted] = last_seq.try_emplace(key, -1);
    EXPECT_GT(seq, it->second) << "key " << key << " out of order";
    it->second = seq;
    shards_of_key[key].insert(json["shard"].get<int>());
    shards_used.insert(json["shard"].get<int>());
  }
  EXPECT_EQ(route->counters.received, kKeys * kPerKey);
  EXPECT_EQ(route->counters.skipped, kKeys * kPerKey / 10);
  EXPECT_EQ(route->counters.emitted, kKeys * kPerKey - kKeys * kPerKey / 10);
  EXPECT_EQ(sink->fields.size(), route->counters.emitted);
  for (const auto& [key, shards] : shards_of_key) EXPECT_EQ(shards.size(), 1u) << "key " << key << " split";
  EXPECT_GT(shards_used.size(), 1u) << "all keys landed on one shard";
}

TEST(Pipeline, RoundRobinUsesEveryShard) {
  auto sink = std::make_shared<CaptureSink>();
  ShardPool pool(3);
  auto route = make_test_route(3, DispatchStrategy::RoundRobin, sink);
  ChannelFanout fanout(pool, {route});
  for (uint32_t seq = 0; seq < 3000; ++seq) feed(fanout, 7, seq * 10);  // multiples of 10: none skipped
  fanout.flush();
  pool.drain();
  std::map<int, int> per_shard;
  for (const std::string& text : sink->fields) per_shard[nlohmann::json::parse(text)["shard"].get<int>()]++;
  ASSERT_EQ(per_shard.size(), 3u);
  for (const auto& [shard, count] : per_shard) EXPECT_EQ(count, 1000);
}

TEST(Pipeline, FailedRecordsAreCountedNotEmitted) {
  auto sink = std::make_shared<CaptureSink>();
  ShardPool pool(1);
  auto route = make_test_route(1, DispatchStrategy::Hash, sink);
  ChannelFanout fanout(pool, {route});
  uint8_t short_record[3] = {1, 2, 3};
  fanout.on_record(std::as_bytes(std::span(short_record)));
  feed(fanout, 1, 0);
  fanout.flush();
  pool.drain();
  EXPECT_EQ(route->counters.failed, 1u);
  EXPECT_EQ(route->counters.emitted, 1u);
  ASSERT_EQ(sink->fields.size(), 1u);
}

TEST(Pipeline, OneChannelFeedsSeveralRoutes) {
  auto first = std::make_shared<CaptureSink>();
  auto second = std::make_shared<CaptureSink>();
  ShardPool pool(2);
  ChannelFanout fanout(pool, {make_test_route(2, DispatchStrategy::Hash, first),
                              make_test_route(2, DispatchStrategy::RoundRobin, second)});
  for (uint32_t seq = 0; seq < 100; ++seq) feed(fanout, seq, 0);
  fanout.flush();
  pool.drain();
  EXPECT_EQ(first->fields.size(), 100u);
  EXPECT_EQ(second->fields.size(), 100u);
}

TEST(Envelope, JsonLineCarriesIdentityAndEscapes) {
  RecordOrigin origin{"sp\"ec", "prog", "chan"};
  Record record;
  record.time_ns = 1234;
  record.origin = &origin;
  record.pid = 10;
  record.tgid = 9;
  std::strcpy(record.comm, "a\nb");
  std::string line;
  append_json_line(record, R"({"x":1})", origin_json(origin, "host"), line);
  ASSERT_TRUE(line.ends_with("\n"));
  auto json = nlohmann::json::parse(line);
  EXPECT_EQ(json["time"], 1234);
  EXPECT_EQ(json["host"], "host");
  EXPECT_EQ(json["spec"], "sp\"ec");
  EXPECT_EQ(json["processor"], "");
  EXPECT_EQ(json["pid"], 10);
  EXPECT_EQ(json["tgid"], 9);
  EXPECT_EQ(json["comm"], "a\nb");
  EXPECT_EQ(json["data"]["x"], 1);
}

TEST(Envelope, UnknownIdentityIsOmitted) {
  RecordOrigin origin{"s", "p", "c"};
  Record record;
  record.origin = &origin;
  std::string line;
  append_json_line(record, "", origin_json(origin, "h"), line);
  auto json = nlohmann::json::parse(line);
  EXPECT_FALSE(json.contains("pid"));
  EXPECT_FALSE(json.contains("comm"));
  EXPECT_TRUE(json["data"].is_object());
}

TEST(FileSink, RotatesBySizeAndKeepsN) {
  auto dir = std::filesystem::temp_directory_path() / ("ea-filesink-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::string path = (dir / "out.jsonl").string();
  auto sink = FileSink::open({.path = path, .max_bytes = 1000, .keep = 2, .flush_interval_ms = 10});
  ASSERT_TRUE(sink) << sink.error().message;
  RecordBatch batch;
  batch.records.resize(1);
  std::string line(99, 'x');
  line += '\n';
  for (int i = 0; i < 50; ++i) {
    (*sink)->write(batch, line);
    (*sink)->flush();
  }
  (*sink)->stop();
  EXPECT_TRUE(std::filesystem::exists(path));
  EXPECT_TRUE(std::filesystem::exists(path + ".1"));
  EXPECT_TRUE(std::filesystem::exists(path + ".2"));
  EXPECT_FALSE(std::filesystem::exists(path + ".3"));
  for (const char* suffix : {"", ".1", ".2"}) EXPECT_LE(std::filesystem::file_size(path + suffix), 1000u);
  EXPECT_EQ((*sink)->counters().records, 50u);
  EXPECT_EQ((*sink)->counters().failures, 0u);
  std::filesystem::remove_all(dir);
}

TEST(FileSink, BadOptionsAreRefusedWithHelp) {
  auto sink = make_sink("file:/tmp/x.jsonl,max_bytes=lots");
  ASSERT_FALSE(sink);
  EXPECT_NE(sink.error().message.find("not a size"), std::string::npos);
  auto unknown = make_sink("carrier-pigeon");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("unknown output kind 'carrier-pigeon'"), std::string::npos);
  EXPECT_NE(unknown.error().message.find("file:PATH"), std::string::npos);
}

}  // namespace
}  // namespace ea
