// One YAML document of `kind: ebpfprogram`: top-level fields and the `spec` section, assembled
// into a Spec once every part has been read and cross-checked.
#include <array>

#include <fmt/format.h>

#include "spec/parse_internal.h"

namespace ea {
namespace {

constexpr std::string_view kKind = "ebpfprogram";
constexpr std::array<std::string_view, 6> kTopFields{"kind", "name", "description", "version", "author", "spec"};
constexpr std::array<std::string_view, 4> kSpecFields{"programs", "channels", "events", "storage"};

void read_header(YamlReader& reader, const Field& root, const FieldMap& fields, Spec& spec, SourcePos& name_pos) {
  if (const Field* kind = fields.get("kind")) {
    auto text = reader.string(*kind);
    if (text && *text != kKind)
      reader.error(*kind, fmt::format("unsupported kind '{}' — this agent reads 'kind: {}' documents", printable(*text), kKind));
    spec.kind = kKind;
  } else {
    reader.missing(root, "kind", fmt::format("add 'kind: {}'", kKind));
  }
  if (const Field* name = fields.get("name")) {
    name_pos = reader.pos(*name);
    spec.name = read_safe_name(reader, *name, "spec").value_or("");
  } else
    reader.missing(root, "name", "add 'name: ...' (names the spec in `ebpf-agent list` and `delete`)");
  // A version is kept as written: `version: 0.1` and `version: "0.1"` are both "0.1".
  if (const Field* version = fields.get("version")) spec.version = reader.string(*version).value_or("");
  if (const Field* description = fields.get("description")) spec.description = reader.string(*description).value_or("");
  if (const Field* author = fields.get("author")) spec.author = reader.string(*author).value_or("");
}

void read_body(YamlReader& reader, const Field& body, SpecDraft& draft) {
  auto fields = reader.fields(body, kSpecFields);
  if (!fields) return;
  const Field* programs = fields->get("programs");
  if (!programs) {
    reader.missing(body, "programs", "add 'programs:' with at least one program");
  } else if (auto items = reader.items(*programs, kMaxPrograms)) {
    if (items->empty()) reader.error(*programs, "is empty — add at least one program");
    for (const Field& item : *items)
      if (auto program = parse_program(reader, item)) draft.programs.push_back(std::move(*program));
  }
  if (const Field* channels = fields->get("channels")) draft.channels = parse_channels(reader, *channels);
  if (const Field* events = fields->get("events")) draft.events = parse_events(reader, *events);
  if (const Field* storage = fields->get("storage")) draft.spec.storage = parse_storage(reader, *storage);
}

std::vector<EventSpec> event_specs(const std::vector<EventDraft>& drafts) {
  std::vector<EventSpec> events;
  for (const EventDraft& draft : drafts) events.push_back(draft.spec);
  return events;
}

ChannelSpec assemble_channel(const ChannelDraft& draft, const std::vector<EventDraft>& program_events) {
  ChannelSpec channel = draft.spec;
  channel.events = event_specs(draft.events);
  for (const EventDraft& event : program_events) channel.events.push_back(event.spec);
  return channel;
}

// Program-level channels join the spec's; program-level events go to the channels declared in
// the same program, or to the spec level when the program declares none.
Spec assemble(SpecDraft draft) {
  Spec spec = std::move(draft.spec);
  spec.events = event_specs(draft.events);
  for (const ChannelDraft& channel : draft.channels) spec.channels.push_back(assemble_channel(channel, {}));
  for (ProgramDraft& program : draft.programs) {
    for (const ChannelDraft& channel : program.channels) spec.channels.push_back(assemble_channel(channel, program.events));
    if (program.channels.empty())
      for (const EventDraft& event : program.events) spec.events.push_back(event.spec);
    spec.programs.push_back(std::move(program.spec));
  }
  return spec;
}

}  // namespace

std::optional<ParsedDocument> parse_spec_document(YamlReader& reader, const YAML::Node& document) {
  Field root = YamlReader::root(document);
  auto fields = reader.fields(root, kTopFields);
  if (!fields) return std::nullopt;
  SpecDraft draft;
  SourcePos name_pos = reader.pos(root);
  read_header(reader, root, *fields, draft.spec, name_pos);
  if (const Field* body = fields->get("spec"))
    read_body(reader, *body, draft);
  else
    reader.missing(root, "spec", "add a 'spec:' section with 'programs:'");
  check_references(reader, draft);
  return ParsedDocument{assemble(std::move(draft)), name_pos};
}

}  // namespace ea
