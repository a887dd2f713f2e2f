// The bpftrace loader against the real bpftrace and kernel (root), read through a real PipeChannel.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "channel/pipe_channel.h"
#include "loader/bpftrace_program.h"

namespace ea {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

bool process_exists(int pid) { return pid > 0 && fs::exists("/proc/" + std::to_string(pid)); }

class BpftraceProgramTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root: runs bpftrace against the kernel";
    if (!fs::exists("/usr/bin/bpftrace") && !fs::exists("/usr/sbin/bpftrace"))
      GTEST_SKIP() << "bpftrace is not installed (apt-get install bpftrace)";
    spec_.name = "ea_unit_" + std::to_string(getpid()) + "_" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name();
    program_.name = "prog";
    program_.type = ProgramType::Bpftrace;
    program_.props = BpftraceProps{};
    fifo_ = default_bpftrace_output_path(spec_.name, program_.name);
    state_dir_ = fs::path(fifo_).parent_path();
  }

  void TearDown() override {
    if (program_ptr_) program_ptr_->stop();
    if (channel_) channel_->stop();
    program_ptr_.reset();
    channel_.reset();
  }

  // The runtime's order: the channel (the FIFO's reader) first, then the program.
  Result<void> start(const std::string& source, std::vector<std::string> args = {}) {
    std::get<BpftraceProps>(program_.props).args = std::move(args);
    channel_ = std::make_unique<PipeChannel>("out", fifo_);
    auto channel_started = channel_->start(
        [this](std::span<const std::byte> record) {
          std::lock_guard lock(mutex_);
          lines_.emplace_back(reinterpret_cast<const char*>(record.data()), record.size());
        },
        [] {});
    if (!channel_started) return channel_started;
    auto prepared = BpftraceProgram::prepare(spec_, program_, source, fifo_);
    if (!prepared) return std::unexpected(prepared.error());
    program_ptr_ = std::move(*prepared);
    return program_ptr_->start();
  }

  // Whether a line containing `text` came in, optionally only after one containing `after`.
  bool saw_line_containing(const std::string& text, const std::string& after = "") {
    std::lock_guard lock(mutex_);
    bool looking = after.empty();
    for (const std::string& line : lines_) {
      if (looking && line.find(text) != std::string::npos) return true;
      looking |= !after.empty() && line.find(after) != std::string::npos;
    }
    return false;
  }

  std::string all_lines() {
    std::lock_guard lock(mutex_);
    std::string text;
    for (const std::string& line : lines_) text += line + "\n";
    return text;
  }

  Spec spec_;
  ProgramSpec program_;
  std::string fifo_;
  fs::path state_dir_;
  std::unique_ptr<PipeChannel> channel_;
  std::unique_ptr<BpftraceProgram> program_ptr_;
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

// BEGIN runs in bpftrace itself, so its pid tells one run from the next.
constexpr const char* kTicker = R"(
BEGIN { printf("started pid=%d\n", pid); }
interval:ms:100 { printf("tick\n"); }
)";

TEST_F(BpftraceProgramTest, OutputReachesTheFifoAndAKilledBpftraceIsRestarted) {
  auto started = start(kTicker);
  ASSERT_TRUE(started.has_value()) << started.error().message;
  BpftraceProgram& program = *program_ptr_;
  EXPECT_EQ(program.state(), BpftraceProgram::State::Running);
  int first_pid = program.pid();
  ASSERT_GT(first_pid, 0);
  EXPECT_TRUE(fs::exists(state_dir_ / "prog.bt"));
  std::string first_run = "started pid=" + std::to_string(first_pid) + "\\n";
  EXPECT_TRUE(wait_until([&] { return saw_line_containing("tick", first_run); }, 5s)) << all_lines();
  EXPECT_TRUE(saw_line_containing(R"({"type": "printf", "data": "started pid=)")) << "JSON output mode";

  ASSERT_EQ(kill(first_pid, SIGKILL), 0);
  ASSERT_TRUE(wait_until([&] { return program.restarts() == 1 && program.pid() > 0; }, 10s)) << program.state_detail();
  int second_pid = program.pid();
  EXPECT_NE(second_pid, first_pid);
  EXPECT_FALSE(process_exists(first_pid)) << "the killed bpftrace was reaped";
  EXPECT_NE(program.state_detail().find("killed by signal 9"), std::string::npos) << program.state_detail();
  std::string second_run = "started pid=" + std::to_string(second_pid) + "\\n";
  EXPECT_TRUE(wait_until([&] { return saw_line_containing("tick", second_run); }, 10s))
      << "output resumes through the same FIFO:\n"
      << all_lines();
  EXPECT_TRUE(wait_until([&] { return program.state() == BpftraceProgram::State::Running; }, 5s))
      << "the supervisor sees the attach at its next tick";

  program.stop();
  EXPECT_EQ(program.state(), BpftraceProgram::State::Stopped);
  EXPECT_EQ(program.pid(), -1);
  EXPECT_FALSE(process_exists(second_pid)) << "no bpftrace and no zombie left";
  channel_->stop();
  EXPECT_FALSE(fs::exists(state_dir_)) << "script, FIFO and state directory are gone";
  program.stop();  // idempotent
}

TEST_F(BpftraceProgramTest, SyntaxErrorReportsBpftracesOwnMessage) {
  auto started = start("BEGIN { printf(\"a\\n\") }\ntracepoint:syscalls:sys_enter_openat {\n  foo bar;\n}\n");
  ASSERT_FALSE(started.has_value());
  const std::string& message = started.error().message;
  EXPECT_NE(message.find("syntax error"), std::string::npos) << message;
  EXPECT_NE(message.find("prog.bt:3:"), std::string::npos) << "bpftrace's file:line: " << message;
  EXPECT_NE(message.find("before attaching its probes"), std::string::npos) << message;
  EXPECT_EQ(program_ptr_->state(), BpftraceProgram::State::Failed);
  EXPECT_EQ(program_ptr_->pid(), -1);
  program_ptr_.reset();
  channel_->stop();
  EXPECT_FALSE(fs::exists(state_dir_));
}

TEST_F(BpftraceProgramTest, ArgumentsArePassedAndAScriptThatExitsIsFinishedNotDead) {
  auto started = start("BEGIN { printf(\"first=%s second=%d\\n\", str($1), $2); exit(); }", {"-x y", "42"});
  ASSERT_TRUE(started.has_value()) << started.error().message;
  EXPECT_TRUE(wait_until([&] { return saw_line_containing("first=-x y second=42"); }, 5s)) << all_lines();
  EXPECT_TRUE(wait_until([&] { return program_ptr_->state() == BpftraceProgram::State::Stopped; }, 5s));
  EXPECT_EQ(program_ptr_->restarts(), 0);
  EXPECT_NE(program_ptr_->state_detail().find("finished"), std::string::npos) << program_ptr_->state_detail();
}

TEST_F(BpftraceProgramTest, GivesUpAfterRepeatedQuickDeaths) {
  auto started = start(kTicker);
  ASSERT_TRUE(started.has_value()) << started.error().message;
  BpftraceProgram& program = *program_ptr_;
  // Back-off 1 + 2 + 4 + 8 s between the five deaths.
  for (int death = 1; death <= 5; ++death) {
    ASSERT_TRUE(wait_until([&] { return program.state() == BpftraceProgram::State::Running; }, 15s))
        << "death " << death << ": " << program.state_detail();
    ASSERT_EQ(kill(program.pid(), SIGKILL), 0);
    ASSERT_TRUE(wait_until([&] { return program.state() != BpftraceProgram::State::Running; }, 5s));
  }
  EXPECT_TRUE(wait_until([&] { return program.state() == BpftraceProgram::State::Failed; }, 5s));
  EXPECT_EQ(program.restarts(), 4);
  EXPECT_NE(program.state_detail().find("gave up"), std::string::npos) << program.state_detail();
  EXPECT_EQ(program.pid(), -1);
}

TEST_F(BpftraceProgramTest, StartingBeforeThePipeChannelIsRefused) {
  auto prepared = BpftraceProgram::prepare(spec_, program_, kTicker, fifo_);
  ASSERT_TRUE(prepared.has_value()) << prepared.error().message;
  program_ptr_ = std::move(*prepared);
  auto started = program_ptr_->start();
  ASSERT_FALSE(started.has_value());
  EXPECT_NE(started.error().message.find("does not exist: the pipe channel"), std::string::npos)
      << started.error().message;
  EXPECT_FALSE(fs::exists(fifo_)) << "bpftrace never ran, so it made no regular file there";
  program_ptr_->stop();
  EXPECT_FALSE(fs::exists(state_dir_));
}

TEST(BpftraceProgram, RefusesUnsafeNamesAndEmptySources) {
  Spec spec;
  spec.name = "../etc";
  ProgramSpec program;
  program.name = "p";
  program.type = ProgramType::Bpftrace;
  program.props = BpftraceProps{};
  auto prepared = BpftraceProgram::prepare(spec, program, "BEGIN {}", "/tmp/x");
  ASSERT_FALSE(prepared.has_value());
  EXPECT_NE(prepared.error().message.find("must not be empty, '.', '..' or contain '/'"), std::string::npos)
      << prepared.error().message;

  spec.name = "ok";
  prepared = BpftraceProgram::prepare(spec, program, "", "/tmp/x");
  ASSERT_FALSE(prepared.has_value());
  EXPECT_NE(prepared.error().message.find("the script is empty"), std::string::npos) << prepared.error().message;

  prepared = BpftraceProgram::prepare(spec, program, "BEGIN {}", "relative/out");
  ASSERT_FALSE(prepared.has_value());
  EXPECT_NE(prepared.error().message.find("absolute"), std::string::npos) << prepared.error().message;
}

TEST(BpftraceProgram, DefaultOutputPathIsTheTalks) {
  EXPECT_EQ(default_bpftrace_output_path("test_bpftrace", "bpftrace_src"),
            "/var/lib/ebpf-agent/bpftrace/test_bpftrace.bpftrace_src/output");
}

}  // namespace
}  // namespace ea
