// The `pipe` channel on real FIFOs in a temporary directory.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "channel/pipe_channel.h"

namespace ea {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class PipeChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "ea-pipe-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  Result<void> start(PipeChannel& channel) {
    return channel.start(
        [this](std::span<const std::byte> record) {
          std::lock_guard lock(mutex_);
          records_.emplace_back(reinterpret_cast<const char*>(record.data()), record.size());
        },
        [this] { polls_done_.fetch_add(1); });
  }

  std::vector<std::string> records() {
    std::lock_guard lock(mutex_);
    return records_;
  }

  // Waits until `count` records arrived (or 5 s passed) and returns them.
  std::vector<std::string> wait_for_records(size_t count) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (records().size() < count && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
    return records();
  }

  static void write_all(int fd, std::string_view text) {
    while (!text.empty()) {
      ssize_t written = write(fd, text.data(), text.size());
      ASSERT_GT(written, 0) << strerror(errno);
      text.remove_prefix(static_cast<size_t>(written));
    }
  }

  static int open_writer(const fs::path& path) {
    int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0) << strerror(errno);
    return fd;
  }

  fs::path dir_;
  std::mutex mutex_;
  std::vector<std::string> records_;
  std::atomic<int> polls_done_{0};
};

TEST_F(PipeChannelTest, EachLineIsOneRecord) {
  PipeChannel channel("lines", dir_ / "out");
  ASSERT_TRUE(start(channel).has_value());
  int fd = open_writer(dir_ / "out");
  write_all(fd, "first\nsecond line\n\nthird\n");
  EXPECT_EQ(wait_for_records(3), (std::vector<std::string>{"first", "second line", "third"}));
  EXPECT_EQ(channel.counters().received.load(), 3u) << "an empty line is no record";
  EXPECT_GT(polls_done_.load(), 0);
  close(fd);
}

TEST_F(PipeChannelTest, PartialLinesJoinAcrossWrites) {
  PipeChannel channel("partial", dir_ / "out");
  ASSERT_TRUE(start(channel).has_value());
  int fd = open_writer(dir_ / "out");
  write_all(fd, "hel");
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(records().empty()) << "no newline yet";
  write_all(fd, "lo\nwor");
  std::this_thread::sleep_for(50ms);
  write_all(fd, "ld\n");
  EXPECT_EQ(wait_for_records(2), (std::vector<std::string>{"hello", "world"}));
  close(fd);
}

TEST_F(PipeChannelTest, WriterRestartsWithoutEndOfFile) {
  PipeChannel channel("restart", dir_ / "out");
  ASSERT_TRUE(start(channel).has_value());
  for (int run = 0; run < 3; ++run) {
    int fd = open_writer(dir_ / "out");
    write_all(fd, "run " + std::to_string(run) + "\n");
    close(fd);  // the writer goes away; the channel keeps reading
    ASSERT_EQ(wait_for_records(run + 1).size(), static_cast<size_t>(run + 1));
  }
  EXPECT_EQ(records(), (std::vector<std::string>{"run 0", "run 1", "run 2"}));
}

TEST_F(PipeChannelTest, OverlongLinesAreDroppedAndCounted) {
  PipeChannel channel("long", dir_ / "out");
  ASSERT_TRUE(start(channel).has_value());
  int fd = open_writer(dir_ / "out");
  std::string long_line(PipeChannel::kMaxLineBytes + 10, 'x');
  std::string max_line(PipeChannel::kMaxLineBytes, 'y');
  // Bigger than the FIFO: the writer blocks until the reader catches up, so write from a thread.
  std::thread writer([&] { write_all(fd, "before\n" + long_line + "\nafter\n" + max_line + "\n"); });
  auto got = wait_for_records(3);
  writer.join();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], "before");
  EXPECT_EQ(got[1], "after");
  EXPECT_EQ(got[2], max_line) << "a line of exactly the limit is kept";
  EXPECT_EQ(channel.counters().kernel_lost.load(), 1u);
  close(fd);
}

TEST_F(PipeChannelTest, BpftraceLostEventsCountAsKernelLost) {
  PipeChannel channel("lost", dir_ / "out");
  ASSERT_TRUE(start(channel).has_value());
  int fd = open_writer(dir_ / "out");
  write_all(fd, "{\"type\": \"lost_events\", \"data\": {\"events\": 7}}\n{\"type\": \"lost_events\", \"data\": {\"events\": 5}}\n");
  EXPECT_EQ(wait_for_records(2).size(), 2u) << "the lines still go to the processor";
  EXPECT_EQ(channel.counters().kernel_lost.load(), 12u);
  close(fd);
}

TEST_F(PipeChannelTest, StopDrainsCompleteLines) {
  PipeChannel channel("drain", dir_ / "out");
  ASSERT_TRUE(start(channel).has_value());
  int fd = open_writer(dir_ / "out");
  std::string text;
  for (int i = 0; i < 1000; ++i) text += "line " + std::to_string(i) + "\n";
  write_all(fd, text + "unfinished");
  close(fd);
  channel.stop();
  auto got = records();
  ASSERT_EQ(got.size(), 1000u);
  EXPECT_EQ(got.back(), "line 999");
  channel.stop();  // idempotent
}

TEST_F(PipeChannelTest, RefusesAPathThatIsNotAFifo) {
  fs::path path = dir_ / "regular";
  std::ofstream(path) << "data";
  PipeChannel channel("notfifo", path);
  auto started = start(channel);
  ASSERT_FALSE(started.has_value());
  EXPECT_NE(started.error().message.find("is a regular file, not a FIFO"), std::string::npos) << started.error().message;
  EXPECT_NE(started.error().message.find(path.string()), std::string::npos);
  channel.stop();
  EXPECT_TRUE(fs::exists(path)) << "someone else's file is left alone";

  fs::create_symlink(path, dir_ / "link");
  PipeChannel via_link("link", dir_ / "link");
  started = start(via_link);
  ASSERT_FALSE(started.has_value());
  EXPECT_NE(started.error().message.find("symbolic link"), std::string::npos) << started.error().message;

  PipeChannel relative("relative", "relative/out");
  started = start(relative);
  ASSERT_FALSE(started.has_value());
  EXPECT_NE(started.error().message.find("absolute"), std::string::npos) << started.error().message;
}

TEST_F(PipeChannelTest, RemovesOnlyWhatItCreated) {
  fs::path nested = dir_ / "a" / "b" / "out";
  PipeChannel creating("creating", nested);
  ASSERT_TRUE(start(creating).has_value());
  struct stat status {};
  ASSERT_EQ(lstat(nested.c_str(), &status), 0);
  EXPECT_TRUE(S_ISFIFO(status.st_mode));
  EXPECT_EQ(status.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((dir_ / "a").c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 0777, 0700u);
  creating.stop();
  EXPECT_FALSE(fs::exists(dir_ / "a")) << "the FIFO and the directories it made are gone";

  fs::path existing = dir_ / "existing";
  ASSERT_EQ(mkfifo(existing.c_str(), 0600), 0);
  PipeChannel borrowing("borrowing", existing);
  ASSERT_TRUE(start(borrowing).has_value());
  borrowing.stop();
  EXPECT_EQ(lstat(existing.c_str(), &status), 0) << "a FIFO it did not create stays";
}

TEST_F(PipeChannelTest, RestartsAfterStop) {
  PipeChannel channel("again", dir_ / "out");
  ASSERT_TRUE(start(channel).has_value());
  channel.stop();
  EXPECT_FALSE(fs::exists(dir_ / "out"));
  ASSERT_TRUE(start(channel).has_value());
  int fd = open_writer(dir_ / "out");
  write_all(fd, "back\n");
  EXPECT_EQ(wait_for_records(1), (std::vector<std::string>{"back"}));
  close(fd);
}

}  // namespace
}  // namespace ea
