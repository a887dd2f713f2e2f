#include "l7/grpc_recorder.h"

#include <string>

namespace ea::l7 {
namespace {

// 100 us (loopback unary calls) to 30 s (long streams); OpenTelemetry's HTTP defaults start at 5 ms,
// too coarse for services on one host.
const std::vector<double> kDurationBounds = {1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05,
                                             0.1,  0.25,   0.5,  1,    2.5,    5,    10,   30};

Result<std::shared_ptr<Metric>> histogram(MetricRegistry& registry, const std::string& spec,
                                          std::string name, std::string help,
                                          std::vector<std::string> labels) {
  return registry.metric(MetricDesc{.name = std::move(name),
                                    .help = std::move(help),
                                    .unit = "seconds",
                                    .kind = MetricKind::Histogram,
                                    .spec = spec,
                                    .label_names = std::move(labels),
                                    .bounds = kDurationBounds});
}

// The route is the path without its query: ids in paths are left to the registry's cardinality cap.
std::string_view route_of(std::string_view path) { return path.substr(0, path.find('?')); }

}  // namespace

Result<Http2CallRecorder> Http2CallRecorder::create(MetricRegistry& registry, const std::string& spec) {
  const std::vector<std::string> rpc_labels = {"process_executable_name", "rpc_system", "rpc_service",
                                               "rpc_method", "rpc_grpc_status_code", "tls"};
  const std::vector<std::string> http_labels = {"process_executable_name", "http_request_method",
                                                "http_response_status_code", "http_route",
                                                "network_protocol_name", "network_protocol_version", "tls"};
  Http2CallRecorder r;
  auto rpc_server = histogram(registry, spec, "rpc_server_duration_seconds",
                              "gRPC calls served, from the first request frame to the trailers", rpc_labels);
  if (!rpc_server) return std::unexpected(with_context(rpc_server.error(), "HTTP/2 call recorder"));
  auto rpc_client = histogram(registry, spec, "rpc_client_duration_seconds",
                              "gRPC calls made, from the first request frame to the trailers", rpc_labels);
  if (!rpc_client) return std::unexpected(with_context(rpc_client.error(), "HTTP/2 call recorder"));
  auto http_server = histogram(registry, spec, "http_server_request_duration_seconds",
                               "HTTP requests served (HTTP/2 here), first request frame to response end",
                               http_labels);
  if (!http_server) return std::unexpected(with_context(http_server.error(), "HTTP/2 call recorder"));
  auto http_client = histogram(registry, spec, "http_client_request_duration_seconds",
                               "HTTP requests made (HTTP/2 here), first request frame to response end",
                               http_labels);
  if (!http_client) return std::unexpected(with_context(http_client.error(), "HTTP/2 call recorder"));
  r.rpc_server_ = *rpc_server;
  r.rpc_client_ = *rpc_client;
  r.http_server_ = *http_server;
  r.http_client_ = *http_client;
  return r;
}

void Http2CallRecorder::record(const CompletedCall& call, std::string_view executable, bool tls) {
  double seconds = static_cast<double>(call.duration_ns) / 1e9;
  std::string_view tls_label = tls ? "true" : "false";
  bool server = call.side == CallSide::Server;
  if (call.grpc) {
    std::string status = std::to_string(call.grpc_status < 0 ? 2 : call.grpc_status);  // 2 = UNKNOWN
    (server ? rpc_server_ : rpc_client_)
        ->observe({executable, "grpc", call.service, call.method, status, tls_label}, seconds);
    return;
  }
  // A reset or unreadable response has no status code; OpenTelemetry leaves the label empty.
  std::string status = call.http_status > 0 ? std::to_string(call.http_status) : "";
  (server ? http_server_ : http_client_)
      ->observe({executable, call.http_method, status, route_of(call.path), "http", "2", tls_label}, seconds);
}

}  // namespace ea::l7
