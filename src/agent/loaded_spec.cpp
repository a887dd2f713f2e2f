#include "agent/loaded_spec.h"

#include <linux/bpf.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include "agent/kernel_drop_counter.h"
#include "agent/storage_selection.h"
#include "channel/pipe_channel.h"
#include "channel/ring_buffer_channel.h"
#include "loader/fetch.h"
#include "pipeline/btf_decoder.h"
#include "pipeline/record_key.h"

namespace ea {

namespace {

constexpr size_t kPerfBufferPagesPerCpu = 64;

// A channel with no `struct:` still decodes when the object has an obvious record struct:
// `oom_events` -> `struct oom_event`, else `struct event` (the libbpf-tools convention).
int guess_record_struct(const EbpfObject& object, std::string_view channel) {
  std::string singular(channel);
  if (singular.ends_with('s')) singular.pop_back();
  if (int id = object.find_struct(singular); id > 0) return id;
  return object.find_struct("event");
}

std::string struct_name(const struct btf* btf, int id) {
  const btf_type* type = btf__type_by_id(btf, id);
  const char* name = type ? btf__name_by_offset(btf, type->name_off) : nullptr;
  return name ? name : "?";
}

// "FILE:LINE:COL: program 'x': what", whether or not the loader already named the position.
Error program_error(const ProgramSpec& program, const Error& error) {
  std::string position = program.pos.str();
  std::string_view message = error.message;
  if (message.starts_with(position + ": ")) message.remove_prefix(position.size() + 2);
  return Error{fmt::format("{}: program '{}': {}", position, program.name, message)};
}

}  // namespace

LoadedSpec::LoadedSpec(Spec spec, RuntimeContext context) : spec_(std::move(spec)), context_(std::move(context)) {
  // A bpftrace program with no pipe channel of its own gets one at its default output path.
  for (const ProgramSpec& program : spec_.programs) {
    if (program.type != ProgramType::Bpftrace) continue;
    bool fed = false;
    for (const ChannelSpec& channel : spec_.channels)
      fed |= channel.type == ChannelType::Pipe && (channel.program.empty() || channel.program == program.name);
    if (fed) continue;
    ChannelSpec implicit;
    implicit.name = program.name;
    implicit.type = ChannelType::Pipe;
    implicit.program = program.name;
    implicit.pos = program.pos;
    spec_.channels.push_back(std::move(implicit));
  }
  // Pipe channels that name no path take their bpftrace program's default one.
  std::vector<const ProgramSpec*> bpftrace_programs;
  for (const ProgramSpec& program : spec_.programs)
    if (program.type == ProgramType::Bpftrace) bpftrace_programs.push_back(&program);
  for (ChannelSpec& channel : spec_.channels) {
    if (channel.type != ChannelType::Pipe) continue;
    if (channel.program.empty() && bpftrace_programs.size() == 1) channel.program = bpftrace_programs[0]->name;
    if (channel.pinpath.empty() && !channel.program.empty())
      channel.pinpath = default_bpftrace_output_path(spec_.name, channel.program);
  }
  for (const ProgramSpec& program : spec_.programs) programs_.push_back(Program{.spec = &program});
  for (const ChannelSpec& channel : spec_.channels) channels_.push_back(Channel{.spec = &channel});
}

LoadedSpec::~LoadedSpec() { stop(); }

Result<std::unique_ptr<LoadedSpec>> LoadedSpec::prepare(Spec spec, RuntimeContext context) {
  std::unique_ptr<LoadedSpec> loaded(new LoadedSpec(std::move(spec), std::move(context)));
  if (auto ok = loaded->load_programs(); !ok) return std::unexpected(ok.error());
  if (auto ok = loaded->bind_channels(); !ok) return std::unexpected(ok.error());
  if (auto ok = loaded->bind_map_metrics(); !ok) return std::unexpected(ok.error());
  return loaded;
}

Result<void> LoadedSpec::bind_map_metrics() {
  auto metrics = BpfMapMetrics::bind(spec_, [this](std::string_view name) -> bpf_object* {
    Program* program = find(name);
    return program && program->object ? program->object->object() : nullptr;
  });
  if (!metrics) return std::unexpected(metrics.error());
  if (!(*metrics)->empty()) map_metrics_ = std::move(*metrics);
  return {};
}

LoadedSpec::Program* LoadedSpec::find(std::string_view name) {
  for (Program& program : programs_)
    if (program.spec->name == name) return &program;
  return nullptr;
}

Result<void> LoadedSpec::load_programs() {
  const std::string& base = spec_.base_dir;
  // Fetch and open everything first: plugins' preload hooks see every object before any loads.
  for (Program& program : programs_) {
    const ProgramSpec& ps = *program.spec;
    switch (ps.type) {
      case ProgramType::EbpfObject: {
        auto file = fetch_program_file(ps.path, ps.sha256, base, ps.pos);
        if (!file) return std::unexpected(program_error(ps, file.error()));
        auto object = EbpfObject::open(ps, std::move(*file));
        if (!object) return std::unexpected(program_error(ps, object.error()));
        program.object = std::move(*object);
        break;
      }
      case ProgramType::UserSo: {
        auto file = fetch_program_file(ps.path, ps.sha256, base, ps.pos);
        if (!file) return std::unexpected(program_error(ps, file.error()));
        auto plugin = UserSoPlugin::load(spec_, ps, std::move(*file), context_.metrics);
        if (!plugin) return std::unexpected(program_error(ps, plugin.error()));
        program.plugin = std::move(*plugin);
        break;
      }
      case ProgramType::Bpftrace: {
        std::string source = std::get<BpftraceProps>(ps.props).src;
        if (!ps.path.empty()) {
          auto file = fetch_program_file(ps.path, ps.sha256, base, ps.pos);
          if (!file) return std::unexpected(program_error(ps, file.error()));
          source = std::move(file->content);
        }
        std::string fifo = default_bpftrace_output_path(spec_.name, ps.name);
        for (const ChannelSpec& channel : spec_.channels)
          if (channel.type == ChannelType::Pipe && channel.program == ps.name) fifo = channel.pinpath;
        auto bpftrace = BpftraceProgram::prepare(spec_, ps, std::move(source), fifo);
        if (!bpftrace) return std::unexpected(program_error(ps, bpftrace.error()));
        program.bpftrace = std::move(*bpftrace);
        break;
      }
    }
  }
  if (auto ok = run_plugin_hook("preload", &UserSoPlugin::preload); !ok) return ok;
  for (Program& program : programs_) {
    if (!program.object) continue;
    if (auto ok = program.object->load(); !ok) return std::unexpected(program_error(*program.spec, ok.error()));
  }
  return run_plugin_hook("postload", &UserSoPlugin::postload);
}

Result<void> LoadedSpec::run_plugin_hook(std::string_view hook, PluginHook call) {
  for (Program& plugin : programs_) {
    if (!plugin.plugin) continue;
    for (Program& object : programs_) {
      if (!object.object) continue;
      if (auto ok = ((*plugin.plugin).*call)(*object.object); !ok)
        return failf("program '{}' {} of '{}': {}", plugin.spec->name, hook, object.spec->name, ok.error().message);
    }
  }
  return {};
}

Result<void> LoadedSpec::bind_channels() {
  for (Channel& channel : channels_)
    if (auto ok = bind_channel(channel); !ok) return ok;
  return {};
}

Result<void> LoadedSpec::bind_channel(Channel& channel) {
  const ChannelSpec& cs = *channel.spec;
  const struct btf* btf = nullptr;
  int struct_id = 0;
  if (cs.type == ChannelType::Pipe) {
    channel.source_program = cs.program;
  } else {
    // The map of the same name in an ebpf_object program (the one named by `program:` if given).
    for (Program& program : programs_) {
      if (!program.object || !program.object->has_map(cs.name)) continue;
      if (!cs.program.empty() && program.spec->name != cs.program) continue;
      channel.object = program.object.get();
      channel.source_program = program.spec->name;
      break;
    }
    if (!channel.object)
      return failf("{}: channel '{}': no ebpf_object program of this spec has a map named '{}' — the channel name "
                   "must be the name of the BPF ring buffer / perf event array map",
                   cs.pos.str(), cs.name, cs.name);
    int expected = cs.type == ChannelType::RingBuffer ? BPF_MAP_TYPE_RINGBUF : BPF_MAP_TYPE_PERF_EVENT_ARRAY;
    if (channel.object->map_type(cs.name) != expected)
      return failf("{}: channel '{}': map '{}' of program '{}' is not a {} map — use type: {}", cs.pos.str(), cs.name,
                   cs.name, channel.source_program, to_string(cs.type),
                   cs.type == ChannelType::RingBuffer ? "perf_buffer" : "ring_buffer");
    btf = channel.object->btf();
    if (!cs.record_struct.empty()) {
      struct_id = channel.object->find_struct(cs.record_struct);
      if (struct_id <= 0)
        return failf("{}: channel '{}': struct '{}' is not in the BTF of program '{}' — build the object with -g "
                     "and check the struct's name",
                     cs.pos.str(), cs.name, cs.record_struct, channel.source_program);
    } else {
      struct_id = guess_record_struct(*channel.object, cs.name);
    }
    channel.kernel_drop_counter = find_kernel_drop_counter(*channel.object, cs.name + "_dropped");
  }
  const std::vector<EventSpec>& events = spec_.events_for(cs);
  if (events.empty()) {
    auto route = make_route(channel, nullptr, btf, struct_id);
    if (!route) return std::unexpected(route.error());
    channel.routes.push_back(std::move(*route));
  }
  for (const EventSpec& event : events) {
    auto route = make_route(channel, &event, btf, struct_id);
    if (!route) return std::unexpected(route.error());
    channel.routes.push_back(std::move(*route));
  }
  return {};
}

Result<std::shared_ptr<Route>> LoadedSpec::make_route(const Channel& channel, const EventSpec* event,
                                                      const struct btf* btf, int struct_id) {
  const ChannelSpec& cs = *channel.spec;
  auto route = std::make_shared<Route>();
  route->origin = RecordOrigin{spec_.name, channel.source_program, cs.name, ""};
  const auto& storage = cs.storage ? cs.storage : spec_.storage;
  const SourcePos& storage_pos = cs.storage ? cs.storage->pos : spec_.storage ? spec_.storage->pos : cs.pos;
  auto sinks = select_sinks(storage, context_.sinks, fmt::format("{}: channel '{}'", storage_pos.str(), cs.name));
  if (!sinks) return std::unexpected(sinks.error());
  route->sinks = std::move(*sinks);
  ProcessorContext pc{.spec = &spec_,
                      .channel = &cs,
                      .event = event,
                      .record_btf = btf,
                      .record_type_id = struct_id,
                      .metrics = context_.metrics};

  ProcessorFactory factory;
  if (event) {
    route->strategy = event->dispatch;
    Program* program = find(event->name);
    if (program && program->plugin) {
      auto plugin_factory = program->plugin->processor(event->target_processor);
      if (!plugin_factory) return std::unexpected(with_context(plugin_factory.error(), event->pos.str()));
      factory = std::move(*plugin_factory);
      route->origin.processor = event->name + ":" + event->target_processor;
    } else if (event->name == "builtin") {
      const ProcessorFactory* builtin = find_builtin_processor(event->target_processor);
      if (!builtin)
        return failf("{}: event '{}': no built-in processor '{}' (built-ins: {})", event->pos.str(), event->name,
                     event->target_processor, fmt::join(builtin_processor_names(), ", "));
      factory = *builtin;
      route->origin.processor = "builtin:" + event->target_processor;
    } else {
      return failf("{}: event '{}': not a user_so program of spec '{}' — name a user_so program or `builtin`",
                   event->pos.str(), event->name, spec_.name);
    }
  } else if (cs.type == ChannelType::Pipe) {
    factory = *find_builtin_processor("bpftrace_default");
    route->origin.processor = "builtin:bpftrace_default";
  } else if (struct_id > 0) {
    factory = [](const ProcessorContext& c) { return make_btf_decoder(c.record_btf, c.record_type_id); };
    route->origin.processor = "btf:struct " + struct_name(btf, struct_id);
  } else {
    factory = *find_builtin_processor("raw");
    route->origin.processor = "builtin:raw";
  }
  if (struct_id > 0) route->key = find_key_field(btf, struct_id, event ? event->key : std::string_view());
  if (event && !event->key.empty() && !route->key)
    return failf("{}: event '{}': key '{}' is not an integer field of the channel's record struct", event->pos.str(),
                 event->name, event->key);
  for (unsigned shard = 0; shard < context_.pool->size(); ++shard) {
    auto processor = factory(pc);
    if (!processor)
      return failf("{}: channel '{}' processor {}: {}", cs.pos.str(), cs.name, route->origin.processor,
                   processor.error().message);
    route->processors.push_back(std::move(*processor));
  }
  return route;
}

Result<void> LoadedSpec::start_channel(Channel& channel) {
  const ChannelSpec& cs = *channel.spec;
  switch (cs.type) {
    case ChannelType::RingBuffer:
      channel.reader = std::make_unique<RingBufferChannel>(cs.name, channel.object->map_fd(cs.name),
                                                           channel.kernel_drop_counter);
      break;
    case ChannelType::PerfBuffer:
      channel.reader =
          std::make_unique<PerfBufferChannel>(cs.name, channel.object->map_fd(cs.name), kPerfBufferPagesPerCpu);
      break;
    case ChannelType::Pipe:
      channel.reader = std::make_unique<PipeChannel>(cs.name, cs.pinpath);
      break;
  }
  if (cs.type != ChannelType::Pipe && !cs.pinpath.empty()) {
    bpf_map* map = bpf_object__find_map_by_name(channel.object->object(), cs.name.c_str());
    if (int err = bpf_map__pin(map, cs.pinpath.c_str()); err)
      return failf("{}: channel '{}': cannot pin map at {}: {}", cs.pos.str(), cs.name, cs.pinpath, strerror(-err));
    channel.pinned = true;
  }
  channel.fanout = std::make_unique<ChannelFanout>(*context_.pool, channel.routes);
  ChannelFanout* fanout = channel.fanout.get();
  auto started = channel.reader->start([fanout](std::span<const std::byte> record) { fanout->on_record(record); },
                                       [fanout] { fanout->flush(); });
  if (!started) return std::unexpected(with_context(started.error(), cs.pos.str()));
  return {};
}

void LoadedSpec::stop_channel(Channel& channel) {
  if (channel.reader) channel.reader->stop();
  if (channel.pinned) {
    bpf_map* map = bpf_object__find_map_by_name(channel.object->object(), channel.spec->name.c_str());
    bpf_map__unpin(map, channel.spec->pinpath.c_str());
    channel.pinned = false;
  }
}

Result<void> LoadedSpec::start() {
  if (running_) return {};
  running_ = true;  // so that stop() undoes a partial start
  auto undo = [this](Error error) {
    stop();
    return std::unexpected(std::move(error));
  };
  // Readers first: a bpftrace writer blocks until its FIFO has a reader, and records produced
  // right after attach must find a reader.
  for (Channel& channel : channels_)
    if (auto ok = start_channel(channel); !ok) return undo(ok.error());
  for (Program& program : programs_) {
    if (!program.object) continue;
    if (auto ok = program.object->attach(); !ok)
      return undo(program_error(*program.spec, ok.error()));
  }
  for (Program& program : programs_) {
    if (!program.bpftrace) continue;
    if (auto ok = program.bpftrace->start(); !ok) return undo(program_error(*program.spec, ok.error()));
  }
  if (map_metrics_ && context_.metrics)
    map_metrics_collector_ = context_.metrics->add_collector(
        spec_.name, [metrics = map_metrics_](std::vector<MetricFamily>& out) { metrics->collect(out); });
  return {};
}

void LoadedSpec::stop() {
  if (!running_) return;
  running_ = false;
  if (map_metrics_collector_ && context_.metrics) context_.metrics->remove_collector(std::exchange(map_metrics_collector_, 0));
  for (Program& program : programs_) {
    if (program.bpftrace) program.bpftrace->stop();
    if (program.object) program.object->detach();
  }
  for (Channel& channel : channels_) stop_channel(channel);
  context_.pool->drain();
  for (Channel& channel : channels_) {
    channel.fanout.reset();
    channel.reader.reset();
  }
}

nlohmann::json LoadedSpec::describe() const {
  using nlohmann::json;
  json programs = json::array();
  for (const Program& program : programs_) {
    json p = {{"name", program.spec->name}, {"type", to_string(program.spec->type)}, {"path", program.spec->path}};
    if (program.object) {
      p["attach_points"] = program.object->attach_points();
      auto stats = program.object->run_stats();
      p["run_count"] = stats.run_count;
      p["run_time_ns"] = stats.run_time_ns;
      p["state"] = running_ ? "attached" : "loaded";
    } else if (program.bpftrace) {
      static constexpr const char* names[] = {"prepared", "running", "restarting", "failed", "stopped"};
      p["state"] = names[static_cast<int>(program.bpftrace->state())];
      p["pid"] = program.bpftrace->pid();
      p["restarts"] = program.bpftrace->restarts();
      p["detail"] = program.bpftrace->state_detail();
      p["output"] = program.bpftrace->output_fifo();
    } else if (program.plugin) {
      p["state"] = program.plugin->crashed() ? "crashed" : "loaded";
    }
    programs.push_back(std::move(p));
  }
  json channels = json::array();
  for (const Channel& channel : channels_) {
    json c = {{"name", channel.spec->name}, {"type", to_string(channel.spec->type)}, {"source", channel.source_program}};
    if (!channel.spec->pinpath.empty()) c["pinpath"] = channel.spec->pinpath;
    if (channel.reader) {
      c["received"] = channel.reader->counters().received.load();
      c["kernel_lost"] = channel.reader->counters().kernel_lost.load();
    }
    json routes = json::array();
    for (const auto& route : channel.routes) {
      const RouteCounters& counters = route->counters;
      routes.push_back({{"processor", route->origin.processor},
                        {"received", counters.received.load()},
                        {"emitted", counters.emitted.load()},
                        {"skipped", counters.skipped.load()},
                        {"failed", counters.failed.load()},
                        {"dropped", counters.dropped.load()}});
    }
    c["processors"] = std::move(routes);
    channels.push_back(std::move(c));
  }
  return {{"name", spec_.name},       {"version", spec_.version},  {"source", spec_.source_file},
          {"state", running_ ? "running" : "stopped"}, {"programs", std::move(programs)},
          {"channels", std::move(channels)}};
}

}  // namespace ea
