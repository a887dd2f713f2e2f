// HTTP/2 connection + gRPC call tracking on hand-built frames: unary, streaming, trailers-only
// errors, RST_STREAM, plain HTTP/2, split-anywhere feeding and mid-stream starts.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "l7/grpc_calls.h"
#include "l7/http2_connection.h"
#include "http2_test_frames.h"

using namespace ea::l7;

namespace {

using ea::l7::test_frames::Bytes;
using ea::l7::test_frames::frame;

void append(Bytes& out, std::string_view s) { out.insert(out.end(), s.begin(), s.end()); }

// Literal field with a static name index (`first` = representation bits | index), short value.
Bytes literal(uint8_t first, std::string_view value) {
  Bytes out{first, static_cast<uint8_t>(value.size())};
  append(out, value);
  return out;
}

// Literal with a new name, without indexing.
Bytes literal_new(std::string_view name, std::string_view value) {
  Bytes out{0x00, static_cast<uint8_t>(name.size())};
  append(out, name);
  out.push_back(static_cast<uint8_t>(value.size()));
  append(out, value);
  return out;
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes grpc_message(uint32_t length) {
  Bytes out{0, static_cast<uint8_t>(length >> 24), static_cast<uint8_t>(length >> 16),
            static_cast<uint8_t>(length >> 8), static_cast<uint8_t>(length)};
  out.resize(out.size() + length, 0xab);
  return out;
}

constexpr uint8_t kData = 0, kHeaders = 1, kRst = 3, kSettings = 4, kContinuation = 9;
constexpr uint8_t kEndStream = 1, kEndHeaders = 4, kPadded = 8;

struct Segment {
  Http2Direction dir;
  Bytes bytes;
};

// Call 1 (stream 1): unary Echo/Say, request split over HEADERS + CONTINUATION, response message
// spanning two DATA frames (one padded), grpc-status 0 in trailers.
// Call 2 (stream 3): server streaming Echo/Stream reusing dynamic entries, 3 response messages.
// Call 3 (stream 5): trailers-only NOT_FOUND (5). Call 4 (stream 7): reset by the client.
// Call 5 (stream 9): plain HTTP/2 GET /index.html -> 404.
std::vector<Segment> conversation() {
  auto c2s = Http2Direction::ClientToServer;
  auto s2c = Http2Direction::ServerToClient;
  Bytes preface;
  append(preface, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  Bytes settings = frame(kSettings, 0, 0, {0, 1, 0, 0, 0x10, 0});  // HEADER_TABLE_SIZE 4096
  // :path (4) and content-type (31) with incremental indexing -> dynamic 63 and 62.
  Bytes call1_block = cat({{0x83, 0x86}, literal(0x44, "/pkg.Echo/Say"), literal(0x5f, "application/grpc")});
  Bytes first_half(call1_block.begin(), call1_block.begin() + 5);
  Bytes second_half(call1_block.begin() + 5, call1_block.end());
  Bytes response_headers = cat({{0x88}, literal(0x5f, "application/grpc")});  // server table: 62
  Bytes message = grpc_message(10);
  Bytes m1(message.begin(), message.begin() + 7), m2(message.begin() + 7, message.end());
  Bytes padded_m2 = cat({{3}, m2, {0, 0, 0}});
  Bytes call2_block = cat({{0x83, 0x86}, literal(0x04, "/pkg.Echo/Stream"), {0xbe}});
  std::vector<Segment> s;
  s.push_back({c2s, cat({preface, settings})});
  s.push_back({s2c, cat({settings, frame(kSettings, 1, 0, {})})});
  s.push_back({c2s, cat({frame(kHeaders, 0, 1, first_half), frame(kContinuation, kEndHeaders, 1, second_half),
                         frame(kData, kEndStream, 1, grpc_message(3))})});
  s.push_back({s2c, cat({frame(kHeaders, kEndHeaders, 1, response_headers), frame(kData, 0, 1, m1),
                         frame(kData, kPadded, 1, padded_m2),
                         frame(kHeaders, kEndHeaders | kEndStream, 1, literal_new("grpc-status", "0"))})});
  s.push_back({c2s, cat({frame(kHeaders, kEndHeaders, 3, call2_block), frame(kData, kEndStream, 3, grpc_message(1))})});
  s.push_back({s2c, cat({frame(kHeaders, kEndHeaders, 3, {0x88, 0xbe}),
                         frame(kData, 0, 3, cat({grpc_message(2), grpc_message(0), grpc_message(4)})),
                         frame(kHeaders, kEndHeaders | kEndStream, 3, literal_new("grpc-status", "0"))})});
  s.push_back({c2s, cat({frame(kHeaders, kEndHeaders, 5, cat({{0x83, 0x86}, literal(0x04, "/pkg.Echo/Find"), {0xbe}})),
                         frame(kData, kEndStream, 5, grpc_message(2))})});
  s.push_back({s2c, frame(kHeaders, kEndHeaders | kEndStream, 5,
                          cat({{0x88, 0xbe}, literal_new("grpc-status", "5"), literal_new("grpc-message", "nope")}))});
  s.push_back({c2s, cat({frame(kHeaders, kEndHeaders, 7, cat({{0x83, 0x86}, literal(0x04, "/pkg.Echo/Slow"), {0xbe}})),
                         frame(kRst, 0, 7, {0, 0, 0, 8})})});
  s.push_back({c2s, frame(kHeaders, kEndHeaders | kEndStream, 9, {0x82, 0x86, 0x85})});
  s.push_back({s2c, cat({frame(kHeaders, kEndHeaders, 9, {0x8d}), frame(kData, kEndStream, 9, {'x'})})});
  return s;
}

std::string describe(const CompletedCall& c) {
  return std::string(c.grpc ? "grpc " : "http ") + c.service + "/" + c.method + " " + c.http_method + " " +
         c.path + " grpc=" + std::to_string(c.grpc_status) + " http=" + std::to_string(c.http_status) +
         " req=" + std::to_string(c.request_messages) + " resp=" + std::to_string(c.response_messages) +
         (c.reset ? " reset" : "");
}

std::vector<std::string> run(const std::vector<Segment>& segments, bool from_start,
                             const std::function<size_t(size_t)>& chunk, Http2Counters* counters = nullptr,
                             GrpcTrackerCounters* tracker_counters = nullptr) {
  GrpcCallTracker tracker(CallSide::Server);
  Http2Connection connection(from_start, tracker);
  uint64_t t = 0;
  for (const auto& seg : segments) {
    for (size_t pos = 0; pos < seg.bytes.size();) {
      size_t n = std::min(chunk(seg.bytes.size() - pos), seg.bytes.size() - pos);
      connection.feed(seg.dir, std::span(seg.bytes).subspan(pos, n), ++t);
      pos += n;
    }
  }
  if (counters) *counters = connection.counters();
  if (tracker_counters) *tracker_counters = tracker.counters();
  std::vector<std::string> out;
  for (const auto& c : tracker.take_completed()) out.push_back(describe(c));
  return out;
}

const std::vector<std::string> kExpected = {
    "grpc pkg.Echo/Say POST /pkg.Echo/Say grpc=0 http=200 req=1 resp=1",
    "grpc pkg.Echo/Stream POST /pkg.Echo/Stream grpc=0 http=200 req=1 resp=3",
    "grpc pkg.Echo/Find POST /pkg.Echo/Find grpc=5 http=200 req=1 resp=0",
    "grpc pkg.Echo/Slow POST /pkg.Echo/Slow grpc=1 http=0 req=0 resp=0 reset",
    "http / GET /index.html grpc=-1 http=404 req=0 resp=0",
};

}  // namespace

TEST(GrpcCalls, WholeConversation) {
  Http2Counters counters;
  EXPECT_EQ(run(conversation(), true, [](size_t n) { return n; }, &counters), kExpected);
  EXPECT_EQ(counters.header_blocks_undecodable, 0u);
  EXPECT_EQ(counters.malformed_frames, 0u);
  EXPECT_EQ(counters.bytes_skipped, 0u);
}

TEST(GrpcCalls, SplitAnywhereGivesTheSameCalls) {
  EXPECT_EQ(run(conversation(), true, [](size_t) { return 1; }), kExpected);
  std::mt19937 rng(42);
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(run(conversation(), true, [&](size_t) { return 1 + rng() % 40; }), kExpected);
}

TEST(GrpcCalls, LatencyFromFirstRequestFrameToEnd) {
  GrpcCallTracker tracker(CallSide::Client);
  Http2Connection connection(true, tracker);
  auto segments = conversation();
  for (size_t i = 0; i < 4; ++i) connection.feed(segments[i].dir, segments[i].bytes, 1000 * (i + 1));
  auto calls = tracker.take_completed();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].duration_ns, 1000u);  // request at 3000, trailers at 4000
  EXPECT_EQ(calls[0].side, CallSide::Client);
}

TEST(GrpcCalls, MidStreamStartRecoversAndCounts) {
  auto segments = conversation();
  // Start inside call 1's response: the server direction begins mid-frame, and the dynamic
  // entries inserted by call 1 were never seen.
  std::vector<Segment> tail;
  Bytes partial(segments[3].bytes.begin() + 13, segments[3].bytes.end());
  tail.push_back({Http2Direction::ServerToClient, partial});
  tail.insert(tail.end(), segments.begin() + 4, segments.end());
  Http2Counters counters;
  GrpcTrackerCounters tracker_counters;
  auto calls = run(tail, false, [](size_t n) { return n; }, &counters, &tracker_counters);
  // Calls 2-4 reference dynamic entries from before the capture: not decodable, not guessed.
  // The plain GET uses only static entries and is reported.
  EXPECT_EQ(calls, (std::vector<std::string>{"http / GET /index.html grpc=-1 http=404 req=0 resp=0"}));
  EXPECT_GE(counters.header_blocks_undecodable, 3u);
  EXPECT_GT(counters.bytes_skipped, 0u);
  EXPECT_GE(counters.resyncs, 2u);
  EXPECT_GE(tracker_counters.streams_untracked, 3u);
}

TEST(GrpcCalls, MidStreamDecoderBecomesReliableOnStaticOnlyBlock) {
  GrpcCallTracker tracker(CallSide::Server);
  Http2Connection connection(false, tracker);
  Bytes block = cat({{0x83, 0x86}, literal(0x44, "/a.B/C"), literal(0x5f, "application/grpc")});
  Bytes bytes = cat({{0x12, 0x34}, frame(kHeaders, kEndHeaders, 11, block),
                     frame(kData, kEndStream, 11, grpc_message(1))});
  EXPECT_FALSE(connection.decoder_reliable(Http2Direction::ClientToServer));
  connection.feed(Http2Direction::ClientToServer, bytes, 1);
  EXPECT_TRUE(connection.decoder_reliable(Http2Direction::ClientToServer));
  connection.feed(Http2Direction::ServerToClient,
                  cat({frame(kHeaders, kEndHeaders | kEndStream, 11, cat({{0x88}, literal_new("grpc-status", "14")})),
                       frame(6, 0, 0, Bytes(8, 0))}),  // a PING confirms the boundary
                  2);
  auto calls = tracker.take_completed();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].service, "a.B");
  EXPECT_EQ(calls[0].method, "C");
  EXPECT_EQ(calls[0].grpc_status, 14);
  EXPECT_EQ(connection.counters().bytes_skipped, 2u);
}

TEST(GrpcCalls, HostileFramesAreCountedNotFatal) {
  GrpcCallTracker tracker(CallSide::Server);
  Http2Connection connection(true, tracker);
  Bytes preface;
  append(preface, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  Bytes bytes = cat({preface, frame(kHeaders, kEndHeaders | kPadded, 1, {200, 0x82}),  // pad > length
                     frame(kContinuation, kEndHeaders, 3, {0x82}),                       // stray
                     frame(kRst, 0, 1, {0, 0}),                                         // short
                     frame(kHeaders, kEndHeaders, 5, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f})});
  connection.feed(Http2Direction::ClientToServer, bytes, 1);
  auto c = connection.counters();
  EXPECT_EQ(c.malformed_frames, 3u);
  EXPECT_EQ(c.header_blocks_undecodable, 2u);
  // An absurd frame length loses sync instead of buffering 16 MB.
  Bytes huge = {0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1};
  connection.feed(Http2Direction::ClientToServer, huge, 2);
  EXPECT_GT(connection.counters().bytes_skipped, 0u);
  std::mt19937 rng(3);
  for (int i = 0; i < 2000; ++i) {
    Bytes junk(rng() % 100);
    for (auto& b : junk) b = static_cast<uint8_t>(rng());
    connection.feed(i % 2 ? Http2Direction::ClientToServer : Http2Direction::ServerToClient, junk, 3);
  }
  SUCCEED();
}
