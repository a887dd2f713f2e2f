// The agent's own health as metrics: per program run count and run time (kernel BPF stats), per
// channel and processor record counts, per output writes, failures and queue depth, and the
// process's CPU, memory, threads and file descriptors (OpenTelemetry process.* conventions).
#pragma once
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics/metric.h"

namespace ea {

// From Runtime::list(): {"specs":[...describe()...], "outputs":[...]}.
void append_runtime_health(const nlohmann::json& state, std::vector<MetricFamily>& out);
// From /proc/self: process_cpu_time_seconds{cpu_mode}, process_memory_usage_bytes, ...
void append_process_metrics(std::vector<MetricFamily>& out);

}  // namespace ea
