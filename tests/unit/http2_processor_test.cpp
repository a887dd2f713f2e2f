// The built-in "http2" processor on l7_payload records (struct l7_payload_header + bytes) cut
// from real grpcio traffic (tests/fixtures/h2): calls by method and status in the rpc_*
// histograms, for either end, from the start or mid-stream, with gaps and closes; hostile
// records refused without harm; health in ebpf_agent_http2_* metrics.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "h2_fixture.h"
#include "l7.h"
#include "metrics/registry.h"
#include "pipeline/processor.h"

namespace ea {
namespace {

using l7::Http2Direction;
using l7::test::load_h2_fixture;

struct Conn {
  uint32_t tgid = 4000;
  uint32_t fd = 7;
  uint64_t conn_id = 1;
  uint8_t role = L7_ROLE_SERVER;
  uint8_t tls = 0;
  const char* comm = "server.py";
};

std::vector<std::byte> make_record(const Conn& c, bool egress, std::span<const uint8_t> data, uint8_t flags,
                                   uint64_t ts_ns) {
  l7_payload_header h{};
  h.ts_ns = ts_ns;
  h.tgid = c.tgid;
  h.fd = c.fd;
  std::strncpy(h.comm, c.comm, sizeof(h.comm));
  h.egress = egress;
  h.tls = c.tls;
  h.role = c.role;
  h.flags = flags;
  h.len = static_cast<uint32_t>(data.size());
  h.conn_id = c.conn_id;
  std::vector<std::byte> out(sizeof(h) + data.size());
  std::memcpy(out.data(), &h, sizeof(h));
  if (!data.empty()) std::memcpy(out.data() + sizeof(h), data.data(), data.size());
  return out;
}

class Http2ProcessorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spec_.name = "http";
    processor_ = make();
    ASSERT_TRUE(processor_);
  }

  std::unique_ptr<Processor> make() {
    const ProcessorFactory* factory = find_builtin_processor("http2");
    EXPECT_NE(factory, nullptr) << "http2 is not registered";
    if (!factory) return nullptr;
    auto processor = (*factory)(ProcessorContext{.spec = &spec_, .metrics = &registry_});
    EXPECT_TRUE(processor.has_value()) << processor.error().message;
    return processor ? std::move(*processor) : nullptr;
  }

  ProcessOutcome process(const std::vector<std::byte>& record, Processor* processor = nullptr) {
    RecordMeta meta;
    std::string fields;
    ProcessOutcome outcome = (processor ? processor : processor_.get())->process(record, meta, fields);
    EXPECT_TRUE(fields.empty()) << "the http2 processor emits metrics, not events";
    return outcome;
  }

  // Records of the fixture as `c` (its role: which end) sees them, each fixture chunk cut into
  // syscall-sized pieces of 1..max_piece bytes, from byte `skip` of the capture on.
  std::vector<std::vector<std::byte>> fixture_records(const Conn& c, uint8_t flags, size_t max_piece = 4096,
                                                      size_t skip = 0, unsigned seed = 1) {
    std::mt19937 rng(seed);
    std::vector<std::vector<std::byte>> out;
    size_t seen = 0;
    for (const auto& chunk : load_h2_fixture()) {
      bool client_sent = chunk.dir == Http2Direction::ClientToServer;
      bool egress = c.role == L7_ROLE_CLIENT ? client_sent : !client_sent;
      size_t begin = seen >= skip ? 0 : std::min(chunk.bytes.size(), skip - seen);
      seen += chunk.bytes.size();
      for (size_t pos = begin; pos < chunk.bytes.size();) {
        size_t n = std::min<size_t>(1 + rng() % max_piece, chunk.bytes.size() - pos);
        out.push_back(make_record(c, egress, std::span(chunk.bytes).subspan(pos, n), flags, ts_ += 50'000));
        pos += n;
      }
    }
    return out;
  }

  void feed_fixture(const Conn& c, uint8_t flags, size_t max_piece = 4096) {
    for (const auto& record : fixture_records(c, flags, max_piece)) ASSERT_EQ(process(record), ProcessOutcome::Skipped);
  }

  void close(const Conn& c) {
    ASSERT_EQ(process(make_record(c, false, {}, L7_PAYLOAD_CLOSED, ts_ += 1000)), ProcessOutcome::Skipped);
  }

  // "service/method status" -> calls counted in histogram `name`, checking the constant labels.
  std::map<std::string, uint64_t> calls(std::string_view name, std::string_view comm = "server.py",
                                        std::string_view tls = "false") {
    std::map<std::string, uint64_t> out;
    MetricsSnapshot snapshot = registry_.collect();
    const MetricFamily* family = snapshot.find(name);
    if (!family) return out;
    for (const MetricSeries& series : family->series) {
      std::map<std::string, std::string> labels(series.labels.begin(), series.labels.end());
      EXPECT_EQ(labels["process_executable_name"], comm);
      EXPECT_EQ(labels["tls"], tls);
      EXPECT_EQ(labels["rpc_system"], "grpc");
      out[labels["rpc_service"] + "/" + labels["rpc_method"] + " " + labels["rpc_grpc_status_code"]] +=
          series.histogram.count;
    }
    return out;
  }

  double health(std::string_view name, std::optional<std::string> reason = std::nullopt) {
    MetricsSnapshot snapshot = registry_.collect();
    const MetricFamily* family = snapshot.find(name);
    EXPECT_NE(family, nullptr) << name;
    if (!family) return -1;
    double total = 0;
    for (const MetricSeries& series : family->series) {
      if (reason) {
        bool match = false;
        for (const auto& [label, value] : series.labels) match |= label == "reason" && value == *reason;
        if (!match) continue;
      }
      total += series.value;
    }
    return total;
  }

  Spec spec_;
  MetricRegistry registry_;
  std::unique_ptr<Processor> processor_;
  uint64_t ts_ = 1'000'000'000;
};

const std::map<std::string, uint64_t> kFixtureCalls = {
    {"pkg.Echo/Say 0", 1}, {"pkg.Echo/Stream 0", 1}, {"pkg.Echo/Fail 5", 1}, {"pkg.Echo/Collect 0", 1}};

TEST_F(Http2ProcessorTest, ServerFromTheStartInSyscallSizedRecords) {
  Conn server;
  feed_fixture(server, L7_PAYLOAD_FROM_START, 64);
  EXPECT_EQ(calls("rpc_server_duration_seconds"), kFixtureCalls);
  EXPECT_TRUE(calls("rpc_client_duration_seconds").empty());
  EXPECT_EQ(health("ebpf_agent_http2_connections"), 1);
  EXPECT_EQ(health("ebpf_agent_http2_connections_opened"), 1);
  EXPECT_EQ(health("ebpf_agent_http2_header_blocks_undecodable"), 0);
  EXPECT_EQ(health("ebpf_agent_http2_skipped_bytes"), 0);
  close(server);
  EXPECT_EQ(health("ebpf_agent_http2_connections"), 0);
  EXPECT_EQ(health("ebpf_agent_http2_connections_removed", "closed"), 1);
  EXPECT_EQ(health("ebpf_agent_http2_calls_unfinished"), 0);
}

TEST_F(Http2ProcessorTest, ClientOverTlsByteByByte) {
  Conn client{.tgid = 5000, .fd = 9, .conn_id = 2, .role = L7_ROLE_CLIENT, .tls = 1, .comm = "client.py"};
  feed_fixture(client, L7_PAYLOAD_FROM_START, 1);
  EXPECT_EQ(calls("rpc_client_duration_seconds", "client.py", "true"), kFixtureCalls);
  EXPECT_TRUE(calls("rpc_server_duration_seconds").empty());
}

TEST_F(Http2ProcessorTest, BothEndsWithUnknownRolesInterleaved) {
  // A server and its client on one host, neither role known to the capture: the preface tells.
  Conn server{.tgid = 4000, .fd = 7, .conn_id = 1, .role = L7_ROLE_UNKNOWN, .comm = "server.py"};
  Conn client{.tgid = 5000, .fd = 7, .conn_id = 2, .role = L7_ROLE_UNKNOWN, .comm = "client.py"};
  auto from_server = fixture_records(server, L7_PAYLOAD_FROM_START, 16, 0, 1);
  Conn client_as_client = client;
  client_as_client.role = L7_ROLE_CLIENT;  // only to pick egress right; the records say unknown
  auto from_client = fixture_records(client_as_client, L7_PAYLOAD_FROM_START, 16, 0, 2);
  for (auto& record : from_client) record[offsetof(l7_payload_header, role)] = static_cast<std::byte>(L7_ROLE_UNKNOWN);
  for (size_t i = 0; i < std::max(from_server.size(), from_client.size()); ++i) {
    if (i < from_server.size()) EXPECT_EQ(process(from_server[i]), ProcessOutcome::Skipped);
    if (i < from_client.size()) EXPECT_EQ(process(from_client[i]), ProcessOutcome::Skipped);
  }
  EXPECT_EQ(calls("rpc_server_duration_seconds"), kFixtureCalls);
  EXPECT_EQ(calls("rpc_client_duration_seconds", "client.py"), kFixtureCalls);
  EXPECT_EQ(health("ebpf_agent_http2_connections"), 2);
  EXPECT_EQ(health("ebpf_agent_http2_role_unknown_bytes"), 0);
}

TEST_F(Http2ProcessorTest, LateStartReportsOnlyRealCallsAndCountsTheRest) {
  Conn server;
  size_t total = 0;
  for (const auto& chunk : load_h2_fixture()) total += chunk.bytes.size();
  // Start a third of the way in, inside a chunk; the kernel sets no from-start mark.
  for (const auto& record : fixture_records(server, 0, 4096, total / 3))
    ASSERT_EQ(process(record), ProcessOutcome::Skipped);
  auto seen = calls("rpc_server_duration_seconds");
  uint64_t reported = 0;
  for (const auto& [call, count] : seen) {
    EXPECT_TRUE(kFixtureCalls.contains(call)) << call;  // never a guessed method or status
    reported += count;
  }
  EXPECT_LT(reported, 4u);
  EXPECT_GT(health("ebpf_agent_http2_header_blocks_undecodable") + health("ebpf_agent_http2_streams_untracked"), 0);
}

TEST_F(Http2ProcessorTest, TruncatedRecordMeansAGapInThatDirection) {
  Conn server;
  auto chunks = load_h2_fixture();
  ASSERT_EQ(chunks[l7::test::kSayResponseChunk].dir, Http2Direction::ServerToClient);
  for (size_t i = 0; i < chunks.size(); ++i) {
    bool egress = chunks[i].dir == Http2Direction::ServerToClient;
    std::span<const uint8_t> bytes = chunks[i].bytes;
    uint8_t flags = L7_PAYLOAD_FROM_START;
    if (i == l7::test::kSayResponseChunk) {
      bytes = bytes.first(40);  // the kernel captured 40 bytes of a longer write
      flags |= L7_PAYLOAD_TRUNCATED;
    }
    ASSERT_EQ(process(make_record(server, egress, bytes, flags, ts_ += 1000)), ProcessOutcome::Skipped);
  }
  // Say's response was in the gap; each later call is reported once, with its true status or
  // UNKNOWN (2) when its response headers referenced table entries lost in the gap.
  auto seen = calls("rpc_server_duration_seconds");
  EXPECT_FALSE(seen.contains("pkg.Echo/Say 0"));
  uint64_t reported = 0;
  for (const auto& [call, count] : seen) {
    EXPECT_TRUE(kFixtureCalls.contains(call) || call.ends_with(" 2")) << call;
    reported += count;
  }
  EXPECT_EQ(reported, 3u);
  EXPECT_EQ(health("ebpf_agent_http2_capture_gaps"), 1);
  EXPECT_EQ(health("ebpf_agent_http2_resyncs"), 1);
  EXPECT_EQ(health("ebpf_agent_http2_skipped_bytes"), 40);
  close(server);
  EXPECT_EQ(health("ebpf_agent_http2_calls_unfinished"), 1);  // Say
}

TEST_F(Http2ProcessorTest, ReusedFdIsANewConnection) {
  Conn first;
  feed_fixture(first, L7_PAYLOAD_FROM_START);
  // The process closed nothing we saw, yet the same fd now carries a new connection (new
  // conn_id): decoding it from the start must not be disturbed by the old one.
  Conn second = first;
  second.conn_id = 77;
  feed_fixture(second, L7_PAYLOAD_FROM_START, 100);
  auto seen = calls("rpc_server_duration_seconds");
  for (const auto& [call, count] : kFixtureCalls) EXPECT_EQ(seen[call], 2u) << call;
  EXPECT_EQ(health("ebpf_agent_http2_connections"), 2);
  close(first);
  close(second);
  EXPECT_EQ(health("ebpf_agent_http2_connections"), 0);
  EXPECT_EQ(health("ebpf_agent_http2_connections_removed", "closed"), 2);
}

TEST_F(Http2ProcessorTest, HostileRecordsAreRefusedWithAReason) {
  Conn server;
  std::vector<uint8_t> data(16, 0);
  auto good = make_record(server, false, data, 0, 1);
  struct Case {
    std::vector<std::byte> record;
    std::string reason;
  };
  std::vector<Case> cases;
  cases.push_back({{}, "short"});
  cases.push_back({std::vector<std::byte>(good.begin(), good.begin() + sizeof(l7_payload_header) - 1), "short"});
  auto lie_longer = good;
  lie_longer.pop_back();  // len says 16, 15 follow
  cases.push_back({lie_longer, "length_mismatch"});
  auto lie_shorter = good;
  lie_shorter.push_back(std::byte{0});
  cases.push_back({lie_shorter, "length_mismatch"});
  auto huge = good;
  uint32_t huge_len = 0xffffffff;
  std::memcpy(huge.data() + offsetof(l7_payload_header, len), &huge_len, sizeof(huge_len));
  cases.push_back({huge, "length_mismatch"});
  std::vector<uint8_t> too_much(L7_CAPTURE_MAX + 1, 0);
  cases.push_back({make_record(server, false, too_much, 0, 1), "too_long"});
  auto bad_role = good;
  bad_role[offsetof(l7_payload_header, role)] = std::byte{3};
  cases.push_back({bad_role, "bad_field"});
  auto bad_flags = good;
  bad_flags[offsetof(l7_payload_header, flags)] = std::byte{0x80};
  cases.push_back({bad_flags, "bad_field"});
  auto bad_egress = good;
  bad_egress[offsetof(l7_payload_header, egress)] = std::byte{2};
  cases.push_back({bad_egress, "bad_field"});

  std::map<std::string, double> expected;
  for (const auto& c : cases) {
    EXPECT_EQ(process(c.record), ProcessOutcome::Failed) << c.reason;
    EXPECT_FALSE(processor_->error().empty());
    ++expected[c.reason];
  }
  for (const auto& [reason, count] : expected)
    EXPECT_EQ(health("ebpf_agent_http2_rejected_records", reason), count) << reason;
  EXPECT_EQ(health("ebpf_agent_http2_connections_opened"), 0);
  // The largest capture the kernel sends is fine, and so is a record of only a header.
  std::vector<uint8_t> most(L7_CAPTURE_MAX, 0);
  EXPECT_EQ(process(make_record(server, false, most, 0, 1)), ProcessOutcome::Skipped);
  EXPECT_EQ(process(make_record(server, false, {}, 0, 1)), ProcessOutcome::Skipped);
}

TEST_F(Http2ProcessorTest, RandomRecordsNeverCrashAndStayBounded) {
  std::mt19937 rng(7);
  std::vector<uint8_t> data;
  for (int i = 0; i < 20000; ++i) {
    Conn c{.tgid = static_cast<uint32_t>(rng() % 50), .fd = static_cast<uint32_t>(rng() % 100),
           .conn_id = rng() % 3, .role = static_cast<uint8_t>(rng() % 3), .tls = static_cast<uint8_t>(rng() % 2)};
    data.resize(rng() % 300);
    for (auto& b : data) b = static_cast<uint8_t>(rng());
    // Half the chunks start like HTTP/2 so some connections get past boundary hunting.
    if (data.size() >= 9 && rng() % 2) {
      uint32_t length = static_cast<uint32_t>(data.size() - 9);
      data[0] = 0;
      data[1] = static_cast<uint8_t>(length >> 8);
      data[2] = static_cast<uint8_t>(length);
      data[3] = static_cast<uint8_t>(rng() % 10);
    }
    uint8_t flags = static_cast<uint8_t>(rng() % 8);
    auto record = make_record(c, rng() % 2, data, flags, ts_ += rng() % 1'000'000);
    if (rng() % 50 == 0) record.resize(rng() % record.size());  // and some torn records
    process(record);
  }
  EXPECT_LE(health("ebpf_agent_http2_connections"), 4096);
  EXPECT_GE(health("ebpf_agent_http2_connections"), 0);
}

TEST_F(Http2ProcessorTest, ConnectionCapEvictsTheLeastRecentlyFed) {
  std::vector<uint8_t> preface = load_h2_fixture().front().bytes;
  for (uint32_t fd = 0; fd < 4100; ++fd) {
    Conn c{.fd = fd, .conn_id = fd};
    ASSERT_EQ(process(make_record(c, false, preface, L7_PAYLOAD_FROM_START, ts_ += 10)), ProcessOutcome::Skipped);
  }
  EXPECT_EQ(health("ebpf_agent_http2_connections"), 4096);
  EXPECT_EQ(health("ebpf_agent_http2_connections_removed", "evicted"), 4);
  EXPECT_EQ(health("ebpf_agent_http2_connections_opened"), 4100);
}

TEST_F(Http2ProcessorTest, ShardInstancesShareTheConnectionsGauge) {
  auto other = make();
  ASSERT_TRUE(other);
  std::vector<uint8_t> preface = load_h2_fixture().front().bytes;
  Conn a{.fd = 1}, b{.fd = 2};
  EXPECT_EQ(process(make_record(a, false, preface, L7_PAYLOAD_FROM_START, 1)), ProcessOutcome::Skipped);
  EXPECT_EQ(process(make_record(b, false, preface, L7_PAYLOAD_FROM_START, 1), other.get()), ProcessOutcome::Skipped);
  EXPECT_EQ(health("ebpf_agent_http2_connections"), 2);
  other.reset();  // a spec stopping: its instances take their connections with them
  EXPECT_EQ(health("ebpf_agent_http2_connections"), 1);
}

TEST(Http2ProcessorFactory, NeedsTheMetricRegistry) {
  const ProcessorFactory* factory = find_builtin_processor("http2");
  ASSERT_NE(factory, nullptr);
  auto processor = (*factory)(ProcessorContext{});
  ASSERT_FALSE(processor.has_value());
  EXPECT_NE(processor.error().message.find("registry"), std::string::npos);
}

}  // namespace
}  // namespace ea
