// The connection table under the http2 processor: role inference, the connection cap (least
// recently fed evicted), idle expiry on the capture's clock, and the cap on bytes held while a
// connection's role is unknown.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "h2_fixture.h"
#include "l7/http2_connection_table.h"
#include "l7/http2_role_sniffer.h"

using namespace ea::l7;
using ea::l7::test::load_h2_fixture;

namespace {

using Bytes = std::vector<uint8_t>;

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

Bytes preface() { return Bytes(kPreface.begin(), kPreface.end()); }

CaptureChunk chunk(uint32_t fd, uint64_t time_ns, bool egress, std::span<const uint8_t> data) {
  CaptureChunk c;
  c.key = {100, fd, false, fd};
  c.time_ns = time_ns;
  c.egress = egress;
  c.side = CallSide::Server;
  c.data = data;
  return c;
}

// Feeds the fixture from `first_chunk` on as the `view` end sees it, on connection `key`, the
// capture claiming `side`; returns "method status side" per call.
std::vector<std::string> feed_fixture(Http2ConnectionTable& table, CaptureConnectionKey key, CallSide view,
                                      std::optional<CallSide> side, bool from_start, size_t first_chunk = 0) {
  auto chunks = load_h2_fixture();
  std::vector<CompletedCall> calls;
  uint64_t t = 1'000'000;
  for (size_t i = first_chunk; i < chunks.size(); ++i) {
    CaptureChunk c;
    c.key = key;
    c.time_ns = t += 1000;
    bool client_sent = chunks[i].dir == Http2Direction::ClientToServer;
    c.egress = view == CallSide::Client ? client_sent : !client_sent;
    c.side = side;
    c.from_start = from_start;
    c.data = chunks[i].bytes;
    table.feed(c, calls);
  }
  std::vector<std::string> out;
  for (const auto& call : calls)
    out.push_back(call.method + " " + std::to_string(call.grpc_status) +
                  (call.side == CallSide::Server ? " server" : " client"));
  return out;
}

const std::vector<std::string> kServerCalls = {"Say 0 server", "Stream 0 server", "Fail 5 server",
                                               "Collect 0 server"};

}  // namespace

TEST(Http2RoleSniffer, FirstPseudoHeaderTellsRequestsFromResponses) {
  EXPECT_EQ(Http2RoleSniffer::classify_header_block(Bytes{0x83, 0x86}), 1);          // :method POST
  EXPECT_EQ(Http2RoleSniffer::classify_header_block(Bytes{0x41, 0x01, 'x'}), 1);     // :authority literal
  EXPECT_EQ(Http2RoleSniffer::classify_header_block(Bytes{0x88}), -1);               // :status 200
  EXPECT_EQ(Http2RoleSniffer::classify_header_block(Bytes{0x3f, 0xe1, 0x1f, 0x88}), -1);  // size update first
  EXPECT_EQ(Http2RoleSniffer::classify_header_block(Bytes{0x08, 0x03, '4', '0', '4'}), -1);  // without indexing
  // grpcio names :path as a literal; so may Huffman-coding peers (":path" = b9 58 d3 3f).
  Bytes literal{0x40, 0x05, ':', 'p', 'a', 't', 'h', 0x01, '/'};
  EXPECT_EQ(Http2RoleSniffer::classify_header_block(literal), 1);
  EXPECT_EQ(Http2RoleSniffer::classify_header_block(Bytes{0x40, 0x84, 0xb9, 0x58, 0xd3, 0x3f, 0x01, '/'}), 1);
  Bytes status{0x00, 0x07, ':', 's', 't', 'a', 't', 'u', 's', 0x01, '2'};
  EXPECT_EQ(Http2RoleSniffer::classify_header_block(status), -1);
  // No sign: dynamic references, regular headers (trailers), other literal names, truncation.
  EXPECT_EQ(Http2RoleSniffer::classify_header_block(Bytes{0xbe}), 0);
  EXPECT_EQ(Http2RoleSniffer::classify_header_block(Bytes{0x9f}), 0);  // static 31: content-type
  EXPECT_EQ(Http2RoleSniffer::classify_header_block(Bytes{0x40, 0x0b, 'g', 'r', 'p', 'c', '-', 's'}), 0);
  EXPECT_EQ(Http2RoleSniffer::classify_header_block(Bytes{0x40, 0x05, ':', 'p'}), 0);
  EXPECT_EQ(Http2RoleSniffer::classify_header_block(Bytes{}), 0);
  EXPECT_EQ(Http2RoleSniffer::classify_header_block(Bytes{0x3f}), 0);
}

TEST(Http2RoleSniffer, PrefaceDirectionIsTheClients) {
  Http2RoleSniffer writes_preface;
  EXPECT_EQ(writes_preface.feed(true, preface()), CallSide::Client);
  Http2RoleSniffer reads_preface;
  EXPECT_EQ(reads_preface.feed(false, preface()), CallSide::Server);
}

TEST(Http2ConnectionTable, UnknownRoleIsInferredForBothEndsOfTheFixture) {
  Http2ConnectionTable table;
  // From the start: the preface decides. The client's view is the server's with egress flipped.
  EXPECT_EQ(feed_fixture(table, {1, 3, false, 1}, CallSide::Server, std::nullopt, true), kServerCalls);
  // Mid-stream, from the first request on: the request HEADERS' literal :path decides.
  auto mid = feed_fixture(table, {2, 3, false, 2}, CallSide::Server, std::nullopt, false, test::kFirstRequestChunk);
  EXPECT_EQ(mid, kServerCalls);
  EXPECT_EQ(table.counters().role_unknown_bytes, 0u);
  EXPECT_EQ(table.counters().header_blocks_undecodable, 0u);
}

TEST(Http2ConnectionTable, MidStreamTheBytesOverruleTheCapturesRoleGuess) {
  // Met mid-stream, the capture guessed "client" (the process's first message it saw was a write);
  // the request HEADERS the process reads say it serves.
  Http2ConnectionTable table;
  EXPECT_EQ(feed_fixture(table, {1, 3, false, 1}, CallSide::Server, CallSide::Client, false, test::kFirstRequestChunk),
            kServerCalls);
  // From the start the capture's role is believed (here rightly: the client's view).
  Http2ConnectionTable believed;
  auto calls = feed_fixture(believed, {1, 3, false, 1}, CallSide::Client, CallSide::Client, true);
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls[0], "Say 0 client");
}

TEST(Http2ConnectionTable, NoRoleSignForTooLongFallsBackToTheCapturesGuess) {
  Http2ConnectionTable table({.max_pending_bytes = 1000});
  std::vector<CompletedCall> calls;
  Bytes data{0, 0, 91, 0, 0, 0, 0, 0, 1};
  data.resize(100, 0x55);
  for (int i = 0; i < 25; ++i) table.feed(chunk(1, i, i % 2 == 0, data), calls);  // claims Server, mid-stream
  EXPECT_EQ(table.counters().role_unknown_bytes, 0u);
  EXPECT_EQ(table.counters().resyncs, 2u);  // the decoder ran: DATA frame boundaries found both ways
}

TEST(Http2ConnectionTable, ClientPrefaceUnderATrackedKeyStartsANewConnection) {
  // TLS over memory BIOs (grpcio) is keyed by the SSL object's address, which the next
  // connection may get: its preface must not be read as the old connection's next bytes.
  Http2ConnectionTable table;
  EXPECT_EQ(feed_fixture(table, {1, 0x80001234, true, 5}, CallSide::Server, CallSide::Server, true), kServerCalls);
  EXPECT_EQ(feed_fixture(table, {1, 0x80001234, true, 5}, CallSide::Server, CallSide::Server, true), kServerCalls);
  EXPECT_EQ(table.counters().replaced, 1u);
  EXPECT_EQ(table.counters().opened, 2u);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.counters().resyncs, 0u);
  EXPECT_EQ(table.counters().header_blocks_undecodable, 0u);
}

TEST(Http2ConnectionTable, KnownClientRoleGivesClientCalls) {
  Http2ConnectionTable table;
  auto calls = feed_fixture(table, {1, 3, true, 9}, CallSide::Client, CallSide::Client, true);
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls[2], "Fail 5 client");
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.counters().calls_completed, 4u);
}

TEST(Http2ConnectionTable, LeastRecentlyFedConnectionIsEvictedAtTheCap) {
  Http2ConnectionTable table({.max_connections = 3});
  std::vector<CompletedCall> calls;
  Bytes p = preface();
  for (uint32_t fd : {1, 2, 3}) table.feed(chunk(fd, fd, false, p), calls);
  Bytes ping{0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
  table.feed(chunk(1, 4, false, ping), calls);  // 1 is fed again: 2 is now the oldest
  table.feed(chunk(4, 5, false, p), calls);
  EXPECT_EQ(table.size(), 3u);
  EXPECT_EQ(table.counters().evicted, 1u);
  EXPECT_EQ(table.counters().opened, 4u);
  // 2 was evicted: feeding it opens it again (and evicts 3, now the oldest).
  table.feed(chunk(2, 6, false, ping), calls);
  EXPECT_EQ(table.counters().opened, 5u);
  EXPECT_EQ(table.counters().evicted, 2u);
  // 1 and 4 are still there: feeding them opens nothing.
  table.feed(chunk(1, 7, false, ping), calls);
  table.feed(chunk(4, 8, false, ping), calls);
  EXPECT_EQ(table.counters().opened, 5u);
  EXPECT_EQ(table.counters().connections, 3u);
}

TEST(Http2ConnectionTable, IdleConnectionsExpireOnTheCaptureClock) {
  const uint64_t second = 1'000'000'000;
  Http2ConnectionTable table({.idle_timeout_ns = 60 * second});
  std::vector<CompletedCall> calls;
  Bytes p = preface();
  table.feed(chunk(1, 10 * second, false, p), calls);
  table.feed(chunk(2, 50 * second, false, p), calls);
  table.feed(chunk(3, 69 * second, false, p), calls);
  EXPECT_EQ(table.size(), 3u);
  table.feed(chunk(3, 71 * second, false, p), calls);  // 1 idle for 61 s, but swept 2 s ago
  EXPECT_EQ(table.size(), 3u);
  table.feed(chunk(3, 79 * second, false, p), calls);  // the sweep every 10 s (capture clock)
  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.counters().expired, 1u);
  table.feed(chunk(3, 200 * second, false, p), calls);  // 2 as well; 3 was just fed
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.counters().expired, 2u);
}

TEST(Http2ConnectionTable, CloseForgetsTheConnectionAndCountsOpenCalls) {
  Http2ConnectionTable table;
  auto chunks = load_h2_fixture();
  std::vector<CompletedCall> calls;
  // Up to the Say request only: one call open when the process closes.
  for (size_t i = 0; i <= test::kFirstRequestChunk; ++i) {
    CaptureChunk c = chunk(7, i, chunks[i].dir == Http2Direction::ServerToClient, chunks[i].bytes);
    c.from_start = true;
    table.feed(c, calls);
  }
  EXPECT_EQ(table.size(), 1u);
  CaptureChunk close = chunk(7, 10, false, {});
  close.closed = true;
  table.feed(close, calls);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.counters().closed, 1u);
  EXPECT_EQ(table.counters().calls_unfinished, 1u);
  table.feed(close, calls);  // a second close, or one for a connection never seen: nothing
  EXPECT_EQ(table.counters().closed, 1u);
  EXPECT_EQ(table.counters().opened, 1u);
}

TEST(Http2ConnectionTable, BytesWithoutARoleSignAreHeldUpToTheCap) {
  Http2ConnectionTable table({.max_pending_bytes = 1000});
  std::vector<CompletedCall> calls;
  // DATA frames say nothing about who sends them.
  Bytes data{0, 0, 91, 0, 0, 0, 0, 0, 1};
  data.resize(100, 0x55);
  for (int i = 0; i < 25; ++i) {
    CaptureChunk c = chunk(1, i, i % 2 == 0, data);
    c.side.reset();
    table.feed(c, calls);
  }
  // 10 chunks fit, the 11th overflowed and dropped them, and so on: 20 dropped, 5 held.
  EXPECT_EQ(table.counters().role_unknown_bytes, 2000u);
  CaptureChunk close = chunk(1, 30, false, {});
  close.side.reset();
  close.closed = true;
  table.feed(close, calls);
  EXPECT_EQ(table.counters().role_unknown_bytes, 2500u);  // never attributed
  EXPECT_TRUE(calls.empty());
}

TEST(Http2ConnectionTable, KernelFromStartMarkIsBelievedOnlyWhenTheBytesAgree) {
  // A connection forgotten (evicted, expired) and met again keeps the capture's from-start mark
  // but starts mid-stream: both directions must hunt for a boundary, not only the one that
  // lacks the client preface.
  Http2ConnectionTable table;
  feed_fixture(table, {1, 3, false, 1}, CallSide::Server, CallSide::Server, true, test::kStreamRequestChunk);
  EXPECT_EQ(table.counters().resyncs, 2u);
  EXPECT_EQ(table.counters().bytes_skipped, 0u);  // the chunks start at frame boundaries
  Http2ConnectionTable from_start;
  EXPECT_EQ(feed_fixture(from_start, {1, 3, false, 1}, CallSide::Server, CallSide::Server, true), kServerCalls);
  EXPECT_EQ(from_start.counters().resyncs, 0u);
}
