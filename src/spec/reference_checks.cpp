// Checks that need the whole document: unique names, channels that can be fed, events that reach
// a processor that exists.
#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "pipeline/processor.h"
#include "spec/parse_internal.h"
#include "spec/suggest.h"

namespace ea {
namespace {

constexpr std::string_view kBuiltin = "builtin";

void error(YamlReader& reader, const FieldRef& at, std::string message) {
  reader.error(at.pos, at.path, std::move(message));
}

template <class Visit>
void for_each_channel(const SpecDraft& draft, Visit visit) {
  for (const ChannelDraft& channel : draft.channels) visit(channel);
  for (const ProgramDraft& program : draft.programs)
    for (const ChannelDraft& channel : program.channels) visit(channel);
}

template <class Visit>
void for_each_event(const SpecDraft& draft, Visit visit) {
  for (const EventDraft& event : draft.events) visit(event);
  for_each_channel(draft, [&](const ChannelDraft& channel) {
    for (const EventDraft& event : channel.events) visit(event);
  });
  for (const ProgramDraft& program : draft.programs)
    for (const EventDraft& event : program.events) visit(event);
}

const ProgramDraft* find_program(const SpecDraft& draft, std::string_view name) {
  auto it = std::ranges::find_if(draft.programs, [&](const ProgramDraft& p) { return p.spec.name == name; });
  return it == draft.programs.end() ? nullptr : &*it;
}

std::vector<std::string_view> program_names(const SpecDraft& draft, std::initializer_list<ProgramType> types) {
  std::vector<std::string_view> names;
  for (const ProgramDraft& program : draft.programs)
    if (program.typed && !program.spec.name.empty() && std::ranges::find(types, program.spec.type) != types.end())
      names.push_back(program.spec.name);
  return names;
}

void check_unique_names(YamlReader& reader, const SpecDraft& draft) {
  std::map<std::string_view, int> program_lines;
  for (const ProgramDraft& program : draft.programs) {
    if (program.spec.name.empty()) continue;
    auto [first, inserted] = program_lines.emplace(program.spec.name, program.name.pos.line);
    if (!inserted)
      error(reader, program.name,
            fmt::format("a program named '{}' is already declared at line {} — program names must be unique in a spec",
                        program.spec.name, first->second));
  }
  std::map<std::string_view, int> channel_lines;
  for_each_channel(draft, [&](const ChannelDraft& channel) {
    auto [first, inserted] = channel_lines.emplace(channel.spec.name, channel.name.pos.line);
    if (!inserted)
      error(reader, channel.name,
            fmt::format("a channel named '{}' is already declared at line {} — channel names must be unique in a spec",
                        channel.spec.name, first->second));
  });
}

// A pipe is a FIFO at `pinpath`; only a spec's single bpftrace program has a default one.
void check_pipes(YamlReader& reader, const SpecDraft& draft) {
  size_t bpftrace_programs = program_names(draft, {ProgramType::Bpftrace}).size();
  const ChannelDraft* default_user = nullptr;
  std::map<std::string_view, int> pinpath_lines;
  for_each_channel(draft, [&](const ChannelDraft& channel) {
    const ChannelSpec& spec = channel.spec;
    if (!spec.pinpath.empty()) {
      auto [first, inserted] = pinpath_lines.emplace(spec.pinpath, channel.name.pos.line);
      if (!inserted)
        error(reader, channel.name,
              fmt::format("pinpath '{}' is already used by the channel at line {} — give each channel its own",
                          spec.pinpath, first->second));
      return;
    }
    if (spec.type != ChannelType::Pipe || channel.pinpath_written) return;
    if (bpftrace_programs != 1) {
      error(reader, channel.name,
            fmt::format("a pipe channel needs 'pinpath' (the FIFO's absolute path) when the spec has {} bpftrace "
                        "programs, not exactly one — add 'pinpath: /var/lib/ebpf-agent/...'",
                        bpftrace_programs == 0 ? "no" : "several"));
    } else if (default_user) {
      error(reader, channel.name,
            fmt::format("the channel '{}' already uses the bpftrace program's default pipe — add 'pinpath' to one of them",
                        default_user->spec.name));
    } else {
      default_user = &channel;
    }
  });
}

// `program:` of a channel names the ebpf_object or bpftrace program that feeds it.
void check_channel_programs(YamlReader& reader, const SpecDraft& draft) {
  auto feeders = program_names(draft, {ProgramType::EbpfObject, ProgramType::Bpftrace});
  for_each_channel(draft, [&](const ChannelDraft& channel) {
    if (!channel.program) return;
    const std::string& name = channel.spec.program;
    const ProgramDraft* program = find_program(draft, name);
    if (!program)
      error(reader, *channel.program,
            fmt::format("no program named '{}' in this spec{}", printable(name), use_one_of(name, feeders)));
    else if (program->typed && program->spec.type == ProgramType::UserSo)
      error(reader, *channel.program,
            fmt::format("'{}' is a user_so program, and channels are fed by ebpf_object or bpftrace programs{}", name,
                        use_one_of(name, feeders)));
  });
}

void check_user_so_target(YamlReader& reader, const EventDraft& event, const ProgramSpec& program) {
  const auto& functions = std::get<UserSoProps>(program.props).functions;
  if (functions.empty()) return;  // the plugin's own symbol table decides at load time
  const std::string& target = event.spec.target_processor;
  if (std::ranges::find(functions, target, &FunctionSpec::name) != functions.end()) return;
  std::vector<std::string_view> names;
  for (const FunctionSpec& function : functions) names.push_back(function.name);
  error(reader, event.target,
        fmt::format("'{}' is not one of the functions of user_so program '{}'{}", printable(target), program.name,
                    use_one_of(target, names)));
}

void check_builtin_target(YamlReader& reader, const EventDraft& event) {
  const std::string& target = event.spec.target_processor;
  if (find_builtin_processor(target)) return;
  std::vector<std::string> registered = builtin_processor_names();
  std::vector<std::string_view> names(registered.begin(), registered.end());
  error(reader, event.target,
        fmt::format("no built-in processor named '{}'{}", printable(target), use_one_of(target, names)));
}

// An event's `name` is a user_so program of this spec or `builtin`, and its target_processor is
// a function that program declares, or a registered built-in processor.
void check_events(YamlReader& reader, const SpecDraft& draft) {
  auto processors = program_names(draft, {ProgramType::UserSo});
  processors.push_back(kBuiltin);
  for_each_event(draft, [&](const EventDraft& event) {
    const std::string& name = event.spec.name;
    if (name == kBuiltin) {
      check_builtin_target(reader, event);
      return;
    }
    const ProgramDraft* program = find_program(draft, name);
    if (!program) {
      error(reader, event.name,
            fmt::format("no user_so program named '{}' in this spec{}", printable(name), use_one_of(name, processors)));
    } else if (!program->typed) {
      return;  // its type error is already reported
    } else if (program->spec.type != ProgramType::UserSo) {
      error(reader, event.name,
            fmt::format("'{}' is a {} program; events go to a user_so program or 'builtin'{}", name,
                        to_string(program->spec.type), use_one_of(name, processors)));
    } else {
      check_user_so_target(reader, event, program->spec);
    }
  });
}

// Each list is bounded when read; program-level channels and events can still add up.
bool check_totals(YamlReader& reader, const SpecDraft& draft) {
  size_t channels = 0, events = 0;
  const ChannelDraft* first_extra_channel = nullptr;
  const EventDraft* first_extra_event = nullptr;
  for_each_channel(draft, [&](const ChannelDraft& channel) {
    if (++channels == kMaxChannels + 1) first_extra_channel = &channel;
  });
  for_each_event(draft, [&](const EventDraft& event) {
    if (++events == kMaxEvents + 1) first_extra_event = &event;
  });
  if (first_extra_channel)
    error(reader, first_extra_channel->name,
          fmt::format("the spec has {} channels, more than the {} allowed — split it into several specs", channels,
                      kMaxChannels));
  if (first_extra_event)
    error(reader, first_extra_event->name,
          fmt::format("the spec has {} events, more than the {} allowed — split it into several specs", events,
                      kMaxEvents));
  return !first_extra_channel && !first_extra_event;
}

}  // namespace

void check_references(YamlReader& reader, const SpecDraft& draft) {
  if (!check_totals(reader, draft)) return;
  check_unique_names(reader, draft);
  check_pipes(reader, draft);
  check_channel_programs(reader, draft);
  check_events(reader, draft);
}

}  // namespace ea
