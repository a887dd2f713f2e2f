// The set of running specs: apply (new or replacement), remove, list. Thread-safe.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/loaded_spec.h"
#include "core/result.h"
#include "metrics/registry.h"
#include "pipeline/shard_pool.h"

namespace ea {

struct RuntimeOptions {
  unsigned workers = 0;              // worker shards; 0 = one per CPU
  std::vector<std::string> outputs;  // sink descriptions; empty = stdout
};

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
  // Stops every spec, drains the shards and flushes the sinks (SIGINT/SIGTERM).
  void shutdown();

 private:
  explicit Runtime(RuntimeOptions options);
  RuntimeOptions options_;
  MetricRegistry metrics_;
  std::unique_ptr<ShardPool> pool_;
  std::shared_ptr<SinkSet> sinks_;
  std::mutex apply_mutex_;    // serialises apply/remove
  mutable std::mutex mutex_;  // guards specs_
  std::map<std::string, std::unique_ptr<LoadedSpec>, std::less<>> specs_;
  bool shut_down_ = false;
};

}  // namespace ea
