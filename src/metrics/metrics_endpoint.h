// The Prometheus scrape endpoint: GET /metrics renders a fresh snapshot in the text format.
//
// Anyone who can reach the port is a client, so connections are bounded: a few worker threads, a
// short queue behind them, a cap on request bytes and deadlines for reading a request and
// writing a response.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"
#include "metrics/metric.h"

namespace ea {

inline constexpr std::string_view kDefaultMetricsListen = "127.0.0.1:9464";

// "127.0.0.1:9464", "[::1]:9464", "localhost:9464", ":9464" (all interfaces). Port 0 = any free port.
struct ListenAddress {
  std::string host;  // "" = all interfaces
  int port = 0;
};
Result<ListenAddress> parse_listen_address(std::string_view listen);

class MetricsEndpoint {
 public:
  // Binds (errors name the address and the --metrics-listen flag) and serves in the background.
  static Result<std::unique_ptr<MetricsEndpoint>> start(std::string_view listen,
                                                        std::function<MetricsSnapshot()> collect);
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  std::string address() const;  // the address actually bound, "127.0.0.1:9464" / "[::1]:9464"
  void stop();                   // idempotent; also in the destructor

  struct Impl;

 private:
  explicit MetricsEndpoint(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ea
