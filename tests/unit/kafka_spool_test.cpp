// The Kafka output's spool: framing, damage and torn tails, the bound, order, commit/cleanup,
// and replay after a restart.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "sink/kafka_spool.h"
#include "sink/kafka_spool_frame.h"

namespace ea {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/ea-spool-test-XXXXXX";
    path_ = mkdtemp(pattern);
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Fixed width, so every record has the same frame size.
std::string value_of(int i) { return fmt::format("{{\"seq\":\"{:06}\",\"pad\":\"{}\"}}", i, std::string(40, 'x')); }

// Appends records first..last (inclusive) one call each; returns how many were written.
size_t append_range(KafkaSpool& spool, int first, int last, KafkaDataKind kind = KafkaDataKind::events) {
  size_t written = 0;
  for (int i = first; i <= last; ++i) {
    std::string key = fmt::format("host/{}", i % 3);
    std::string value = value_of(i);
    SpoolEntry entry{.kind = kind, .time_ns = static_cast<uint64_t>(i), .key = key, .value = value};
    written += spool.append(std::span(&entry, 1)).written;
  }
  return written;
}

// `records` keep positions and metadata; their key/value views die with the next read, so the
// keys are copied into `keys`.
std::vector<std::string> read_all(KafkaSpool& spool, std::vector<SpooledRecord>* records = nullptr,
                                  std::vector<std::string>* keys = nullptr) {
  std::vector<std::string> values;
  while (auto record = spool.read_next()) {
    values.emplace_back(record->value);
    if (keys) keys->emplace_back(record->key);
    if (records) records->push_back(*record);
  }
  return values;
}

std::vector<std::string> values(int first, int last) {
  std::vector<std::string> out;
  for (int i = first; i <= last; ++i) out.push_back(value_of(i));
  return out;
}

std::vector<fs::path> segment_files(const std::string& dir) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == ".seg") out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(KafkaSpoolFrame, RoundTripsEveryField) {
  std::string bytes;
  append_spool_frame(SpoolFrame{.kind = 2, .flags = kSpoolFlagWaited, .time_ns = 1234567890123, .key = "h/1", .value = "{}"},
                     bytes);
  ASSERT_EQ(bytes.size(), spool_frame_size(3, 2));
  FrameParse parsed = parse_spool_frame(bytes);
  ASSERT_EQ(parsed.status, FrameStatus::ok);
  EXPECT_EQ(parsed.size, bytes.size());
  EXPECT_EQ(parsed.frame.kind, 2);
  EXPECT_EQ(parsed.frame.flags, kSpoolFlagWaited);
  EXPECT_EQ(parsed.frame.time_ns, 1234567890123u);
  EXPECT_EQ(parsed.frame.key, "h/1");
  EXPECT_EQ(parsed.frame.value, "{}");
}

TEST(KafkaSpoolFrame, DetectsEveryFlippedBitAndShortInput) {
  std::string bytes;
  append_spool_frame(SpoolFrame{.kind = 1, .key = "key", .value = "value"}, bytes);
  for (size_t i = 0; i < bytes.size(); ++i)
    for (int bit = 0; bit < 8; ++bit) {
      std::string damaged = bytes;
      damaged[i] = static_cast<char>(damaged[i] ^ (1 << bit));
      FrameParse parsed = parse_spool_frame(damaged);
      // A flipped length bit may instead ask for more bytes than there are: never "ok".
      EXPECT_NE(parsed.status, FrameStatus::ok) << "byte " << i << " bit " << bit;
    }
  for (size_t cut = 0; cut < bytes.size(); ++cut)
    EXPECT_EQ(parse_spool_frame(std::string_view(bytes).substr(0, cut)).status, FrameStatus::incomplete) << cut;
  EXPECT_EQ(parse_spool_frame("garbage!garbage!garbage!garbage!").status, FrameStatus::corrupt);
}

TEST(KafkaSpoolFrame, RefusesAbsurdLengthsWithoutReadingThem) {
  std::string bytes;
  append_spool_frame(SpoolFrame{.kind = 1, .key = "k", .value = "v"}, bytes);
  uint32_t huge = kSpoolMaxBody + 1;
  std::memcpy(bytes.data() + 4, &huge, 4);
  EXPECT_EQ(parse_spool_frame(bytes).status, FrameStatus::corrupt);
}

TEST(KafkaSpoolFrame, Crc32cMatchesTheStandardCheckValue) {
  EXPECT_EQ(crc32c(0, "123456789", 9), 0xE3069283u);  // RFC 3720 / iSCSI check value
}

TEST(KafkaSpool, ReadsBackInOrderAcrossSegments) {
  TempDir dir;
  auto spool = KafkaSpool::open({.dir = dir.path(), .max_bytes = 1 << 20, .segment_bytes = 4096});
  ASSERT_TRUE(spool) << spool.error().message;
  ASSERT_EQ(append_range(**spool, 1, 500), 500u);
  EXPECT_GT(segment_files(dir.path()).size(), 5u);
  EXPECT_EQ((*spool)->stats().records, 500u);
  EXPECT_EQ((*spool)->stats().unread, 500u);
  std::vector<SpooledRecord> records;
  std::vector<std::string> keys;
  EXPECT_EQ(read_all(**spool, &records, &keys), values(1, 500));
  EXPECT_EQ((*spool)->stats().unread, 0u);
  EXPECT_EQ(keys[7], "host/2");
  EXPECT_EQ(records[7].time_ns, 8u);
  EXPECT_FALSE(records[7].from_earlier_run);
  // Appends after the reader caught up are read next.
  append_range(**spool, 501, 503);
  EXPECT_EQ(read_all(**spool), values(501, 503));
}

TEST(KafkaSpool, CommitDeletesDeliveredSegmentsAndFreesTheBound) {
  TempDir dir;
  auto spool = KafkaSpool::open({.dir = dir.path(), .max_bytes = 1 << 20, .segment_bytes = 4096});
  ASSERT_TRUE(spool);
  append_range(**spool, 1, 300);
  std::vector<SpooledRecord> records;
  read_all(**spool, &records);
  size_t segments_before = segment_files(dir.path()).size();
  for (size_t i = 0; i < 150; ++i) (*spool)->commit(records[i].end);
  EXPECT_LT(segment_files(dir.path()).size(), segments_before);
  EXPECT_EQ((*spool)->stats().records, 150u);
  for (size_t i = 150; i < records.size(); ++i) (*spool)->commit(records[i].end);
  EXPECT_EQ((*spool)->stats().records, 0u);
  EXPECT_EQ((*spool)->stats().bytes, 0u);
  EXPECT_TRUE(segment_files(dir.path()).empty()) << "fully delivered segments, the open one included, are deleted";
  append_range(**spool, 301, 302);
  EXPECT_EQ(read_all(**spool), values(301, 302));
}

TEST(KafkaSpool, BoundIsExactAndRefusedRecordsAreCounted) {
  TempDir dir;
  std::string key = "host/0";
  size_t frame = spool_frame_size(key.size(), value_of(1).size());
  uint64_t max_bytes = 60 * frame + frame / 2;  // room for exactly 60 records
  auto spool = KafkaSpool::open({.dir = dir.path(), .max_bytes = max_bytes, .segment_bytes = 4096});
  ASSERT_TRUE(spool);
  std::vector<std::string> texts;
  std::vector<SpoolEntry> entries;
  for (int i = 1; i <= 100; ++i) texts.push_back(value_of(i));
  for (const std::string& text : texts) entries.push_back({.kind = KafkaDataKind::events, .key = key, .value = text});
  SpoolAppendOutcome outcome = (*spool)->append(entries);
  EXPECT_EQ(outcome.written, 60u);
  EXPECT_EQ(outcome.over_bound, 40u);
  EXPECT_EQ(outcome.failed, 0u);
  EXPECT_EQ((*spool)->stats().over_bound, 40u);
  EXPECT_LE((*spool)->stats().bytes, max_bytes);
  uint64_t on_disk = 0;
  for (const auto& file : segment_files(dir.path())) on_disk += fs::file_size(file);
  EXPECT_EQ(on_disk, (*spool)->stats().bytes);
  // A gap, never a reordering: the first sixty are kept, in order.
  std::vector<SpooledRecord> records;
  EXPECT_EQ(read_all(**spool, &records), values(1, 60));
  // Delivering frees room only as whole segments go; then appends fit again.
  for (const SpooledRecord& record : records) (*spool)->commit(record.end);
  EXPECT_EQ((*spool)->stats().bytes, 0u);
  EXPECT_EQ((*spool)->append(std::span(entries).first(60)).written, 60u);
}

TEST(KafkaSpool, RestartReplaysFromTheCommitPosition) {
  TempDir dir;
  {
    auto spool = KafkaSpool::open({.dir = dir.path(), .max_bytes = 1 << 20, .segment_bytes = 4096});
    ASSERT_TRUE(spool);
    append_range(**spool, 1, 200);
    std::vector<SpooledRecord> records;
    read_all(**spool, &records);
    for (size_t i = 0; i < 120; ++i) (*spool)->commit(records[i].end);  // 1..120 delivered
  }
  auto spool = KafkaSpool::open({.dir = dir.path(), .max_bytes = 1 << 20, .segment_bytes = 4096});
  ASSERT_TRUE(spool) << spool.error().message;
  EXPECT_EQ((*spool)->stats().earlier_run_records, 80u);
  EXPECT_EQ((*spool)->stats().records, 80u);
  append_range(**spool, 201, 205);  // new records queue behind the old ones
  std::vector<SpooledRecord> records;
  auto all = values(121, 205);
  EXPECT_EQ(read_all(**spool, &records), all);
  EXPECT_TRUE(records.front().from_earlier_run);
  EXPECT_FALSE(records.back().from_earlier_run);
}

TEST(KafkaSpool, RestartWithoutCommitsReplaysEverything) {
  TempDir dir;
  {
    auto spool = KafkaSpool::open({.dir = dir.path(), .max_bytes = 1 << 20});
    ASSERT_TRUE(spool);
    append_range(**spool, 1, 50);
  }
  auto spool = KafkaSpool::open({.dir = dir.path(), .max_bytes = 1 << 20});
  ASSERT_TRUE(spool);
  EXPECT_EQ(read_all(**spool), values(1, 50));
}

TEST(KafkaSpool, TornTailAfterACrashIsSkippedAndCounted) {
  TempDir dir;
  {
    auto spool = KafkaSpool::open({.dir = dir.path(), .max_bytes = 1 << 20});
    ASSERT_TRUE(spool);
    append_range(**spool, 1, 20);
  }
  auto files = segment_files(dir.path());
  ASSERT_EQ(files.size(), 1u);
  uint64_t size = fs::file_size(files[0]);
  fs::resize_file(files[0], size - 7);  // the last frame lost its end, as a crash mid-write would
  size_t frame = spool_frame_size(std::string("host/0").size(), value_of(20).size());

  auto spool = KafkaSpool::open({.dir = dir.path(), .max_bytes = 1 << 20});
  ASSERT_TRUE(spool);
  EXPECT_EQ((*spool)->stats().corrupt_bytes_skipped, frame - 7);
  EXPECT_EQ((*spool)->stats().records, 19u);
  append_range(**spool, 21, 22);
  auto expected = values(1, 19);
  for (auto& v : values(21, 22)) expected.push_back(v);
  EXPECT_EQ(read_all(**spool), expected);
  EXPECT_EQ((*spool)->stats().corrupt_bytes_skipped, frame - 7) << "damage is counted once";
}

TEST(KafkaSpool, DamagedRecordInTheMiddleIsSkippedAndReadingResumes) {
  TempDir dir;
  {
    auto spool = KafkaSpool::open({.dir = dir.path(), .max_bytes = 1 << 20});
    ASSERT_TRUE(spool);
    append_range(**spool, 1, 10);
  }
  auto files = segment_files(dir.path());
  size_t frame = spool_frame_size(std::string("host/0").size(), value_of(1).size());
  {
    std::fstream file(files[0], std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(4 * frame + kSpoolFrameOverhead + 12));  // inside record 5's value
    file.put('#');
  }
  auto spool = KafkaSpool::open({.dir = dir.path(), .max_bytes = 1 << 20});
  ASSERT_TRUE(spool);
  auto expected = values(1, 4);
  for (auto& v : values(6, 10)) expected.push_back(v);
  EXPECT_EQ(read_all(**spool), expected);
  EXPECT_EQ((*spool)->stats().corrupt_bytes_skipped, frame);
}

TEST(KafkaSpool, UnreadAndRewindReadTheSameRecordsAgain) {
  TempDir dir;
  auto spool = KafkaSpool::open({.dir = dir.path(), .max_bytes = 1 << 20, .segment_bytes = 4096});
  ASSERT_TRUE(spool);
  append_range(**spool, 1, 100);
  std::vector<SpooledRecord> records;
  for (int i = 0; i < 60; ++i) records.push_back(*(*spool)->read_next());
  auto last = *(*spool)->read_next();  // record 61
  (*spool)->unread(last);
  EXPECT_EQ((*spool)->read_next()->value, value_of(61));
  for (int i = 0; i < 30; ++i) (*spool)->commit(records[i].end);
  (*spool)->rewind();
  EXPECT_EQ((*spool)->stats().unread, 70u);
  EXPECT_EQ(read_all(**spool), values(31, 100));
}

TEST(KafkaSpool, UnknownDataKindsFromANewerVersionAreSkipped) {
  TempDir dir;
  {
    auto spool = KafkaSpool::open({.dir = dir.path(), .max_bytes = 1 << 20});
    ASSERT_TRUE(spool);
    append_range(**spool, 1, 2);
  }
  {
    std::string frame;
    append_spool_frame(SpoolFrame{.kind = 200, .key = "k", .value = "future"}, frame);
    std::ofstream file(segment_files(dir.path())[0], std::ios::app | std::ios::binary);
    file << frame;
  }
  auto spool = KafkaSpool::open({.dir = dir.path(), .max_bytes = 1 << 20});
  ASSERT_TRUE(spool);
  EXPECT_EQ((*spool)->stats().unknown_kind_skipped, 1u);
  EXPECT_EQ(read_all(**spool), values(1, 2));
}

TEST(KafkaSpool, OneDirectoryServesOneSpoolAtATime) {
  TempDir dir;
  auto first = KafkaSpool::open({.dir = dir.path()});
  ASSERT_TRUE(first);
  auto second = KafkaSpool::open({.dir = dir.path()});
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find("in use"), std::string::npos) << second.error().message;
  EXPECT_NE(second.error().message.find("spool=DIR"), std::string::npos) << second.error().message;
}

TEST(KafkaSpool, AnUnwritableDirectoryIsAClearError) {
  auto spool = KafkaSpool::open({.dir = "/proc/ea-no-such-dir/spool"});
  ASSERT_FALSE(spool);
  EXPECT_NE(spool.error().message.find("/proc/ea-no-such-dir/spool"), std::string::npos) << spool.error().message;
}

TEST(KafkaSpool, ADamagedCursorFileReplaysEverythingRatherThanLosingRecords) {
  TempDir dir;
  {
    auto spool = KafkaSpool::open({.dir = dir.path(), .max_bytes = 1 << 20});
    ASSERT_TRUE(spool);
    append_range(**spool, 1, 5);
  }
  std::ofstream(dir.path() + "/cursor") << "ebpf-agent-spool-cursor 1 zz 12\n";
  auto spool = KafkaSpool::open({.dir = dir.path(), .max_bytes = 1 << 20});
  ASSERT_TRUE(spool);
  EXPECT_EQ(read_all(**spool), values(1, 5));
}

}  // namespace
}  // namespace ea
