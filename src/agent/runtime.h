// The set of running specs: apply (new or replacement), remove, list. Thread-safe.
#pragma once
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/loaded_spec.h"
#include "core/result.h"
#include "core/periodic_thread.h"
#include "core/unique_fd.h"
#include "metrics/metrics_endpoint.h"
#include "metrics/registry.h"
#include "pipeline/shard_pool.h"

namespace ea {

struct RuntimeOptions {
  unsigned workers = 0;              // worker shards; 0 = one per CPU
  std::vector<std::string> outputs;  // output descriptions; empty = kDefaultOutputs
  std::chrono::milliseconds metrics_interval{10'000};  // how often outputs receive metric snapshots
  bool bpf_stats = true;             // turn on the kernel's BPF run-time statistics while running
  std::string metrics_listen{kDefaultMetricsListen};  // Prometheus /metrics; "off" = not served
  // An address the operator chose must bind; the default one only warns when taken (another
  // agent or exporter on the host must not stop this one from collecting).
  bool metrics_listen_required = false;
};

// What the agent writes to when no output is configured: the embedded time-series store.
inline const std::vector<std::string> kDefaultOutputs{"tsdb"};

class Runtime {
 public:
  static Result<std::unique_ptr<Runtime>> create(RuntimeOptions options);
  ~Runtime();

  // Loads and starts `spec`. A spec of the same name is replaced only once the new version is
  // loaded (verifier passed); if the new version then fails to start, the old one is restarted.
  // Any failure leaves every other spec, and the previous version, running.
  Result<void> apply(Spec spec);
  Result<void> remove(std::string_view name);
  bool contains(std::string_view name) const;
  std::vector<std::string> names() const;
  nlohmann::json list() const;
  MetricRegistry& metrics() { return metrics_; }
  // Hands a metric snapshot to every output that takes metrics, honouring each spec's `storage:`.
  // Runs every metrics_interval, and once more at shutdown.
  void publish_metrics();
  // The snapshot an output of `kind` receives, from an unmerged collection: agent metrics plus
  // those of specs whose `storage:` selects that kind, families of one name merged.
  MetricsSnapshot metrics_for(const MetricsSnapshot& snapshot, std::string_view kind) const;
  std::string metrics_address() const { return metrics_endpoint_ ? metrics_endpoint_->address() : ""; }
  // Stops every spec, drains the shards and flushes the sinks (SIGINT/SIGTERM).
  void shutdown();

 private:
  explicit Runtime(RuntimeOptions options);
  RuntimeOptions options_;
  MetricRegistry metrics_;
  UniqueFd bpf_stats_fd_;  // holding it keeps kernel.bpf_stats_enabled on
  std::unique_ptr<PeriodicThread> metrics_pump_;
  std::unique_ptr<MetricsEndpoint> metrics_endpoint_;
  std::unique_ptr<ShardPool> pool_;
  std::shared_ptr<SinkSet> sinks_;
  std::mutex apply_mutex_;    // serialises apply/remove
  mutable std::mutex mutex_;  // guards specs_
  std::map<std::string, std::unique_ptr<LoadedSpec>, std::less<>> specs_;
  // Each spec's `storage:`, kept past shutdown for the last metrics snapshot.
  std::map<std::string, std::optional<StorageSpec>, std::less<>> storage_by_spec_;
  bool shut_down_ = false;
};

}  // namespace ea
