// The built-in "tcp_connlat" processor on crafted connlat_event records.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "tcp_connlat.h"
#include "metrics/registry.h"
#include "pipeline/processor.h"

namespace ea {
namespace {

std::unique_ptr<Processor> make_processor() {
  const ProcessorFactory* factory = find_builtin_processor("tcp_connlat");
  EXPECT_NE(factory, nullptr) << "tcp_connlat is not registered";
  if (!factory) return nullptr;
  auto processor = (*factory)(ProcessorContext{});
  EXPECT_TRUE(processor.has_value());
  return processor ? std::move(*processor) : nullptr;
}

connlat_event ipv4_event() {
  connlat_event event{};
  event.ts_ns = 5'000'000'000;
  event.latency_ns = 123'456;
  event.pid = 4242;
  event.tgid = 4240;
  std::memcpy(event.comm, "curl", 4);
  inet_pton(AF_INET, "169.254.10.1", event.saddr);
  inet_pton(AF_INET, "169.254.10.2", event.daddr);
  event.sport = 40000;
  event.dport = 8080;
  event.family = AF_INET;
  event.result = CONNLAT_ESTABLISHED;
  return event;
}

std::span<const std::byte> bytes_of(const connlat_event& event) {
  return std::as_bytes(std::span(&event, 1));
}

TEST(TcpConnlatProcessor, DecodesAnEstablishedIpv4Connect) {
  auto processor = make_processor();
  ASSERT_TRUE(processor);
  connlat_event event = ipv4_event();
  RecordMeta meta;
  std::string fields = "prefix:";
  ASSERT_EQ(processor->process(bytes_of(event), meta, fields), ProcessOutcome::Emitted);
  EXPECT_EQ(fields,
            R"(prefix:{"pid":4242,"tgid":4240,"comm":"curl","family":"ipv4","saddr":"169.254.10.1",)"
            R"("daddr":"169.254.10.2","sport":40000,"dport":8080,"latency_us":123.456,"latency_ns":123456,)"
            R"("result":"established"})");
  EXPECT_EQ(meta.pid, 4242);
  EXPECT_EQ(meta.tgid, 4240);
  EXPECT_EQ(meta.comm, "curl");
}

TEST(TcpConnlatProcessor, DecodesARefusedIpv6ConnectWithItsError) {
  auto processor = make_processor();
  ASSERT_TRUE(processor);
  connlat_event event = ipv4_event();
  event.family = AF_INET6;
  inet_pton(AF_INET6, "fd00:ea::1", event.saddr);
  inet_pton(AF_INET6, "fd00:ea::2", event.daddr);
  event.dport = 9;
  event.latency_ns = 7;
  event.result = CONNLAT_FAILED;
  event.error = ECONNREFUSED;
  RecordMeta meta;
  std::string fields;
  ASSERT_EQ(processor->process(bytes_of(event), meta, fields), ProcessOutcome::Emitted);
  EXPECT_EQ(fields,
            R"({"pid":4242,"tgid":4240,"comm":"curl","family":"ipv6","saddr":"fd00:ea::1","daddr":"fd00:ea::2",)"
            R"("sport":40000,"dport":9,"latency_us":0.007,"latency_ns":7,"result":"failed","error":"ECONNREFUSED"})");
}

TEST(TcpConnlatProcessor, FailedConnectWithoutSocketErrorHasNoErrorField) {
  auto processor = make_processor();
  ASSERT_TRUE(processor);
  connlat_event event = ipv4_event();
  event.result = CONNLAT_FAILED;  // closed by the caller before the handshake finished
  RecordMeta meta;
  std::string fields;
  ASSERT_EQ(processor->process(bytes_of(event), meta, fields), ProcessOutcome::Emitted);
  EXPECT_TRUE(fields.ends_with(R"("result":"failed"})")) << fields;
}

TEST(TcpConnlatProcessor, FormatsEdgeAddressesAndUnnamedErrors) {
  auto processor = make_processor();
  ASSERT_TRUE(processor);
  connlat_event event = ipv4_event();
  inet_pton(AF_INET, "0.0.0.0", event.saddr);
  inet_pton(AF_INET, "255.10.0.100", event.daddr);
  event.latency_ns = 1'000'000'050;
  event.result = CONNLAT_FAILED;
  event.error = 4095;  // no errno has this number
  RecordMeta meta;
  std::string fields;
  ASSERT_EQ(processor->process(bytes_of(event), meta, fields), ProcessOutcome::Emitted);
  EXPECT_NE(fields.find(R"("saddr":"0.0.0.0","daddr":"255.10.0.100",)"), std::string::npos) << fields;
  EXPECT_NE(fields.find(R"("latency_us":1000000.050,"latency_ns":1000000050,)"), std::string::npos) << fields;
  EXPECT_TRUE(fields.ends_with(R"("result":"failed","error":"errno 4095"})")) << fields;
}

TEST(TcpConnlatProcessor, EscapesCommAndStopsAtSixteenBytes) {
  auto processor = make_processor();
  ASSERT_TRUE(processor);
  connlat_event event = ipv4_event();
  std::memcpy(event.comm, "a\"b\\c\ndddddddddd", sizeof(event.comm));  // 16 bytes, no NUL
  RecordMeta meta;
  std::string fields;
  ASSERT_EQ(processor->process(bytes_of(event), meta, fields), ProcessOutcome::Emitted);
  EXPECT_NE(fields.find(R"("comm":"a\"b\\c\ndddddddddd",)"), std::string::npos) << fields;
  EXPECT_EQ(meta.comm.size(), 16u);
}

TEST(TcpConnlatProcessor, RejectsRecordsOfAnotherSize) {
  auto processor = make_processor();
  ASSERT_TRUE(processor);
  connlat_event event = ipv4_event();
  std::vector<std::byte> longer(sizeof(event) + 8);
  std::memcpy(longer.data(), &event, sizeof(event));
  for (std::span<const std::byte> input : {bytes_of(event).first(sizeof(event) - 1), std::span<const std::byte>(longer),
                                           std::span<const std::byte>()}) {
    RecordMeta meta;
    std::string fields;
    EXPECT_EQ(processor->process(input, meta, fields), ProcessOutcome::Failed);
    EXPECT_TRUE(fields.empty());
    EXPECT_NE(processor->error().find("expected 88"), std::string_view::npos) << processor->error();
  }
}

TEST(TcpConnlatProcessor, RejectsUnknownFamilyAndResult) {
  auto processor = make_processor();
  ASSERT_TRUE(processor);
  connlat_event bad_family = ipv4_event();
  bad_family.family = AF_UNIX;
  connlat_event bad_result = ipv4_event();
  bad_result.result = 0;
  RecordMeta meta;
  std::string fields;
  EXPECT_EQ(processor->process(bytes_of(bad_family), meta, fields), ProcessOutcome::Failed);
  EXPECT_NE(processor->error().find("address family 1"), std::string_view::npos) << processor->error();
  EXPECT_EQ(processor->process(bytes_of(bad_result), meta, fields), ProcessOutcome::Failed);
  EXPECT_NE(processor->error().find("connect result 0"), std::string_view::npos) << processor->error();
  EXPECT_TRUE(fields.empty());
}

TEST(TcpConnlatProcessor, ObservesConnectDurationByProcessServerAndResult) {
  MetricRegistry registry;
  Spec spec;
  spec.name = "tcp_connlat";
  auto processor = (*find_builtin_processor("tcp_connlat"))(ProcessorContext{.spec = &spec, .metrics = &registry});
  ASSERT_TRUE(processor) << processor.error().message;
  RecordMeta meta;
  std::string fields;
  connlat_event fast = ipv4_event();  // 123.456 us, established
  connlat_event slow = ipv4_event();
  slow.latency_ns = 2'000'000'000;
  slow.result = CONNLAT_FAILED;
  slow.error = ECONNREFUSED;
  for (const connlat_event* event : {&fast, &fast, &slow})
    ASSERT_EQ((*processor)->process(bytes_of(*event), meta, fields), ProcessOutcome::Emitted);

  MetricsSnapshot snapshot = registry.collect();
  ASSERT_EQ(snapshot.families.size(), 1u);
  const MetricFamily& family = snapshot.families[0];
  EXPECT_EQ(family.name, "tcp_connect_duration_seconds");
  EXPECT_EQ(family.kind, MetricKind::Histogram);
  EXPECT_EQ(family.spec, "tcp_connlat");
  ASSERT_EQ(family.series.size(), 2u);
  const MetricSeries& established = family.series[0];
  EXPECT_EQ(established.labels, (LabelSet{{"process_executable_name", "curl"},
                                          {"result", "established"},
                                          {"server_address", "169.254.10.2"},
                                          {"server_port", "8080"}}));
  EXPECT_EQ(established.histogram.count, 2u);
  EXPECT_NEAR(established.histogram.sum, 2 * 123.456e-6, 1e-12);
  // 123 us falls in the (100 us, 250 us] bucket, the fifth.
  EXPECT_EQ(established.histogram.counts.at(4), 2u);
  const MetricSeries& failed = family.series[1];
  EXPECT_EQ(failed.labels.at(1), (std::pair<std::string, std::string>{"result", "failed"}));
  EXPECT_EQ(failed.histogram.count, 1u);
  EXPECT_EQ(failed.histogram.counts.at(16), 1u);  // (1 s, 2.5 s]
}

}  // namespace
}  // namespace ea
