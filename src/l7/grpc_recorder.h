// Turns completed HTTP/2 and gRPC calls into OpenTelemetry-named duration histograms:
// rpc_{server,client}_duration_seconds for gRPC, http_{server,client}_request_duration_seconds
// for plain HTTP/2 requests.
#pragma once
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"
#include "l7/grpc_calls.h"
#include "metrics/registry.h"

namespace ea::l7 {

class Http2CallRecorder {
 public:
  // Registers (or reuses) the four histograms under `spec` in `registry`.
  static Result<Http2CallRecorder> create(MetricRegistry& registry, const std::string& spec);

  // `executable` = the observed process's comm; `tls` = the bytes came from the TLS probes.
  void record(const CompletedCall& call, std::string_view executable, bool tls);

 private:
  std::shared_ptr<Metric> rpc_server_, rpc_client_, http_server_, http_client_;
};

}  // namespace ea::l7
