// Completed HTTP/2 calls become OpenTelemetry-named histograms with the right labels.
#include <gtest/gtest.h>

#include "l7/grpc_recorder.h"

using namespace ea;
using namespace ea::l7;

namespace {

const MetricSeries* series_with(const MetricFamily& family, std::string_view name, std::string_view value) {
  for (const auto& s : family.series)
    for (const auto& [n, v] : s.labels)
      if (n == name && v == value) return &s;
  return nullptr;
}

std::string label(const MetricSeries& s, std::string_view name) {
  for (const auto& [n, v] : s.labels)
    if (n == name) return v;
  return "<missing>";
}

}  // namespace

TEST(GrpcRecorder, GrpcAndHttp2CallsLandInTheirHistograms) {
  MetricRegistry registry;
  auto recorder = Http2CallRecorder::create(registry, "h2");
  ASSERT_TRUE(recorder) << recorder.error().message;
  CompletedCall unary{.side = CallSide::Server, .grpc = true, .service = "pkg.Echo", .method = "Say",
                      .grpc_status = 5, .duration_ns = 2'000'000};
  recorder->record(unary, "server.py", false);
  recorder->record(unary, "server.py", false);
  CompletedCall get{.side = CallSide::Client, .http_method = "GET", .path = "/items?id=3",
                    .http_status = 404, .duration_ns = 500'000};
  recorder->record(get, "curl", true);

  MetricsSnapshot snapshot = registry.collect();
  const MetricFamily* rpc = snapshot.find("rpc_server_duration_seconds");
  ASSERT_NE(rpc, nullptr);
  const MetricSeries* s = series_with(*rpc, "rpc_method", "Say");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->histogram.count, 2u);
  EXPECT_DOUBLE_EQ(s->histogram.sum, 0.004);
  EXPECT_EQ(label(*s, "rpc_system"), "grpc");
  EXPECT_EQ(label(*s, "rpc_service"), "pkg.Echo");
  EXPECT_EQ(label(*s, "rpc_grpc_status_code"), "5");
  EXPECT_EQ(label(*s, "process_executable_name"), "server.py");

  const MetricFamily* http = snapshot.find("http_client_request_duration_seconds");
  ASSERT_NE(http, nullptr);
  const MetricSeries* h = series_with(*http, "http_route", "/items");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->histogram.count, 1u);
  EXPECT_EQ(label(*h, "http_request_method"), "GET");
  EXPECT_EQ(label(*h, "http_response_status_code"), "404");
  EXPECT_EQ(label(*h, "network_protocol_version"), "2");
  EXPECT_EQ(label(*h, "tls"), "true");
  const MetricFamily* idle = snapshot.find("rpc_client_duration_seconds");
  EXPECT_TRUE(idle == nullptr || idle->series.empty());
}
