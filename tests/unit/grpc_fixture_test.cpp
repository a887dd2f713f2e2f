// Real grpcio traffic (tests/fixtures/h2/grpc_calls.bin, made by make_grpc_fixture.py): the
// tracker must report each call by method with its status and message counts, however the bytes
// are split, and a capture that starts late must count what it cannot decode.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <random>

#include "l7/grpc_calls.h"
#include "h2_fixture.h"
#include "l7/http2_connection.h"

using namespace ea::l7;
using ea::l7::test::load_h2_fixture;

namespace {

std::vector<std::string> summarize(GrpcCallTracker& tracker) {
  std::vector<std::string> out;
  for (const auto& c : tracker.take_completed())
    out.push_back(c.service + "/" + c.method + " status=" + std::to_string(c.grpc_status) +
                  " req=" + std::to_string(c.request_messages) + " resp=" + std::to_string(c.response_messages));
  return out;
}

const std::vector<std::string> kExpected = {
    "pkg.Echo/Say status=0 req=1 resp=1",
    "pkg.Echo/Stream status=0 req=1 resp=3",
    "pkg.Echo/Fail status=5 req=1 resp=0",
    "pkg.Echo/Collect status=0 req=4 resp=1",
};

}  // namespace

TEST(GrpcFixture, GrpcioCallsByMethodWithStatus) {
  auto chunks = load_h2_fixture();
  ASSERT_GT(chunks.size(), 4u) << "fixture missing: run tests/fixtures/h2/make_grpc_fixture.py";
  GrpcCallTracker tracker(CallSide::Server);
  Http2Connection connection(true, tracker);
  uint64_t t = 0;
  for (const auto& c : chunks) connection.feed(c.dir, c.bytes, t += 1000);
  EXPECT_EQ(summarize(tracker), kExpected);
  auto counters = connection.counters();
  EXPECT_EQ(counters.header_blocks_undecodable, 0u);
  EXPECT_EQ(counters.malformed_frames, 0u);
  EXPECT_EQ(counters.bytes_skipped, 0u);
  EXPECT_EQ(tracker.open_streams(), 0u);
}

TEST(GrpcFixture, ByteByByteAndRandomChunksGiveTheSameCalls) {
  auto chunks = load_h2_fixture();
  ASSERT_GT(chunks.size(), 4u);
  std::mt19937 rng(1);
  for (int round = 0; round < 20; ++round) {
    GrpcCallTracker tracker(CallSide::Server);
    Http2Connection connection(true, tracker);
    for (const auto& c : chunks) {
      for (size_t pos = 0; pos < c.bytes.size();) {
        size_t n = round == 0 ? 1 : std::min<size_t>(1 + rng() % 64, c.bytes.size() - pos);
        connection.feed(c.dir, std::span(c.bytes).subspan(pos, n), 1);
        pos += n;
      }
    }
    EXPECT_EQ(summarize(tracker), kExpected) << "round " << round;
  }
}

TEST(GrpcFixture, LateStartCountsWhatItCannotDecode) {
  auto chunks = load_h2_fixture();
  ASSERT_GT(chunks.size(), 4u);
  // Drop the first third of the capture, cutting into the middle of a chunk.
  size_t total = 0;
  for (const auto& c : chunks) total += c.bytes.size();
  size_t skip = total / 3, seen = 0;
  GrpcCallTracker tracker(CallSide::Server);
  Http2Connection connection(false, tracker);
  for (const auto& c : chunks) {
    size_t begin = seen >= skip ? 0 : std::min(c.bytes.size(), skip - seen);
    seen += c.bytes.size();
    if (begin < c.bytes.size()) connection.feed(c.dir, std::span(c.bytes).subspan(begin), 1);
  }
  auto calls = summarize(tracker);
  auto counters = connection.counters();
  // Every reported call must be one of the real ones (never a guessed method or status).
  for (const auto& call : calls)
    EXPECT_NE(std::find(kExpected.begin(), kExpected.end(), call), kExpected.end()) << call;
  EXPECT_LT(calls.size(), kExpected.size());
  EXPECT_GT(counters.header_blocks_undecodable + tracker.counters().streams_untracked, 0u);
  RecordProperty("late_start_calls", static_cast<int>(calls.size()));
}
