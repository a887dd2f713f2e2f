// A `user_so` program: a dlopen()ed plugin speaking include/ebpf_agent/plugin.h.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "metrics/registry.h"
#include "loader/fetch.h"
#include "pipeline/processor.h"
#include "spec/spec.h"

namespace ea {

class EbpfObject;

class UserSoPlugin {
 public:
  // dlopen, ABI handshake (a mismatch is refused naming both versions), resolve every function
  // named in properties.functions (a missing one is an error naming it), then ea_plugin_init.
  // `metrics` receives what the plugin declares through the ABI's ea_metrics_api (may be null).
  static Result<std::shared_ptr<UserSoPlugin>> load(const Spec& spec, const ProgramSpec& program, FetchedFile file,
                                                    MetricRegistry* metrics = nullptr);
  ~UserSoPlugin();  // ea_plugin_fini, dlclose

  const std::string& name() const { return name_; }
  // Lifecycle hooks around each ebpf_object of the same spec (no-ops when the plugin lacks them).
  Result<void> preload(EbpfObject& object);
  Result<void> postload(EbpfObject& object);
  // A processor calling `function`; a crash inside the plugin is caught, counted, reported, and
  // disables the plugin instead of taking the agent down.
  Result<ProcessorFactory> processor(std::string_view function);
  bool crashed() const;

 private:
  UserSoPlugin() = default;
  struct Impl;
  std::shared_ptr<Impl> impl_;
  std::string name_;
};

}  // namespace ea
