// One applied spec: its programs, channels and routes, with the prepare → start → stop lifecycle.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "channel/channel.h"
#include "core/result.h"
#include "loader/bpftrace_program.h"
#include "loader/ebpf_object.h"
#include "loader/user_so.h"
#include "metrics/bpf_map_metrics.h"
#include "metrics/registry.h"
#include "pipeline/fanout.h"
#include "pipeline/route.h"
#include "pipeline/shard_pool.h"
#include "spec/spec.h"

namespace ea {

struct RuntimeContext {
  ShardPool* pool = nullptr;
  std::shared_ptr<const SinkSet> sinks;
  MetricRegistry* metrics = nullptr;  // where the spec's metrics live (owned by the runtime)
};

class LoadedSpec {
 public:
  // Fetches every program, loads plugins and BPF objects into the kernel (verifier included) and
  // builds the routes — but attaches nothing, so a failure here disturbs nothing that runs.
  static Result<std::unique_ptr<LoadedSpec>> prepare(Spec spec, RuntimeContext context);
  ~LoadedSpec();

  // Starts channel readers, attaches programs, starts bpftrace. On failure undoes what it did.
  // May be called again after stop() (used to roll back a failed replacement).
  Result<void> start();
  // Idempotent. Detaches programs and stops helpers first, then drains the channels and shards,
  // so every record the kernel produced before the stop reaches the sinks.
  void stop();

  const Spec& spec() const { return spec_; }
  bool running() const { return running_; }
  nlohmann::json describe() const;

 private:
  struct Program {
    const ProgramSpec* spec = nullptr;
    std::unique_ptr<EbpfObject> object;
    std::shared_ptr<UserSoPlugin> plugin;
    std::unique_ptr<BpftraceProgram> bpftrace;
  };
  struct Channel {
    const ChannelSpec* spec = nullptr;
    std::string source_program;  // program whose map or output feeds it
    EbpfObject* object = nullptr;  // ring/perf: the object holding the map
    const volatile uint64_t* kernel_drop_counter = nullptr;
    std::vector<std::shared_ptr<Route>> routes;
    std::unique_ptr<ChannelReader> reader;
    std::unique_ptr<ChannelFanout> fanout;
    bool pinned = false;
  };

  LoadedSpec(Spec spec, RuntimeContext context);
  Result<void> load_programs();
  // Calls a user_so hook (preload/postload) of every plugin for every BPF object of the spec.
  using PluginHook = Result<void> (UserSoPlugin::*)(EbpfObject&);
  Result<void> run_plugin_hook(std::string_view hook, PluginHook call);
  Result<void> bind_channels();
  Result<void> bind_map_metrics();  // `metrics:` of ebpf_object programs, checked against their maps
  Result<void> bind_channel(Channel& channel);
  Result<std::shared_ptr<Route>> make_route(const Channel& channel, const EventSpec* event, const struct btf* btf,
                                            int struct_id);
  Result<void> start_channel(Channel& channel);
  void stop_channel(Channel& channel);
  Program* find(std::string_view name);

  Spec spec_;
  RuntimeContext context_;
  std::vector<Program> programs_;
  std::vector<Channel> channels_;
  std::shared_ptr<BpfMapMetrics> map_metrics_;  // null when the spec declares none
  uint64_t map_metrics_collector_ = 0;          // registry id while running
  bool running_ = false;
};

}  // namespace ea
