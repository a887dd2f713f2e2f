#include "cli/commands.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "agent/control_protocol.h"
#include "agent/control_server.h"
#include "agent/runtime.h"
#include "agent/spec_dir_watcher.h"
#include "agent/spec_loader.h"
#include "core/units.h"
#include "cli/list_table.h"
#include "cli/offsets_command.h"
#include "cli/query_command.h"
#include "ebpf_agent/plugin.h"
#include "l7/offsets_search_path.h"
#include "builtin_specs.h"
#include "loader/fetch.h"
#include "loader/kernel_features.h"
#include "sink/sink.h"
#include "spec/parser.h"

namespace ea::cli {

namespace {

constexpr const char* kDefaultSpecsDir = "/etc/ebpf-agent/specs.d";

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("ebpf-agent");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}

// Blocks the stop signals in every thread (threads inherit the mask) so the main thread takes
// them synchronously; call before any thread starts.
sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return set;
}

// Waits for a stop signal, or for `duration` when it is non-zero.
void wait_for_stop(const sigset_t& signals, std::chrono::milliseconds duration) {
  auto deadline = std::chrono::steady_clock::now() + duration;
  while (true) {
    timespec timeout{1, 0};
    if (duration.count() > 0) {
      auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::nanoseconds(0)) return;
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      timeout = {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    }
    int signal_number = sigtimedwait(&signals, nullptr, &timeout);
    if (signal_number > 0) {
      spdlog::info("received {}, stopping", strsignal(signal_number));
      return;
    }
  }
}

void prepare_kernel() {
  for (const std::string& problem : prepare_kernel_interfaces()) spdlog::warn("{}", problem);
}

Result<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return failf("cannot read {}: {}", path, strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

struct AgentOptions {
  std::vector<std::string> outputs;
  unsigned workers = 0;
  std::string metrics_interval = "10s";
  std::string metrics_listen{kDefaultMetricsListen};
  bool metrics_listen_given = false;
  bool no_bpf_stats = false;
  std::vector<std::string> offsets_dirs;
};

void add_agent_options(CLI::App* command, AgentOptions& options) {
  command->add_option("-o,--output", options.outputs,
                      fmt::format("Where records and metrics go (repeatable; default: the embedded store): {}",
                                  output_usage()));
  command->add_option("--workers", options.workers, "Worker shards for processors (default: one per CPU)");
  command->add_option("--metrics-interval", options.metrics_interval,
                      "How often outputs receive a metrics snapshot (e.g. 10s; 0 = never)")
      ->capture_default_str();
  command->add_option_function<std::string>(
      "--metrics-listen",
      [&options](const std::string& value) {
        options.metrics_listen = value;
        options.metrics_listen_given = true;
      },
                      fmt::format("Address serving Prometheus /metrics (host:port, [::1]:port, :port; off = not served; default {})",
                  kDefaultMetricsListen));
  command->add_flag("--no-bpf-stats", options.no_bpf_stats,
                    "Leave the kernel's BPF run-time statistics off (program run counts and times stay 0)");
  command->add_option("--offsets-dir", options.offsets_dirs,
                      fmt::format("Offsets database directory for uprobes on stripped libraries, searched before {} and "
                                  "the shipped one (repeatable; docs/offsets.md)",
                                  kOffsetsEtcDir))
      ->check(CLI::ExistingDirectory);
}

Result<RuntimeOptions> runtime_options(const AgentOptions& options) {
  auto interval = parse_duration(options.metrics_interval);
  if (!interval) return std::unexpected(with_context(interval.error(), "--metrics-interval"));
  return RuntimeOptions{.workers = options.workers,
                        .outputs = options.outputs,
                        .metrics_interval = *interval,
                        .bpf_stats = !options.no_bpf_stats,
                        .metrics_listen = options.metrics_listen,
                        .metrics_listen_required = options.metrics_listen_given};
}

Result<std::unique_ptr<Runtime>> create_runtime(const AgentOptions& options) {
  set_offsets_dirs(options.offsets_dirs);
  auto runtime_opts = runtime_options(options);
  if (!runtime_opts) return std::unexpected(runtime_opts.error());
  return Runtime::create(std::move(*runtime_opts));
}

std::vector<std::string> builtin_spec_names() {
  std::vector<std::string> names;
  for (const auto& [name, text] : kBuiltinSpecs) names.emplace_back(name);
  return names;
}

std::string_view builtin_spec_text(std::string_view name) {
  for (const auto& [builtin, text] : kBuiltinSpecs)
    if (builtin == name) return text;
  return {};
}

int command_run(const std::vector<std::string>& files, const std::vector<std::string>& builtins,
                const AgentOptions& options, const std::string& duration_text) {
  auto duration = parse_duration(duration_text);
  if (!duration) {
    std::cerr << "ebpf-agent run: " << duration.error().message << "\n";
    return 2;
  }
  // Parse everything before loading anything: a typo fails fast with every error listed.
  std::vector<Spec> specs;
  bool parse_failed = false;
  std::vector<std::string> embedded = builtins;
  if (files.empty() && builtins.empty()) embedded.emplace_back("default");
  for (const std::string& name : embedded) {
    auto parsed = parse_specs(std::string(builtin_spec_text(name)), "<built-in spec " + name + ">", "");
    if (!parsed) {
      std::cerr << parsed.error().message << "\n";
      return 2;
    }
    for (Spec& spec : *parsed) specs.push_back(std::move(spec));
  }
  for (const std::string& file : files) {
    auto parsed = parse_spec_file(file);
    if (!parsed) {
      std::cerr << parsed.error().message << "\n";
      parse_failed = true;
      continue;
    }
    for (Spec& spec : *parsed) specs.push_back(std::move(spec));
  }
  if (parse_failed) return 2;

  sigset_t signals = block_stop_signals();
  prepare_kernel();
  auto runtime = create_runtime(options);
  if (!runtime) {
    std::cerr << "ebpf-agent run: " << runtime.error().message << "\n";
    return 2;
  }
  for (Spec& spec : specs) {
    if (auto applied = (*runtime)->apply(std::move(spec)); !applied) {
      spdlog::error("{}", applied.error().message);
      (*runtime)->shutdown();
      return 1;
    }
  }
  spdlog::info("agent running: {} spec(s): {}", (*runtime)->names().size(), fmt::join((*runtime)->names(), ", "));
  wait_for_stop(signals, *duration);
  (*runtime)->shutdown();
  spdlog::info("agent stopped");
  return 0;
}

int command_daemon(const AgentOptions& options, const std::string& socket_path, const std::string& specs_dir) {
  sigset_t signals = block_stop_signals();
  prepare_kernel();
  auto runtime = create_runtime(options);
  if (!runtime) {
    spdlog::error("{}", runtime.error().message);
    return 2;
  }
  auto server = ControlServer::start(socket_path, **runtime);
  if (!server) {
    spdlog::error("{}", server.error().message);
    return 2;
  }
  std::unique_ptr<SpecDirWatcher> watcher;
  if (!specs_dir.empty()) {
    auto started = SpecDirWatcher::start(specs_dir, **runtime);
    if (!started) {
      spdlog::error("{}", started.error().message);
      return 2;
    }
    watcher = std::move(*started);
  }
  spdlog::info("agent running: daemon on {}, watching {}, {} spec(s)", socket_path,
               specs_dir.empty() ? std::string("no specs directory") : specs_dir, (*runtime)->names().size());
  wait_for_stop(signals, std::chrono::milliseconds(0));
  watcher.reset();
  server->reset();
  (*runtime)->shutdown();
  spdlog::info("agent stopped");
  return 0;
}

int print_response_error(const char* command, const nlohmann::json& response) {
  std::cerr << "ebpf-agent " << command << ": " << response.value("error", std::string("failed")) << "\n";
  return 1;
}

int command_apply(const std::vector<std::string>& files, const std::vector<std::string>& builtins,
                  const std::string& socket_path) {
  if (files.empty() && builtins.empty()) {
    std::cerr << "ebpf-agent apply: nothing to apply: give -f FILE or --builtin NAME\n";
    return 2;
  }
  struct Source {
    std::string yaml, source, base_dir;
  };
  std::vector<Source> sources;
  for (const std::string& name : builtins)
    sources.push_back({std::string(builtin_spec_text(name)), "<built-in spec " + name + ">", ""});
  int status = 0;
  for (const std::string& file : files) {
    auto text = read_text_file(file);
    if (!text) {
      std::cerr << "ebpf-agent apply: " << text.error().message << "\n";
      status = 1;
      continue;
    }
    auto absolute = std::filesystem::absolute(file);
    sources.push_back({*text, absolute.string(), absolute.parent_path().string()});
  }
  for (const Source& source : sources) {
    auto response = control_request(socket_path, {{"op", "apply"},
                                                  {"yaml", source.yaml},
                                                  {"source", source.source},
                                                  {"base_dir", source.base_dir}});
    if (!response) {
      std::cerr << "ebpf-agent apply: " << response.error().message << "\n";
      return 1;
    }
    for (const auto& name : (*response)["applied"]) std::cout << "applied " << name.get<std::string>() << "\n";
    if (!(*response)["ok"].get<bool>()) status = print_response_error("apply", *response);
  }
  return status;
}

int command_delete(const std::vector<std::string>& names, const std::string& socket_path) {
  int status = 0;
  for (const std::string& name : names) {
    auto response = control_request(socket_path, {{"op", "delete"}, {"name", name}});
    if (!response) {
      std::cerr << "ebpf-agent delete: " << response.error().message << "\n";
      return 1;
    }
    if (!(*response)["ok"].get<bool>())
      status = print_response_error("delete", *response);
    else
      std::cout << "deleted " << name << "\n";
  }
  return status;
}

int command_list(const std::string& format, const std::string& socket_path) {
  auto response = control_request(socket_path, {{"op", "list"}});
  if (!response) {
    std::cerr << "ebpf-agent list: " << response.error().message << "\n";
    return 1;
  }
  if (!(*response)["ok"].get<bool>()) return print_response_error("list", *response);
  if (format == "json")
    std::cout << (*response)["result"].dump(2) << "\n";
  else
    std::cout << render_list_table((*response)["result"]);
  return 0;
}

// Checks that every local program file a spec names exists (network paths are not fetched).
std::vector<std::string> missing_local_files(const Spec& spec) {
  std::vector<std::string> problems;
  for (const ProgramSpec& program : spec.programs) {
    if (program.path.empty() || (program.path.find("://") != std::string::npos && !program.path.starts_with("file://")))
      continue;
    if (auto found = resolve_local_path(program.path, spec.base_dir); !found)
      problems.push_back(fmt::format("{}: field 'programs[{}].path': {}", program.pos.str(), program.name,
                                     found.error().message));
  }
  return problems;
}

int command_validate(const std::vector<std::string>& files) {
  int status = 0;
  for (const std::string& file : files) {
    auto specs = parse_spec_file(file);
    if (!specs) {
      std::cerr << specs.error().message << "\n";
      status = 1;
      continue;
    }
    std::vector<std::string> problems;
    std::vector<std::string> names;
    for (const Spec& spec : *specs) {
      names.push_back(spec.name);
      for (std::string& problem : missing_local_files(spec)) problems.push_back(std::move(problem));
    }
    if (!problems.empty()) {
      std::cerr << fmt::format("{}", fmt::join(problems, "\n")) << "\n";
      status = 1;
      continue;
    }
    std::cout << file << ": ok (" << fmt::format("{}", fmt::join(names, ", ")) << ")\n";
  }
  return status;
}

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{"ebpf-agent: load, run and unload eBPF programs from YAML specs"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str();
  std::string socket_path = kDefaultControlSocket;

  AgentOptions agent_options;
  std::vector<std::string> files;
  std::string duration = "0";
  auto* run = app.add_subcommand("run", "Run specs in the foreground (no -f: the embedded default specs)");
  std::vector<std::string> builtins;
  run->add_option("-f,--file", files, "Spec file (repeatable)")->check(CLI::ExistingFile);
  run->add_option("--builtin", builtins, "A built-in spec shipped in the agent (repeatable): http, default")
      ->check(CLI::IsMember(builtin_spec_names()));
  run->add_option("--duration", duration, "Stop after this long (e.g. 30s, 5m); 0 = until SIGINT/SIGTERM");
  add_agent_options(run, agent_options);

  std::string specs_dir = kDefaultSpecsDir;
  auto* daemon = app.add_subcommand("daemon", "Run as a long-lived daemon with a control socket and a specs directory");
  daemon->add_option("--socket", socket_path, "Control socket path")->capture_default_str();
  daemon->add_option("--specs-dir", specs_dir, "Directory of specs to keep applied (empty: none)")->capture_default_str();
  add_agent_options(daemon, agent_options);

  auto* apply = app.add_subcommand("apply", "Apply (load or replace) specs in the running daemon");
  apply->add_option("-f,--file", files, "Spec file (repeatable)")->check(CLI::ExistingFile);
  apply->add_option("--builtin", builtins, "A built-in spec shipped in the agent (repeatable)")
      ->check(CLI::IsMember(builtin_spec_names()));
  apply->add_option("--socket", socket_path, "Control socket path")->capture_default_str();

  std::vector<std::string> names;
  auto* remove = app.add_subcommand("delete", "Delete specs from the running daemon");
  remove->add_option("name", names, "Spec name(s)")->required();
  remove->add_option("--socket", socket_path, "Control socket path")->capture_default_str();

  std::string format = "table";
  auto* list = app.add_subcommand("list", "List specs, programs, channels and counters of the running daemon");
  list->add_option("-o,--output", format, "table or json")->check(CLI::IsMember({"table", "json"}))->capture_default_str();
  list->add_option("--socket", socket_path, "Control socket path")->capture_default_str();

  auto* validate = app.add_subcommand("validate", "Check spec files without loading them");
  validate->add_option("files", files, "Spec files")->required();

  add_query_command(app);
  add_offsets_command(app);

  auto* version = app.add_subcommand("version", "Print the version");

  CLI11_PARSE(app, argc, argv);
  setup_logging(log_level);
  if (*run) return command_run(files, builtins, agent_options, duration);
  if (*daemon) return command_daemon(agent_options, socket_path, specs_dir);
  if (*apply) return command_apply(files, builtins, socket_path);
  if (*remove) return command_delete(names, socket_path);
  if (*list) return command_list(format, socket_path);
  if (*validate) return command_validate(files);
  if (*version) {
    std::cout << "ebpf-agent " << EA_VERSION << " (plugin ABI v" << EA_PLUGIN_ABI_VERSION << ")\n";
    return 0;
  }
  return 2;
}

}  // namespace ea::cli
