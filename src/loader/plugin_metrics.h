// The agent side of the plugin ABI's ea_metrics_api: metrics a user_so plugin declares and
// updates land in the runtime's registry, owned by the plugin's spec.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ebpf_agent/plugin.h"
#include "metrics/registry.h"

namespace ea {

class PluginMetrics {
 public:
  // `registry` may be null (no runtime, e.g. unit tests): declare then fails with a reason.
  PluginMetrics(MetricRegistry* registry, std::string spec);
  const ea_metrics_api* api() const { return &api_; }

 private:
  static ea_metric* declare(void* host, const ea_metric_desc* desc, char* err, uint32_t err_len);
  MetricRegistry* registry_;
  std::string spec_;
  ea_metrics_api api_;
  std::mutex mutex_;
  std::vector<std::shared_ptr<Metric>> declared_;  // keeps handles valid while the plugin lives
};

}  // namespace ea
