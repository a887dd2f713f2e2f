#include "agent/health_metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>

#include "sink/kafka_health.h"

namespace ea {

namespace {

MetricFamily family(std::string name, std::string help, std::string unit, MetricKind kind) {
  return MetricFamily{std::move(name), std::move(help), std::move(unit), kind, "", {}};
}

void add(MetricFamily& f, LabelSet labels, double value) {
  MetricSeries& series = f.series.emplace_back();
  series.labels = std::move(labels);
  series.value = value;
}

double number(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number() ? it->get<double>() : 0;
}

std::string text(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

void push_nonempty(std::vector<MetricFamily>& out, MetricFamily f) {
  if (!f.series.empty()) out.push_back(std::move(f));
}

}  // namespace

void append_runtime_health(const nlohmann::json& state, std::vector<MetricFamily>& out) {
  auto specs = family("ebpf_agent_specs", "Specs applied, by state", "", MetricKind::Gauge);
  auto runs = family("ebpf_agent_program_runs", "Times the spec's BPF programs ran (kernel BPF statistics)", "",
                     MetricKind::Counter);
  auto run_time = family("ebpf_agent_program_run_time_seconds",
                         "Time the spec's BPF programs ran in the kernel (kernel BPF statistics)", "seconds",
                         MetricKind::Counter);
  auto restarts = family("ebpf_agent_bpftrace_restarts", "Restarts of supervised bpftrace programs", "",
                         MetricKind::Counter);
  auto channel_records = family("ebpf_agent_channel_records", "Records a channel read from the kernel or pipe", "",
                                MetricKind::Counter);
  auto kernel_lost = family("ebpf_agent_channel_kernel_lost_records",
                            "Records the kernel side dropped (perf lost samples, ring buffer <channel>_dropped)", "",
                            MetricKind::Counter);
  auto processor_records = family("ebpf_agent_processor_records",
                                  "Records through a processor, by outcome (received, emitted, skipped, failed, dropped)",
                                  "", MetricKind::Counter);
  std::map<std::string, double> spec_states;
  for (const auto& spec : state.value("specs", nlohmann::json::array())) {
    std::string name = text(spec, "name");
    spec_states[text(spec, "state")] += 1;
    for (const auto& program : spec.value("programs", nlohmann::json::array())) {
      LabelSet labels{{"program", text(program, "name")}, {"spec", name}};
      if (program.contains("run_count")) {
        add(runs, labels, number(program, "run_count"));
        add(run_time, labels, number(program, "run_time_ns") / 1e9);
      }
      if (program.contains("restarts")) add(restarts, labels, number(program, "restarts"));
    }
    for (const auto& channel : spec.value("channels", nlohmann::json::array())) {
      LabelSet labels{{"channel", text(channel, "name")}, {"spec", name}};
      if (channel.contains("received")) {
        add(channel_records, labels, number(channel, "received"));
        add(kernel_lost, labels, number(channel, "kernel_lost"));
      }
      for (const auto& processor : channel.value("processors", nlohmann::json::array())) {
        for (const char* outcome : {"received", "emitted", "skipped", "failed", "dropped"}) {
          add(processor_records,
              {{"channel", text(channel, "name")}, {"outcome", outcome}, {"processor", text(processor, "processor")},
               {"spec", name}},
              number(processor, outcome));
        }
      }
    }
  }
  for (const auto& [state_name, count] : spec_states) add(specs, {{"state", state_name}}, count);

  auto output_records = family("ebpf_agent_output_records", "Records an output wrote or failed to write", "",
                               MetricKind::Counter);
  auto output_bytes = family("ebpf_agent_output_written_bytes", "Bytes of records an output wrote", "bytes",
                             MetricKind::Counter);
  auto output_samples = family("ebpf_agent_output_metric_samples", "Metric samples an output wrote or failed to write",
                               "", MetricKind::Counter);
  auto queue_depth = family("ebpf_agent_output_queue_depth", "Records and samples waiting in an output's queue", "",
                            MetricKind::Gauge);
  for (const auto& output : state.value("outputs", nlohmann::json::array())) {
    std::string name = text(output, "name");
    add(output_records, {{"outcome", "written"}, {"output", name}}, number(output, "records"));
    add(output_records, {{"outcome", "failed"}, {"output", name}}, number(output, "failures"));
    output_bytes.series.push_back({{{"output", name}}, number(output, "bytes"), {}});
    add(output_samples, {{"outcome", "written"}, {"output", name}}, number(output, "metric_samples"));
    add(output_samples, {{"outcome", "failed"}, {"output", name}}, number(output, "metric_failures"));
    add(queue_depth, {{"output", name}}, number(output, "queue_depth"));
  }
  for (auto* f : {&specs, &runs, &run_time, &restarts, &channel_records, &kernel_lost, &processor_records,
                  &output_records, &output_bytes, &output_samples, &queue_depth})
    push_nonempty(out, std::move(*f));
  append_kafka_spool_metrics(state.value("outputs", nlohmann::json::array()), out);
}

void append_process_metrics(std::vector<MetricFamily>& out) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // Fields after the parenthesised comm (which may hold spaces): state is field 3.
  size_t close = stat.rfind(')');
  if (close != std::string::npos) {
    std::istringstream fields(stat.substr(close + 2));
    std::vector<std::string> f((std::istream_iterator<std::string>(fields)), std::istream_iterator<std::string>());
    // f[0] is field 3 (state): utime 14, stime 15, num_threads 20, vsize 23, rss 24.
    auto field = [&](size_t n) { return n - 3 < f.size() ? std::strtod(f[n - 3].c_str(), nullptr) : 0.0; };
    auto cpu = family("process_cpu_time_seconds", "CPU time the agent used, by mode", "seconds", MetricKind::Counter);
    add(cpu, {{"cpu_mode", "user"}}, field(14) / ticks);
    add(cpu, {{"cpu_mode", "system"}}, field(15) / ticks);
    out.push_back(std::move(cpu));
    auto threads = family("process_thread_count", "Threads of the agent", "", MetricKind::Gauge);
    add(threads, {}, field(20));
    out.push_back(std::move(threads));
    auto virt = family("process_memory_virtual_bytes", "Virtual memory of the agent", "bytes", MetricKind::Gauge);
    add(virt, {}, field(23));
    out.push_back(std::move(virt));
    auto rss = family("process_memory_usage_bytes", "Resident memory (RSS) of the agent", "bytes", MetricKind::Gauge);
    add(rss, {}, field(24) * page);
    out.push_back(std::move(rss));
  }
  double fds = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (dirent* entry = readdir(dir))
      if (entry->d_name[0] != '.') ++fds;
    closedir(dir);
    auto open_fds = family("process_open_file_descriptor_count", "Open file descriptors of the agent", "",
                           MetricKind::Gauge);
    add(open_fds, {}, fds - 1);  // minus the directory stream itself
    out.push_back(std::move(open_fds));
  }
}

}  // namespace ea
