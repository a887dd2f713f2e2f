#include "agent/runtime.h"

#include <thread>

#include <bpf/bpf.h>
#include <spdlog/spdlog.h>

#include "agent/health_metrics.h"
#include "agent/storage_selection.h"
#include "sink/kafka_health.h"
#include "tsdb/tsdb_defaults.h"

namespace ea {

Runtime::Runtime(RuntimeOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<Runtime>> Runtime::create(RuntimeOptions options) {
  std::unique_ptr<Runtime> runtime(new Runtime(std::move(options)));
  auto sinks = std::make_shared<SinkSet>();
  std::vector<std::string> outputs = runtime->options_.outputs;
  if (outputs.empty()) outputs = kDefaultOutputs;
  for (const std::string& output : outputs) {
    auto sink = make_sink(output);
    if (!sink) return std::unexpected(sink.error());
    sinks->push_back(std::shared_ptr<Sink>(std::move(*sink)));
  }
  runtime->sinks_ = std::move(sinks);
  if (runtime->options_.outputs.empty())
    spdlog::info("no --output given: storing to the embedded store in {} (read it back with `ebpf-agent query`)",
                 tsdb::kDefaultTsdbDir);
  else
    for (const auto& sink : *runtime->sinks_) spdlog::info("writing to {}", sink->name());
  unsigned workers = runtime->options_.workers;
  if (workers == 0) workers = std::max(1u, std::thread::hardware_concurrency());
  runtime->pool_ = std::make_unique<ShardPool>(workers);

  if (runtime->options_.bpf_stats) {
    int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
    if (fd < 0)
      spdlog::warn("cannot turn on kernel BPF run-time statistics ({}): program run counts and times stay 0",
                   strerror(errno));
    runtime->bpf_stats_fd_ = UniqueFd(fd);
  }
  Runtime* self = runtime.get();
  runtime->metrics_.add_collector("", [self](std::vector<MetricFamily>& out) {
    append_runtime_health(self->list(), out);
    append_process_metrics(out);
  });
  if (runtime->options_.metrics_listen != "off") {
    auto endpoint = MetricsEndpoint::start(runtime->options_.metrics_listen, [self] {
      return self->metrics_for(self->metrics_.collect_unmerged(), "prometheus");
    });
    if (endpoint) {
      runtime->metrics_endpoint_ = std::move(*endpoint);
      spdlog::info("serving Prometheus metrics on http://{}/metrics", runtime->metrics_endpoint_->address());
    } else if (runtime->options_.metrics_listen_required) {
      return std::unexpected(endpoint.error());
    } else {
      spdlog::warn("{}; running without the /metrics endpoint", endpoint.error().message);
    }
  }
  if (runtime->options_.metrics_interval.count() > 0)
    runtime->metrics_pump_ = std::make_unique<PeriodicThread>(runtime->options_.metrics_interval,
                                                              [self] { self->publish_metrics(); });
  return runtime;
}

Runtime::~Runtime() { shutdown(); }

Result<void> Runtime::apply(Spec spec) {
  // Applies are serialised; the slow part (fetch, verifier) runs without blocking list().
  std::lock_guard apply_lock(apply_mutex_);
  std::string name = spec.name;
  std::string version = spec.version;
  auto prepared = LoadedSpec::prepare(std::move(spec), RuntimeContext{pool_.get(), sinks_, &metrics_});
  if (!prepared) return std::unexpected(with_context(prepared.error(), fmt::format("spec '{}' not applied", name)));
  std::unique_ptr<LoadedSpec> next = std::move(*prepared);

  std::lock_guard lock(mutex_);
  if (shut_down_) return fail("the agent is shutting down");

  auto current = specs_.find(name);
  if (current == specs_.end()) {
    if (auto started = next->start(); !started)
      return std::unexpected(with_context(started.error(), fmt::format("spec '{}' not applied", name)));
    storage_by_spec_[name] = next->spec().storage;
    specs_.emplace(name, std::move(next));
    spdlog::info("spec '{}' version '{}' started", name, version);
    return {};
  }

  // Replacement: the old version hands over its hooks, FIFOs and pins to the new one.
  LoadedSpec& previous = *current->second;
  previous.stop();
  if (auto started = next->start(); !started) {
    next.reset();
    if (auto restored = previous.start(); !restored)
      spdlog::error("spec '{}': the previous version could not be restarted either: {}", name,
                    restored.error().message);
    return std::unexpected(with_context(started.error(), fmt::format("spec '{}' not replaced (previous version kept)", name)));
  }
  storage_by_spec_[name] = next->spec().storage;
  current->second = std::move(next);
  spdlog::info("spec '{}' replaced by version '{}'", name, version);
  return {};
}

Result<void> Runtime::remove(std::string_view name) {
  std::lock_guard apply_lock(apply_mutex_);
  std::unique_ptr<LoadedSpec> removed;
  {
    std::lock_guard lock(mutex_);
    auto it = specs_.find(name);
    if (it == specs_.end()) {
      std::vector<std::string> known;
      for (const auto& [spec_name, spec] : specs_) known.push_back(spec_name);
      return failf("no spec named '{}' is running (running: {})", name,
                   known.empty() ? std::string("none") : fmt::format("{}", fmt::join(known, ", ")));
    }
    removed = std::move(it->second);
    specs_.erase(it);
    storage_by_spec_.erase(std::string(name));
  }
  removed->stop();
  removed.reset();
  metrics_.remove_spec(name);  // closes objects, plugins, FIFOs, helper processes
  for (const auto& sink : *sinks_) sink->flush();
  spdlog::info("spec '{}' deleted", name);
  return {};
}

bool Runtime::contains(std::string_view name) const {
  std::lock_guard lock(mutex_);
  return specs_.find(name) != specs_.end();
}

std::vector<std::string> Runtime::names() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> names;
  for (const auto& [name, spec] : specs_) names.push_back(name);
  return names;
}

nlohmann::json Runtime::list() const {
  std::lock_guard lock(mutex_);
  nlohmann::json specs = nlohmann::json::array();
  for (const auto& [name, spec] : specs_) specs.push_back(spec->describe());
  nlohmann::json sinks = nlohmann::json::array();
  for (const auto& sink : *sinks_) {
    nlohmann::json entry{{"name", sink->name()},
                         {"records", sink->counters().records.load()},
                         {"bytes", sink->counters().bytes.load()},
                         {"failures", sink->counters().failures.load()},
                         {"metric_samples", sink->counters().metric_samples.load()},
                         {"metric_failures", sink->counters().metric_failures.load()},
                         {"queue_depth", sink->queue_depth()}};
    if (const KafkaSink* kafka = as_kafka_sink(*sink)) entry["kafka_spool"] = kafka_spool_json(kafka->spool_counters());
    sinks.push_back(std::move(entry));
  }
  return {{"specs", std::move(specs)}, {"outputs", std::move(sinks)}};
}

void Runtime::shutdown() {
  {
    std::lock_guard lock(mutex_);
    if (shut_down_) return;
  }
  // The specs' last counts go out while they still exist (a stopped spec no longer reports them).
  if (metrics_pump_) {
    metrics_pump_->stop();
    publish_metrics();
  }
  std::map<std::string, std::unique_ptr<LoadedSpec>, std::less<>> specs;
  {
    std::lock_guard lock(mutex_);
    if (shut_down_) return;
    shut_down_ = true;
    specs.swap(specs_);
  }
  if (metrics_endpoint_) metrics_endpoint_->stop();
  for (auto& [name, spec] : specs) spec->stop();
  specs.clear();
  if (pool_) pool_->stop();
  // The last snapshot, with the outputs' final counts, before they close.
  if (metrics_pump_) publish_metrics();
  if (sinks_)
    for (const auto& sink : *sinks_) sink->stop();
}

void Runtime::publish_metrics() {
  if (!sinks_) return;
  MetricsSnapshot snapshot = metrics_.collect_unmerged();
  for (const auto& sink : *sinks_)
    if (sink->accepts_metrics()) sink->write_metrics(metrics_for(snapshot, sink->kind()));
}

MetricsSnapshot Runtime::metrics_for(const MetricsSnapshot& snapshot, std::string_view kind) const {
  std::lock_guard lock(mutex_);
  MetricsSnapshot selected{snapshot.time_ns, {}};
  for (const MetricFamily& family : snapshot.families) {
    auto owner = storage_by_spec_.find(family.spec);
    if (family.spec.empty() || owner == storage_by_spec_.end() || storage_selects(owner->second, kind))
      selected.families.push_back(family);
  }
  selected.families = merge_families(std::move(selected.families));
  return selected;
}

}  // namespace ea
