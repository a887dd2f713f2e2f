// `channels`, `events` and `storage`, wherever the talk's shapes put them.
#include <array>

#include <fmt/format.h>

#include "spec/names.h"
#include "spec/parse_internal.h"
#include "spec/suggest.h"

namespace ea {
namespace {

constexpr std::array<std::string_view, 6> kChannelFields{"type", "pinpath", "program", "struct", "events", "storage"};
constexpr std::array<std::string_view, 3> kChannelTypes{"ring_buffer", "perf_buffer", "pipe"};
constexpr std::array<std::string_view, 4> kEventFields{"name", "hash", "key", "target_processor"};
constexpr std::array<std::string_view, 2> kDispatchStrategies{"hash", "round_robin"};
constexpr std::array<std::string_view, 7> kStorageOutputs{"kafka", "tmpfs",      "file",      "tsdb",
                                                          "stdout", "prometheus", "clickhouse"};
constexpr std::string_view kDefaultTargetProcessor = "process";

std::optional<ChannelType> channel_type_named(std::string_view name) {
  if (name == "ring_buffer") return ChannelType::RingBuffer;
  if (name == "perf_buffer") return ChannelType::PerfBuffer;
  if (name == "pipe") return ChannelType::Pipe;
  return std::nullopt;
}

void read_channel_type(YamlReader& reader, const Field& field, ChannelSpec& channel) {
  auto text = reader.string(field);
  if (!text) return;
  if (auto type = channel_type_named(*text)) {
    channel.type = *type;
    return;
  }
  std::string what = text->empty() ? "no channel type given" : fmt::format("unknown channel type '{}'", printable(*text));
  reader.error(field, what + use_one_of(*text, kChannelTypes));
}

std::optional<ChannelDraft> parse_channel(YamlReader& reader, const Field& entry) {
  ChannelDraft draft;
  draft.spec.name = entry.name;
  draft.spec.pos = reader.pos(entry.key);
  draft.name = {entry.path, draft.spec.pos};
  if (!is_safe_name(entry.name))
    reader.error(draft.spec.pos, entry.path,
                 fmt::format("channel name '{}' is not allowed — {}", printable(entry.name), kSafeNameRule));
  auto fields = reader.fields(entry, kChannelFields);
  if (!fields) return std::nullopt;

  if (const Field* type = fields->get("type"))
    read_channel_type(reader, *type, draft.spec);
  else
    reader.missing(entry, "type", "add 'type: ring_buffer', 'type: perf_buffer' or 'type: pipe'");

  if (const Field* pinpath = fields->get("pinpath")) {
    auto path = reader.string(*pinpath);
    draft.pinpath_written = !path || !path->empty();
    if (path && !path->empty()) {
      if (auto problem = absolute_path_problem(*path))
        reader.error(*pinpath, fmt::format("pinpath {}", *problem));
      else
        draft.spec.pinpath = *path;
    }
  }
  if (const Field* program = fields->get("program")) {
    draft.program = FieldRef{program->path, reader.pos(*program)};
    draft.spec.program = reader.string(*program).value_or("");
  }
  if (const Field* record_struct = fields->get("struct")) {
    auto name = reader.string(*record_struct);
    if (name && !is_c_identifier(*name))
      reader.error(*record_struct, fmt::format("'{}' is not a C struct name — write only the name, e.g. 'struct: event'",
                                               printable(*name)));
    else if (name)
      draft.spec.record_struct = *name;
  }
  if (const Field* events = fields->get("events")) draft.events = parse_events(reader, *events);
  if (const Field* storage = fields->get("storage")) draft.spec.storage = parse_storage(reader, *storage);
  return draft;
}

std::optional<EventDraft> parse_event(YamlReader& reader, const Field& item) {
  auto fields = reader.fields(item, kEventFields);
  if (!fields) return std::nullopt;
  EventDraft draft;
  draft.spec.pos = reader.pos(item);
  draft.spec.target_processor = kDefaultTargetProcessor;
  draft.target = {YamlReader::child_path(item.path, "target_processor"), draft.spec.pos};

  if (const Field* name = fields->get("name")) {
    draft.name = {name->path, reader.pos(*name)};
    auto text = reader.string(*name);
    if (!text) return std::nullopt;
    draft.spec.name = *text;
  } else {
    reader.missing(item, "name", "add 'name: ...' — a user_so program of this spec, or 'builtin'");
    return std::nullopt;
  }
  if (const Field* hash = fields->get("hash")) {
    auto text = reader.string(*hash);
    if (text == "hash") draft.spec.dispatch = DispatchStrategy::Hash;
    else if (text == "round_robin") draft.spec.dispatch = DispatchStrategy::RoundRobin;
    else if (text)
      reader.error(*hash, fmt::format("unknown dispatch strategy '{}'{}", printable(*text),
                                      use_one_of(*text, kDispatchStrategies)));
  }
  if (const Field* key = fields->get("key")) {
    auto text = reader.string(*key);
    if (text && text->empty()) reader.error(*key, "is empty — name the record field to partition by, e.g. tgid");
    if (text) draft.spec.key = *text;
  }
  if (const Field* target = fields->get("target_processor")) {
    draft.target = {target->path, reader.pos(*target)};
    auto text = reader.string(*target);
    if (text && text->empty())
      reader.error(*target, "is empty — name the processing function, or remove it to use 'process'");
    else if (text)
      draft.spec.target_processor = *text;
  }
  return draft;
}

}  // namespace

std::vector<ChannelDraft> parse_channels(YamlReader& reader, const Field& channels) {
  std::vector<ChannelDraft> result;
  for (const Field& entry : reader.entries(channels, kMaxChannels).value_or(std::vector<Field>{}))
    if (auto channel = parse_channel(reader, entry)) result.push_back(std::move(*channel));
  return result;
}

std::vector<EventDraft> parse_events(YamlReader& reader, const Field& events) {
  std::vector<EventDraft> result;
  for (const Field& item : reader.items(events, kMaxEvents).value_or(std::vector<Field>{}))
    if (auto event = parse_event(reader, item)) result.push_back(std::move(*event));
  return result;
}

std::optional<StorageSpec> parse_storage(YamlReader& reader, const Field& storage) {
  auto entries = reader.entries(storage);
  if (!entries) return std::nullopt;
  StorageSpec spec{.pos = reader.pos(storage)};
  for (const Field& entry : *entries) {
    if (std::ranges::find(kStorageOutputs, entry.name) == kStorageOutputs.end()) {
      reader.error(reader.pos(entry.key), entry.path,
                   fmt::format("unknown output '{}'{}", printable(entry.name), use_one_of(entry.name, kStorageOutputs)));
      continue;
    }
    if (auto enabled = reader.boolean(entry)) spec.outputs[entry.name] = *enabled;
  }
  return spec;
}

}  // namespace ea
