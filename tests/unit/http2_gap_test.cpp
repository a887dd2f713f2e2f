// Captures that lose bytes (a syscall moved more than was captured): the frame reader drops the
// partial frame and hunts, the connection forgets that direction's HPACK table, and no call is
// reported with a method or status it did not read.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "h2_fixture.h"
#include "l7/grpc_calls.h"
#include "l7/http2_connection.h"
#include "l7/http2_frame_reader.h"

using namespace ea::l7;
using ea::l7::test::load_h2_fixture;

namespace {

std::vector<uint8_t> frame(uint8_t type, uint8_t flags, uint32_t stream, std::vector<uint8_t> payload) {
  std::vector<uint8_t> out{static_cast<uint8_t>(payload.size() >> 16), static_cast<uint8_t>(payload.size() >> 8),
                           static_cast<uint8_t>(payload.size()), type, flags,
                           static_cast<uint8_t>(stream >> 24), static_cast<uint8_t>(stream >> 16),
                           static_cast<uint8_t>(stream >> 8), static_cast<uint8_t>(stream)};
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

std::vector<uint8_t> ping(uint8_t tag) { return frame(6, 0, 0, std::vector<uint8_t>(8, tag)); }

std::vector<std::string> summarize(GrpcCallTracker& tracker) {
  std::vector<std::string> out;
  for (const auto& c : tracker.take_completed())
    out.push_back(c.service + "/" + c.method + " status=" + std::to_string(c.grpc_status));
  return out;
}

}  // namespace

TEST(Http2Gap, ReaderDropsThePartialFrameAndHuntsForTheNextBoundary) {
  Http2FrameReader reader(Http2FrameReader::Start::FrameBoundary);
  std::vector<std::pair<uint8_t, uint8_t>> seen;  // (type, first payload byte)
  auto on_frame = [&](const Http2Frame& f) { seen.emplace_back(f.type, f.payload.empty() ? 0 : f.payload[0]); };
  std::vector<uint8_t> data = frame(0, 0, 1, std::vector<uint8_t>(100, 0xaa));
  reader.feed(std::span(data).first(40), on_frame);  // a DATA frame cut after 31 payload bytes
  EXPECT_TRUE(seen.empty());
  reader.note_gap();
  EXPECT_FALSE(reader.synced());
  EXPECT_EQ(reader.bytes_skipped(), 40u);
  // After the gap the stream resumes at a frame boundary. Without note_gap these bytes would be
  // taken as the rest of the DATA frame's payload.
  std::vector<uint8_t> after = ping(1);
  for (uint8_t tag : {2, 3}) {
    auto p = ping(tag);
    after.insert(after.end(), p.begin(), p.end());
  }
  reader.feed(after, on_frame);
  EXPECT_TRUE(reader.synced());
  EXPECT_EQ(seen, (std::vector<std::pair<uint8_t, uint8_t>>{{6, 1}, {6, 2}, {6, 3}}));
  EXPECT_EQ(reader.bytes_skipped(), 40u);
  EXPECT_EQ(reader.resyncs(), 1u);
}

TEST(Http2Gap, GapWhileHuntingOrBeforeThePrefaceStillCounts) {
  Http2FrameReader reader(Http2FrameReader::Start::ClientPreface);
  reader.note_gap();  // even with nothing buffered: how far the stream moved on is unknown
  EXPECT_EQ(reader.sync_losses(), 1u);
  std::vector<uint8_t> junk(5, 0xff);
  reader.feed(junk, [](const Http2Frame&) {});
  reader.note_gap();
  EXPECT_EQ(reader.sync_losses(), 2u);
  EXPECT_EQ(reader.bytes_skipped(), 5u);
}

TEST(Http2Gap, ServerResponsesLostMidCallLeaveNoWrongStatus) {
  auto chunks = load_h2_fixture();
  ASSERT_GT(chunks.size(), test::kSayResponseChunk);
  const auto& cut = chunks[test::kSayResponseChunk];
  ASSERT_EQ(cut.dir, Http2Direction::ServerToClient);
  ASSERT_EQ(cut.bytes[3], 1) << "fixture changed: chunk 5 should start with the Say response's HEADERS";

  GrpcCallTracker tracker(CallSide::Server);
  Http2Connection connection(true, tracker);
  uint64_t t = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (i == test::kSayResponseChunk) {
      // The response HEADERS arrive cut short; its DATA and trailers are lost.
      connection.feed(cut.dir, std::span(cut.bytes).first(40), t += 1000);
      connection.note_gap(cut.dir);
      EXPECT_FALSE(connection.decoder_reliable(cut.dir));
      continue;
    }
    connection.feed(chunks[i].dir, chunks[i].bytes, t += 1000);
  }
  auto calls = summarize(tracker);
  // Say never ends (its trailers were in the gap). The three later calls end; each has its true
  // status, or UNKNOWN (2) where the response headers referenced table entries lost in the gap.
  const std::vector<std::pair<std::string, int>> later = {
      {"pkg.Echo/Stream", 0}, {"pkg.Echo/Fail", 5}, {"pkg.Echo/Collect", 0}};
  ASSERT_EQ(calls.size(), later.size()) << ::testing::PrintToString(calls);
  for (size_t i = 0; i < later.size(); ++i) {
    const auto& [name, status] = later[i];
    EXPECT_TRUE(calls[i] == name + " status=" + std::to_string(status) || calls[i] == name + " status=2")
        << calls[i];
  }
  EXPECT_EQ(tracker.open_streams(), 1u);  // Say
  auto counters = connection.counters();
  EXPECT_EQ(counters.gaps, 1u);
  EXPECT_EQ(counters.resyncs, 1u);
  EXPECT_EQ(counters.bytes_skipped, 40u);  // the partial HEADERS frame fed before the gap
  EXPECT_EQ(counters.malformed_frames, 0u);
}

TEST(Http2Gap, RequestHeadersLostMakeTheStreamUntrackedNotMisnamed) {
  auto chunks = load_h2_fixture();
  ASSERT_GT(chunks.size(), test::kStreamRequestChunk);
  const auto& cut = chunks[test::kStreamRequestChunk];
  ASSERT_EQ(cut.dir, Http2Direction::ClientToServer);

  GrpcCallTracker tracker(CallSide::Server);
  Http2Connection connection(true, tracker);
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (i == test::kStreamRequestChunk) {
      connection.feed(cut.dir, std::span(cut.bytes).first(20), 1);
      connection.note_gap(cut.dir);
      continue;
    }
    connection.feed(chunks[i].dir, chunks[i].bytes, 1);
  }
  auto calls = summarize(tracker);
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls[0], "pkg.Echo/Say status=0");
  for (const auto& call : calls) EXPECT_EQ(call.find("Stream"), std::string::npos) << call;
  EXPECT_GT(tracker.counters().streams_untracked, 0u);
  EXPECT_EQ(connection.counters().gaps, 1u);
}
