// `properties` of a program, by type: ebpf_object (progs, variables, maps, attach), bpftrace
// (src, args), user_so (functions, initfile, config).
#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <set>

#include <fmt/format.h>

#include "spec/names.h"
#include "spec/parse_internal.h"
#include "spec/suggest.h"

namespace ea {
namespace {

constexpr std::array<std::string_view, 4> kEbpfObjectProps{"progs", "variables", "maps", "attach"};
constexpr std::array<std::string_view, 2> kBpftraceProps{"src", "args"};
constexpr std::array<std::string_view, 3> kUserSoProps{"functions", "initfile", "config"};
constexpr std::array<std::string_view, 2> kMapInitFields{"max_entries", "entries"};
constexpr std::array<std::string_view, 2> kMapEntryFields{"key", "value"};
constexpr std::array<std::string_view, 10> kAttachFields{"binary",     "symbol",    "offset", "pid",    "retprobe",
                                                         "optional",   "perf_event", "interface", "mode", "cgroup"};
constexpr size_t kMaxUprobeBinaries = 16;
constexpr std::array<std::string_view, 4> kPerfEventFields{"type", "config", "frequency", "period"};
constexpr std::array<std::string_view, 2> kPerfTypes{"software", "hardware"};
// XDP modes (skb/drv are the kernel's own words for generic/native) and TC directions: the
// attach options do not know the program's hook type, the loader checks the pairing.
constexpr std::array<std::string_view, 7> kAttachModes{"generic", "native", "offload", "skb", "drv", "ingress", "egress"};
constexpr std::array<std::string_view, 2> kFunctionFields{"name", "type"};

std::string_view trim(std::string_view text) {
  constexpr std::string_view kSpace = " \t";
  size_t first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(kSpace) - first + 1);
}

// Explains a key that belongs to another program type ("'functions' is a user_so property").
YamlReader::UnknownKeyExplainer explain_other_type(ProgramType type, std::span<const std::string_view> own) {
  return [type, own](std::string_view key) -> std::string {
    auto belongs = [&](std::span<const std::string_view> keys) { return std::ranges::find(keys, key) != keys.end(); };
    std::string_view owner = belongs(kEbpfObjectProps) ? "ebpf_object"
                             : belongs(kBpftraceProps) ? "bpftrace"
                             : belongs(kUserSoProps)   ? "user_so"
                                                       : "";
    if (owner.empty()) return "";
    return fmt::format("'{}' is a property of {} programs and this one is {}{}", key, owner, to_string(type),
                       use_one_of(key, own));
  };
}

// One `progs` entry: a BPF program name, or alternatives "a|b" (the first the kernel supports;
// the loader picks). Returned with spaces around the alternatives removed.
std::optional<std::string> read_prog_entry(YamlReader& reader, const Field& at, std::string_view entry) {
  std::string normalized;
  for (size_t start = 0; start <= entry.size();) {
    size_t bar = std::min(entry.find('|', start), entry.size());
    std::string_view alternative = trim(entry.substr(start, bar - start));
    if (!is_c_identifier(alternative)) {
      reader.error(at, alternative.empty()
                           ? std::string("an empty program name — write names separated by ',' and alternatives by '|'")
                           : fmt::format("'{}' is not a BPF program name (the C function's name)", printable(alternative)));
      return std::nullopt;
    }
    if (!normalized.empty()) normalized += '|';
    normalized += alternative;
    start = bar + 1;
  }
  return normalized;
}

// `progs`: a list of names or one comma-separated string.
void read_progs(YamlReader& reader, const Field& field, EbpfObjectProps& props) {
  std::vector<std::pair<Field, std::string>> entries;  // where written, text
  if (field.value.IsScalar()) {
    std::string text = field.value.Scalar();
    for (size_t start = 0; start <= text.size();) {
      size_t comma = std::min(text.find(',', start), text.size());
      entries.emplace_back(field, std::string(trim(std::string_view(text).substr(start, comma - start))));
      start = comma + 1;
    }
  } else if (auto items = reader.items(field, kMaxNamedItems)) {
    for (const Field& item : *items)
      if (auto text = reader.string(item)) entries.emplace_back(item, std::move(*text));
  } else {
    return;
  }
  if (entries.size() > kMaxNamedItems) {
    reader.error(field, fmt::format("names {} programs, more than the {} a spec may have — remove 'progs' to load all",
                                    entries.size(), kMaxNamedItems));
    return;
  }
  std::vector<std::string> progs;
  std::set<std::string, std::less<>> seen;
  for (const auto& [at, text] : entries) {
    auto entry = read_prog_entry(reader, at, text);
    if (!entry) continue;
    if (!seen.insert(*entry).second) {
      reader.error(at, fmt::format("'{}' is listed twice — keep one", printable(*entry)));
      continue;
    }
    progs.push_back(std::move(*entry));
  }
  if (entries.empty()) reader.error(field, "lists no programs — name the BPF programs to load, or remove 'progs' to load all");
  props.progs = std::move(progs);
}

bool check_identifier(YamlReader& reader, const Field& entry, std::string_view what) {
  if (is_c_identifier(entry.name)) return true;
  reader.error(reader.pos(entry.key), entry.path,
               fmt::format("'{}' is not a {} name (a C identifier)", printable(entry.name), what));
  return false;
}

void read_variables(YamlReader& reader, const Field& field, EbpfObjectProps& props) {
  for (const Field& entry : reader.entries(field, kMaxNamedItems).value_or(std::vector<Field>{})) {
    auto value = reader.value(entry);
    if (!check_identifier(reader, entry, "global variable") || !value) continue;
    props.variables.push_back(VariableInit{entry.name, std::move(*value), reader.pos(entry.key)});
  }
}

std::optional<MapEntry> read_map_entry(YamlReader& reader, const Field& item) {
  auto fields = reader.fields(item, kMapEntryFields);
  if (!fields) return std::nullopt;
  MapEntry entry{.pos = reader.pos(item)};
  bool complete = true;
  for (std::string_view part : kMapEntryFields) {
    const Field* field = fields->get(part);
    if (!field) {
      reader.missing(item, part, "a map entry needs both 'key' and 'value'");
      complete = false;
      continue;
    }
    auto value = reader.value(*field);
    if (!value) {
      complete = false;
      continue;
    }
    (part == "key" ? entry.key : entry.value) = std::move(*value);
  }
  return complete ? std::optional(std::move(entry)) : std::nullopt;
}

void read_maps(YamlReader& reader, const Field& field, EbpfObjectProps& props) {
  for (const Field& entry : reader.entries(field, kMaxNamedItems).value_or(std::vector<Field>{})) {
    auto fields = reader.fields(entry, kMapInitFields);
    if (!check_identifier(reader, entry, "BPF map") || !fields) continue;
    MapInit map{.name = entry.name, .pos = reader.pos(entry.key)};
    if (const Field* max_entries = fields->get("max_entries")) {
      auto count = reader.unsigned_integer(*max_entries, std::numeric_limits<uint32_t>::max());
      if (count == 0u) reader.error(*max_entries, "a map needs at least 1 entry — give a positive max_entries");
      if (count && *count > 0) map.max_entries = static_cast<uint32_t>(*count);
    }
    if (const Field* entries = fields->get("entries")) {
      for (const Field& item : reader.items(*entries).value_or(std::vector<Field>{}))
        if (auto map_entry = read_map_entry(reader, item)) map.entries.push_back(std::move(*map_entry));
    }
    props.maps.push_back(std::move(map));
  }
}

void read_perf_event(YamlReader& reader, const Field& field, AttachOptions& attach) {
  auto fields = reader.fields(field, kPerfEventFields);
  if (!fields) return;
  if (const Field* type = fields->get("type")) {
    auto text = reader.string(*type);
    if (text && std::ranges::find(kPerfTypes, *text) == kPerfTypes.end())
      reader.error(*type, fmt::format("unknown perf event type '{}'{}", printable(*text), use_one_of(*text, kPerfTypes)));
    else if (text)
      attach.perf_type = *text;
  } else {
    reader.missing(field, "type", "add 'type: software' (cpu-clock, task-clock, ...) or 'type: hardware'");
  }
  if (const Field* config = fields->get("config")) {
    auto text = reader.string(*config);
    if (text && text->empty()) reader.error(*config, "is empty — name the event, e.g. cpu-clock");
    if (text) attach.perf_config = *text;
  } else {
    reader.missing(field, "config", "add the event's name, e.g. 'config: cpu-clock'");
  }
  const Field* frequency = fields->get("frequency");
  const Field* period = fields->get("period");
  if (frequency && period)
    reader.error(*period, "give 'frequency' (samples per second) or 'period' (events per sample), not both");
  else if (!frequency && !period)
    reader.missing(field, "frequency", "add 'frequency: N' (samples per second) or 'period: N' (events per sample)");
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  if (frequency)
    if (auto hz = reader.unsigned_integer(*frequency, kMax)) {
      if (*hz == 0) reader.error(*frequency, "must be at least 1 sample per second");
      attach.frequency = *hz;
    }
  if (period)
    if (auto events = reader.unsigned_integer(*period, kMax)) {
      if (*events == 0) reader.error(*period, "must be at least 1 event per sample");
      attach.period = *events;
    }
}

// A string option that must not be empty.
std::optional<std::string> read_text(YamlReader& reader, const Field& field, std::string_view example) {
  auto text = reader.string(field);
  if (text && text->empty()) {
    reader.error(field, fmt::format("is empty — give a value, e.g. {}", example));
    return std::nullopt;
  }
  return text;
}

// `binary`: one path or library name, or a list of candidates (each one present on the host is
// probed, so one spec covers libssl.so.3 and libssl.so.1.1 hosts).
std::vector<std::string> read_binaries(YamlReader& reader, const Field& field) {
  constexpr std::string_view kExample = "/usr/lib/x86_64-linux-gnu/libssl.so.3, or a list [libssl.so.3, libssl.so.1.1]";
  auto checked = [&](const Field& at, std::string text) -> std::optional<std::string> {
    if (text.empty()) {
      reader.error(at, fmt::format("is empty — give a path or a library name, e.g. {}", kExample));
      return std::nullopt;
    }
    bool control = std::ranges::any_of(text, [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
    if (control) {
      reader.error(at, fmt::format("'{}' is not a file path or library name (no control characters)", printable(text)));
      return std::nullopt;
    }
    return text;
  };
  std::vector<std::string> binaries;
  if (field.value.IsMap()) {
    reader.error(field, fmt::format("expected a path or library name, or a list of them, e.g. {}", kExample));
    return binaries;
  }
  if (!field.value.IsSequence()) {
    if (auto text = reader.string(field))
      if (auto binary = checked(field, std::move(*text))) binaries.push_back(std::move(*binary));
    return binaries;
  }
  if (field.value.size() > kMaxUprobeBinaries) {
    reader.error(field, fmt::format("lists {} binaries, more than the {} a uprobe may try — keep the ones hosts have",
                                    field.value.size(), kMaxUprobeBinaries));
    return binaries;
  }
  auto items = reader.items(field);
  if (!items) return binaries;
  if (items->empty()) reader.error(field, fmt::format("lists no binaries — give a path or library name, e.g. {}", kExample));
  for (const Field& item : *items) {
    auto text = reader.string(item);
    auto binary = text ? checked(item, std::move(*text)) : std::nullopt;
    if (!binary) continue;
    if (std::ranges::find(binaries, *binary) != binaries.end()) {
      reader.error(item, fmt::format("'{}' is listed twice — keep one", printable(*binary)));
      continue;
    }
    binaries.push_back(std::move(*binary));
  }
  return binaries;
}

std::optional<AttachOptions> read_attach_options(YamlReader& reader, const Field& entry) {
  auto fields = reader.fields(entry, kAttachFields);
  if (!check_identifier(reader, entry, "BPF program") || !fields) return std::nullopt;
  AttachOptions attach{.prog = entry.name, .pos = reader.pos(entry.key)};
  if (const Field* f = fields->get("binary")) attach.binary = read_binaries(reader, *f);
  if (const Field* f = fields->get("symbol")) attach.symbol = read_text(reader, *f, "SSL_read").value_or("");
  if (const Field* f = fields->get("offset")) attach.offset = reader.unsigned_integer(*f, std::numeric_limits<uint64_t>::max());
  if (const Field* f = fields->get("pid"))
    attach.pid = static_cast<int>(reader.integer(*f, -1, std::numeric_limits<int32_t>::max()).value_or(-1));
  if (const Field* f = fields->get("retprobe")) attach.retprobe = reader.boolean(*f).value_or(false);
  if (const Field* f = fields->get("optional")) attach.optional = reader.boolean(*f).value_or(false);
  if (const Field* f = fields->get("perf_event")) read_perf_event(reader, *f, attach);
  if (const Field* f = fields->get("interface")) {
    if (auto name = reader.string(*f)) {
      if (auto problem = interface_name_problem(*name))
        reader.error(*f, fmt::format("'{}' {}", printable(*name), *problem));
      else
        attach.interface = *name;
    }
  }
  if (const Field* f = fields->get("mode")) {
    auto mode = reader.string(*f);
    if (mode && std::ranges::find(kAttachModes, *mode) == kAttachModes.end())
      reader.error(*f, fmt::format("unknown attach mode '{}' (XDP: generic, native, offload, skb, drv; TC: ingress, egress){}",
                                   printable(*mode), use_one_of(*mode, kAttachModes)));
    else if (mode)
      attach.mode = *mode;
  }
  if (const Field* f = fields->get("cgroup")) {
    if (auto path = reader.string(*f)) {
      if (auto problem = absolute_path_problem(*path))
        reader.error(*f, fmt::format("the cgroup {}, e.g. /sys/fs/cgroup/unified/app.slice", *problem));
      else
        attach.cgroup = *path;
    }
  }
  return attach;
}

void parse_ebpf_object(YamlReader& reader, const FieldMap& fields, EbpfObjectProps& props) {
  if (const Field* f = fields.get("progs")) read_progs(reader, *f, props);
  if (const Field* f = fields.get("variables")) read_variables(reader, *f, props);
  if (const Field* f = fields.get("maps")) read_maps(reader, *f, props);
  if (const Field* f = fields.get("attach")) {
    for (const Field& entry : reader.entries(*f, kMaxNamedItems).value_or(std::vector<Field>{}))
      if (auto attach = read_attach_options(reader, entry)) props.attach.push_back(std::move(*attach));
  }
}

void parse_bpftrace(YamlReader& reader, const FieldMap& fields, BpftraceProps& props) {
  if (const Field* f = fields.get("src")) {
    auto src = reader.string(*f);
    if (src && src->empty()) reader.error(*f, "is empty — write the bpftrace program here, or remove 'src' and give 'path'");
    if (src) props.src = std::move(*src);
  }
  if (const Field* f = fields.get("args")) {
    for (const Field& item : reader.items(*f, kMaxNamedItems).value_or(std::vector<Field>{}))
      if (auto arg = reader.string(item)) props.args.push_back(std::move(*arg));
  }
}

void parse_user_so(YamlReader& reader, const FieldMap& fields, UserSoProps& props) {
  if (const Field* f = fields.get("functions")) {
    std::set<std::string, std::less<>> seen;
    for (const Field& item : reader.items(*f, kMaxNamedItems).value_or(std::vector<Field>{})) {
      auto function = reader.fields(item, kFunctionFields);
      if (!function) continue;
      FunctionSpec spec{.pos = reader.pos(item)};
      if (const Field* name = function->get("name")) {
        auto text = reader.string(*name);
        if (text && !is_c_identifier(*text)) {
          reader.error(*name, fmt::format("'{}' is not a function name (the exported C symbol)", printable(*text)));
          continue;
        }
        if (!text) continue;
        if (!seen.insert(*text).second) {
          reader.error(*name, fmt::format("function '{}' is listed twice — keep one", *text));
          continue;
        }
        spec.name = *text;
      } else {
        reader.missing(item, "name", "add 'name: ...' (the exported function, e.g. process)");
        continue;
      }
      if (const Field* type = function->get("type")) spec.type = reader.string(*type).value_or("");
      props.functions.push_back(std::move(spec));
    }
  }
  if (const Field* f = fields.get("initfile")) {
    auto path = reader.string(*f);
    if (path && !path->empty()) {
      if (auto problem = program_path_problem(*path)) reader.error(*f, *problem);
      props.initfile = *path;
    }
  }
  if (const Field* f = fields.get("config")) props.config = reader.value(*f).value_or(Value());
}

}  // namespace

void parse_properties(YamlReader& reader, const Field& properties, ProgramSpec& program) {
  std::span<const std::string_view> known;
  switch (program.type) {
    case ProgramType::EbpfObject: known = kEbpfObjectProps; break;
    case ProgramType::Bpftrace: known = kBpftraceProps; break;
    case ProgramType::UserSo: known = kUserSoProps; break;
  }
  auto fields = reader.fields(properties, known, explain_other_type(program.type, known));
  if (!fields) return;
  std::visit(
      [&](auto& props) {
        using Props = std::decay_t<decltype(props)>;
        if constexpr (std::is_same_v<Props, EbpfObjectProps>) parse_ebpf_object(reader, *fields, props);
        if constexpr (std::is_same_v<Props, BpftraceProps>) parse_bpftrace(reader, *fields, props);
        if constexpr (std::is_same_v<Props, UserSoProps>) parse_user_so(reader, *fields, props);
      },
      program.props);
}

}  // namespace ea
