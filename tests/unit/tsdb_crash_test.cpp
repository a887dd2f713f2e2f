// What a crash leaves: the database and its WAL as they are after any commit. Copies taken after
// each commit (while the writer keeps going) must open, hold exactly what was committed, and take
// more samples without duplicates or overlapping chunks: open chunks come back from their
// checkpoints plus the sample log.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "tsdb/label_text.h"
#include "tsdb/schema.h"
#include "tsdb/tsdb_defaults.h"
#include "tsdb/tsdb_reader.h"
#include "tsdb/tsdb_writer.h"
#include "tsdb_test_util.h"

namespace ea::tsdb {
namespace {

using namespace testing;
namespace fs = std::filesystem;

constexpr int64_t kStart = 1'700'000'000'000;

// Series with different habits: steady, every third snapshot, switching to floats, histogram.
MetricsSnapshot snapshot_at(int step) {
  std::vector<MetricFamily> families;
  families.push_back(counter("steady", {{{{"k", "a"}}, 10.0 * step}, {{{"k", "b"}}, 3.0 * step}}));
  if (step % 3 == 0) families.push_back(counter("sparse", {{{}, 1.0 * step}}));
  families.push_back(gauge("mixed", {{{}, step < 20 ? 1.0 * step : step + 0.5}}));
  families.push_back(histogram("h", {}, {1, 10}, {uint64_t(step), uint64_t(2 * step), 1}, 0.1 * step));
  return snapshot(kStart + step * 1000, families);
}

std::map<std::string, std::vector<Sample>> everything(const std::string& dir) {
  auto reader = TsdbReader::open(dir);
  EXPECT_TRUE(reader.has_value()) << (reader ? "" : reader.error().message);
  std::map<std::string, std::vector<Sample>> out;
  for (const char* name : {"steady", "sparse", "mixed", "h"}) {
    auto series = reader->select(*parse_selector(name), INT64_MIN, INT64_MAX);
    EXPECT_TRUE(series.has_value()) << (series ? "" : series.error().message);
    for (const SeriesSamples& s : *series) out[s.name + canonical_labels(s.labels)] = s.samples;
  }
  return out;
}

void copy_store(const std::string& from, const std::string& to) {
  fs::create_directories(to);
  for (const char* suffix : {"", "-wal"}) {
    std::string source = from + "/" + kDatabaseFileName + suffix;
    if (fs::exists(source)) fs::copy_file(source, to + "/" + kDatabaseFileName + suffix);
  }
}

class TsdbCrash : public ::testing::TestWithParam<unsigned> {};

TEST_P(TsdbCrash, EveryCommittedStateReopensWhole) {
  TempDir live, copies;
  ChunkLimits limits;
  limits.max_samples = 7;  // chunks close between checkpoints
  limits.commits_per_checkpoint = GetParam();
  std::vector<int> committed_steps;
  {
    auto writer = TsdbWriter::open(WriterOptions{.dir = live.path()}, limits);
    ASSERT_TRUE(writer.has_value());
    int step = 0;
    for (int commit = 0; commit < 40; ++commit) {
      for (int i = 0; i < 1 + commit % 3; ++i) (*writer)->append_metrics(snapshot_at(step++));
      ASSERT_TRUE((*writer)->commit().has_value());
      committed_steps.push_back(step);
      copy_store(live.path(), copies.path() + "/" + std::to_string(commit));
    }
    (*writer)->append_metrics(snapshot_at(step++));  // never committed
  }
  for (size_t commit = 0; commit < committed_steps.size(); ++commit) {
    SCOPED_TRACE("copy after commit " + std::to_string(commit));
    std::string dir = copies.path() + "/" + std::to_string(commit);
    int steps = committed_steps[commit];
    // What the copy must hold: every sample of the committed steps.
    TempDir expected_dir;
    {
      auto expected_writer = TsdbWriter::open(WriterOptions{.dir = expected_dir.path()});
      for (int s = 0; s < steps; ++s) (*expected_writer)->append_metrics(snapshot_at(s));
      ASSERT_TRUE((*expected_writer)->commit().has_value());
    }
    auto expected = everything(expected_dir.path());
    EXPECT_EQ(everything(dir).size(), expected.size());
    auto got = everything(dir);
    for (const auto& [name, samples] : expected) {
      ASSERT_EQ(got[name].size(), samples.size()) << name;
      for (size_t i = 0; i < samples.size(); ++i) {
        EXPECT_EQ(got[name][i].time_ms, samples[i].time_ms) << name;
        EXPECT_EQ(got[name][i].value, samples[i].value) << name;
      }
    }
    // Reopened by a writer: it continues, and stays exact through another restart.
    {
      auto writer = TsdbWriter::open(WriterOptions{.dir = dir}, limits);
      ASSERT_TRUE(writer.has_value()) << writer.error().message;
      for (int s = steps; s < steps + 10; ++s) EXPECT_EQ((*writer)->append_metrics(snapshot_at(s)).rejected, 0u);
      ASSERT_TRUE((*writer)->commit().has_value());
    }
    {
      auto writer = TsdbWriter::open(WriterOptions{.dir = dir}, limits);
      ASSERT_TRUE(writer.has_value());
      (*writer)->append_metrics(snapshot_at(steps + 10));
      ASSERT_TRUE((*writer)->commit().has_value());
    }
    auto continued = everything(dir);
    EXPECT_EQ(continued["steady_total{k=\"a\"}"].size(), static_cast<size_t>(steps + 11));
    for (const auto& [name, samples] : continued)
      for (size_t i = 1; i < samples.size(); ++i) ASSERT_LT(samples[i - 1].time_ms, samples[i].time_ms) << name;
    // No two closed chunks of a series overlap: nothing was stored twice.
    auto db = open_store_for_reading(dir + "/" + kDatabaseFileName);
    EXPECT_EQ(*db->query_int("SELECT count(*) FROM chunks a JOIN chunks b ON a.series_id = b.series_id AND "
                             "a.rowid < b.rowid AND a.start_ms <= b.end_ms AND b.start_ms <= a.end_ms"),
              0);
    auto check = db->prepare("PRAGMA integrity_check");
    ASSERT_TRUE(check->step().value_or(false));
    EXPECT_EQ(check->column_text(0), "ok");
  }
}

// Full checkpoints (and log pruning) every 4 commits, or only at restarts within this test.
INSTANTIATE_TEST_SUITE_P(CheckpointEvery, TsdbCrash, ::testing::Values(4u, 1000u));

}  // namespace
}  // namespace ea::tsdb
