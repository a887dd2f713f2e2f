// Retention of the embedded store: by age, by size, orphaned series, giving pages back.
#include <gtest/gtest.h>

#include <filesystem>

#include "tsdb/schema.h"
#include "tsdb/tsdb_defaults.h"
#include "tsdb/tsdb_reader.h"
#include "tsdb/tsdb_writer.h"
#include "tsdb_test_util.h"

namespace ea::tsdb {
namespace {

using namespace testing;

constexpr int64_t kDayMs = 86'400'000;

int64_t query_int(const std::string& dir, const std::string& sql) {
  auto db = open_store_for_reading(dir + "/" + kDatabaseFileName);
  EXPECT_TRUE(db.has_value());
  auto value = db->query_int(sql);
  EXPECT_TRUE(value.has_value()) << value.error().message;
  return *value;
}

std::vector<SeriesSamples> select_all(const std::string& dir, std::string_view selector) {
  auto reader = TsdbReader::open(dir);
  EXPECT_TRUE(reader.has_value());
  auto parsed = parse_selector(selector);
  auto series = reader->select(*parsed, INT64_MIN, INT64_MAX);
  EXPECT_TRUE(series.has_value());
  return *series;
}

TEST(TsdbRetention, DeletesWhatIsOlderThanTheRetention) {
  TempDir dir;
  const int64_t now = 1'750'000'000'000;
  ChunkLimits limits;
  limits.max_samples = 10;
  auto writer = TsdbWriter::open(WriterOptions{.dir = dir.path(), .retention = std::chrono::days(15)}, limits);
  ASSERT_TRUE(writer.has_value());
  // Old series only seen 20 days ago; a live one from 20 days ago until now, one sample a day.
  for (int day = 20; day >= 0; --day) {
    int64_t time = now - day * kDayMs;
    std::vector<MetricFamily> families = {counter("live", {{{}, 100.0 - day}})};
    if (day >= 18) families.push_back(counter("old", {{{{"k", "v"}}, 1.0 * day}}));
    (*writer)->append_metrics(snapshot(static_cast<uint64_t>(time), families));
  }
  ASSERT_TRUE((*writer)->commit().has_value());
  auto retained = (*writer)->enforce_retention(now);
  ASSERT_TRUE(retained.has_value()) << retained.error().message;
  EXPECT_GT(retained->chunks_deleted, 0u);
  EXPECT_EQ(retained->series_deleted, 1u);  // "old": nothing left
  ASSERT_TRUE((*writer)->commit().has_value());
  auto live = select_all(dir.path(), "live");
  ASSERT_EQ(live.size(), 1u);
  // Whole chunks go: every sample left is from a chunk that ended within the retention.
  EXPECT_GE(live[0].samples.back().time_ms, now);
  EXPECT_LE(live[0].samples.size(), 16u + 10u);
  EXPECT_GE(live[0].samples.size(), 15u);
  EXPECT_TRUE(select_all(dir.path(), "old").empty());
  EXPECT_EQ(query_int(dir.path(), "SELECT count(*) FROM metrics WHERE name = 'old'"), 0);
  // The writer goes on after the clean-up, even with the deleted series coming back.
  (*writer)->append_metrics(snapshot(static_cast<uint64_t>(now + 1000), {counter("live", {{{}, 101}}), counter("old", {{{{"k", "v"}}, 5}})}));
  ASSERT_TRUE((*writer)->commit().has_value());
  EXPECT_EQ(select_all(dir.path(), "old").size(), 1u);
  EXPECT_EQ(select_all(dir.path(), "live")[0].samples.back().value, 101);
}

TEST(TsdbRetention, OldEventBlocksGoButTheOpenOneStays) {
  TempDir dir;
  const int64_t now = 1'750'000'000'000;
  {
    auto writer = TsdbWriter::open(WriterOptions{.dir = dir.path()});
    ASSERT_TRUE(writer.has_value());
    (*writer)->append_event(static_cast<uint64_t>(now - 30 * kDayMs) * 1'000'000, "s", R"({"old":1})");
    ASSERT_TRUE((*writer)->commit().has_value());
  }
  auto writer = TsdbWriter::open(WriterOptions{.dir = dir.path(), .retention = std::chrono::days(7)});
  ASSERT_TRUE(writer.has_value());
  (*writer)->append_event(static_cast<uint64_t>(now) * 1'000'000, "s", R"({"new":1})");
  ASSERT_TRUE((*writer)->commit().has_value());
  auto retained = (*writer)->enforce_retention(now);
  ASSERT_TRUE(retained.has_value());
  EXPECT_EQ(retained->blocks_deleted, 1u);
  EXPECT_EQ(query_int(dir.path(), "SELECT count(*) FROM event_blocks"), 1);
}

TEST(TsdbRetention, KeepsTheDatabaseUnderMaxSizeDeletingOldestFirst) {
  TempDir dir;
  const uint64_t max_size = 1ull << 20;
  ChunkLimits limits;
  limits.max_samples = 60;
  auto writer = TsdbWriter::open(WriterOptions{.dir = dir.path(), .max_size = max_size}, limits);
  ASSERT_TRUE(writer.has_value());
  const int64_t start = 1'750'000'000'000;
  uint64_t seed = 1;
  // ~1.5 MB of incompressible float samples and events over simulated hours.
  for (int step = 0; step < 1500; ++step) {
    int64_t time = start + step * 10'000;
    std::vector<std::pair<LabelSet, double>> series;
    for (int s = 0; s < 100; ++s) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      series.push_back({{{"s", std::to_string(s)}}, static_cast<double>(seed >> 11) / 3.0});
    }
    (*writer)->append_metrics(snapshot(static_cast<uint64_t>(time), {gauge("noise", series)}));
    for (int e = 0; e < 5; ++e) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      (*writer)->append_event(static_cast<uint64_t>(time) * 1'000'000 + e, "s", fmt::format(R"({{"r":{}}})", seed));
    }
    if (step % 100 == 99) {
      ASSERT_TRUE((*writer)->commit().has_value());
      ASSERT_TRUE((*writer)->enforce_retention(start + step * 10'000).has_value());
    }
  }
  ASSERT_TRUE((*writer)->commit().has_value());
  auto retained = (*writer)->enforce_retention(start);
  ASSERT_TRUE(retained.has_value());
  EXPECT_FALSE(retained->over_size);
  int64_t used = (query_int(dir.path(), "PRAGMA page_count") - query_int(dir.path(), "PRAGMA freelist_count")) *
                 query_int(dir.path(), "PRAGMA page_size");
  EXPECT_LE(used, static_cast<int64_t>(max_size));
  EXPECT_GT(used, static_cast<int64_t>(max_size) / 2);  // not everything went
  // The newest data is all there; the oldest is gone.
  auto noise = select_all(dir.path(), R"(noise{s="7"})");
  ASSERT_EQ(noise.size(), 1u);
  EXPECT_EQ(noise[0].samples.back().time_ms, start + 1499 * 10'000);
  EXPECT_GT(noise[0].samples.front().time_ms, start);
  auto reader = TsdbReader::open(dir.path());
  auto events = reader->events(EventQuery{.spec = "s", .from_ns = (start + 1499 * 10'000) * 1'000'000});
  EXPECT_EQ(events->records.size(), 5u);
  // The file itself stays near the bound (free pages are given back when it is over).
  EXPECT_LE(std::filesystem::file_size(dir.path() + "/" + kDatabaseFileName), max_size + (max_size / 4));
}

TEST(TsdbRetention, GivesPagesBackAfterALargeDeletion) {
  TempDir dir;
  const int64_t now = 1'750'000'000'000;
  auto writer = TsdbWriter::open(WriterOptions{.dir = dir.path(), .retention = std::chrono::days(1)});
  ASSERT_TRUE(writer.has_value());
  uint64_t seed = 7;
  for (int i = 0; i < 100'000; ++i) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    (*writer)->append_event(static_cast<uint64_t>(now - 10 * kDayMs) * 1'000'000 + i, "s", fmt::format(R"({{"r":"{:x}{}"}})", seed, seed * 3));
  }
  ASSERT_TRUE((*writer)->commit().has_value());
  (*writer)->append_event(static_cast<uint64_t>(now) * 1'000'000, "t", "{}");
  ASSERT_TRUE((*writer)->commit().has_value());
  int64_t pages_before = query_int(dir.path(), "PRAGMA page_count");
  auto retained = (*writer)->enforce_retention(now);
  ASSERT_TRUE(retained.has_value());
  EXPECT_GT(retained->blocks_deleted, 0u);
  EXPECT_GT(retained->pages_released, 0u);
  EXPECT_LT(query_int(dir.path(), "PRAGMA page_count"), pages_before / 2);
}

}  // namespace
}  // namespace ea::tsdb
