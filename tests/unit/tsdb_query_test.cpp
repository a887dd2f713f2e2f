// `ebpf-agent query` end to end on a store written by the real writer: listing, samples and
// events as table and JSON, and the errors a user meets.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/query_command.h"
#include "core/record.h"
#include "tsdb/tsdb_writer.h"
#include "tsdb_test_util.h"

namespace ea::tsdb {
namespace {

using namespace testing;

struct QueryRun {
  int status = -1;
  std::string out, err;
};

QueryRun run_query(std::vector<std::string> args) {
  CLI::App app;
  cli::add_query_command(app);
  args.insert(args.begin(), {"ebpf-agent", "query"});
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  QueryRun run;
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    run.status = app.exit(e);
  }
  run.out = ::testing::internal::GetCapturedStdout();
  run.err = ::testing::internal::GetCapturedStderr();
  return run;
}

class TsdbQuery : public ::testing::Test {
 protected:
  void SetUp() override {
    auto writer = TsdbWriter::open(WriterOptions{.dir = dir_.path()});
    ASSERT_TRUE(writer.has_value());
    now_ms_ = static_cast<int64_t>(wall_clock_ns() / 1'000'000);
    for (int i = 0; i < 6; ++i) {
      int64_t time = now_ms_ - (5 - i) * 10'000;
      (*writer)->append_metrics(snapshot(static_cast<uint64_t>(time),
                                         {counter("ebpf_agent_records", {{{{"spec", "a"}}, 10.0 * i}, {{{"spec", "b"}}, 1.0 * i}}, ""),
                                          gauge("process_resident_memory", {{{}, i == 5 ? INFINITY : 1024.0 * i}}),
                                          histogram("lat_seconds", {}, {0.5}, {uint64_t(i), 1}, 0.25 * i)}));
      (*writer)->append_event(static_cast<uint64_t>(time) * 1'000'000, "oom",
                              fmt::format(R"({{"time":{},"spec":"oom","program":"oom","pid":{},"comm":"stress","data":{{"i":{}}}}})",
                                          time * 1'000'000, 100 + i, i));
    }
    ASSERT_TRUE((*writer)->commit().has_value());
  }
  TempDir dir_;
  int64_t now_ms_ = 0;
};

TEST_F(TsdbQuery, ListsMetricsAndEventSpecs) {
  QueryRun table = run_query({"--db", dir_.path()});
  EXPECT_EQ(table.status, 0) << table.err;
  EXPECT_NE(table.out.find("ebpf_agent_records"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("histogram"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("oom"), std::string::npos) << table.out;
  QueryRun json = run_query({"--db", dir_.path(), "-o", "json"});
  ASSERT_EQ(json.status, 0) << json.err;
  auto parsed = nlohmann::json::parse(json.out);
  ASSERT_EQ(parsed["metrics"].size(), 3u);
  EXPECT_EQ(parsed["metrics"][0]["name"], "ebpf_agent_records");
  EXPECT_EQ(parsed["metrics"][0]["kind"], "counter");
  EXPECT_EQ(parsed["metrics"][0]["series"], 2);
  EXPECT_EQ(parsed["metrics"][0]["samples"], 12);
  EXPECT_EQ(parsed["metrics"][1]["name"], "lat_seconds");
  EXPECT_EQ(parsed["metrics"][1]["samples"], 6 * 4);  // le=0.5, le=+Inf, _sum, _count
  EXPECT_EQ(parsed["events"][0]["spec"], "oom");
  EXPECT_EQ(parsed["events"][0]["records"], 6);
}

TEST_F(TsdbQuery, PrintsSamplesOfMatchingSeries) {
  QueryRun table = run_query({"--db", dir_.path(), R"(ebpf_agent_records_total{spec=~"a|c"})"});
  EXPECT_EQ(table.status, 0) << table.err;
  EXPECT_NE(table.out.find(R"(ebpf_agent_records_total{spec="a"}  (counter))"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("  50\n"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("1 series, 6 samples"), std::string::npos) << table.out;
  QueryRun json = run_query({"--db", dir_.path(), "process_resident_memory", "--from", "-25s", "-o", "json"});
  ASSERT_EQ(json.status, 0) << json.err;
  auto parsed = nlohmann::json::parse(json.out);
  ASSERT_EQ(parsed.size(), 1u);
  EXPECT_EQ(parsed[0]["name"], "process_resident_memory");
  EXPECT_EQ(parsed[0]["unit"], "bytes");
  ASSERT_GE(parsed[0]["samples"].size(), 2u);
  ASSERT_LE(parsed[0]["samples"].size(), 3u);
  EXPECT_EQ(parsed[0]["samples"].back()[1], "+Inf");  // not a JSON number
  EXPECT_EQ(parsed[0]["samples"].back()[0], now_ms_);
  QueryRun none = run_query({"--db", dir_.path(), "no_such_metric"});
  EXPECT_EQ(none.status, 0);
  EXPECT_NE(none.out.find("no samples of 'no_such_metric'"), std::string::npos) << none.out;
  QueryRun buckets = run_query({"--db", dir_.path(), "lat_seconds_bucket", "-o", "json"});
  EXPECT_EQ(nlohmann::json::parse(buckets.out).size(), 2u);
}

TEST_F(TsdbQuery, PrintsEvents) {
  QueryRun json = run_query({"--db", dir_.path(), "--events", "--spec", "oom", "-o", "json", "--from", "0"});
  ASSERT_EQ(json.status, 0) << json.err;
  std::istringstream lines(json.out);
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) EXPECT_EQ(nlohmann::json::parse(line)["data"]["i"], count++);
  EXPECT_EQ(count, 6);
  QueryRun table = run_query({"--db", dir_.path(), "--events", "--limit", "2"});
  ASSERT_EQ(table.status, 0) << table.err;
  EXPECT_NE(table.out.find("stress"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(R"({"i":1})"), std::string::npos) << table.out;
  EXPECT_EQ(table.out.find(R"({"i":2})"), std::string::npos) << table.out;
  EXPECT_NE(table.err.find("first 2 records shown"), std::string::npos) << table.err;
  QueryRun other = run_query({"--db", dir_.path(), "--events", "--spec", "nothing", "-o", "json"});
  EXPECT_EQ(other.status, 0);
  EXPECT_EQ(other.out, "");
}

TEST_F(TsdbQuery, ErrorsSayWhatAndHow) {
  QueryRun selector = run_query({"--db", dir_.path(), R"(m{a="b" c="d"})"});
  EXPECT_EQ(selector.status, 2);
  EXPECT_NE(selector.err.find("bad selector"), std::string::npos) << selector.err;
  EXPECT_NE(selector.err.find("column 9"), std::string::npos) << selector.err;
  QueryRun time = run_query({"--db", dir_.path(), "m", "--from", "yesterday"});
  EXPECT_EQ(time.status, 2);
  EXPECT_NE(time.err.find("--from 'yesterday' is not a time"), std::string::npos) << time.err;
  QueryRun order = run_query({"--db", dir_.path(), "m", "--from", "now", "--to", "-1h"});
  EXPECT_EQ(order.status, 2);
  EXPECT_NE(order.err.find("is after --to"), std::string::npos) << order.err;
  QueryRun both = run_query({"--db", dir_.path(), "m", "--events"});
  EXPECT_EQ(both.status, 2);
  QueryRun missing = run_query({"--db", dir_.path() + "/nowhere"});
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.err.find("no embedded store in " + dir_.path() + "/nowhere"), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("--db DIR"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace ea::tsdb
