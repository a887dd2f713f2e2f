// One item of `spec.programs`: name, type, path, sha256, properties, and the channels/events the
// bpftrace slide nests in a program.
#include <array>

#include <fmt/format.h>

#include "spec/names.h"
#include "spec/parse_internal.h"
#include "spec/suggest.h"

namespace ea {
namespace {

constexpr std::array<std::string_view, 8> kProgramFields{"name",       "type",     "path",   "sha256",
                                                         "properties", "channels", "events", "metrics"};
constexpr std::array<std::string_view, 3> kProgramTypes{"ebpf_object", "bpftrace", "user_so"};

std::optional<ProgramType> program_type_named(std::string_view name) {
  if (name == "ebpf_object") return ProgramType::EbpfObject;
  if (name == "bpftrace") return ProgramType::Bpftrace;
  if (name == "user_so") return ProgramType::UserSo;
  return std::nullopt;
}

std::optional<ProgramType> read_type(YamlReader& reader, const Field& field) {
  auto text = reader.string(field);
  if (!text) return std::nullopt;
  auto type = program_type_named(*text);
  if (!type) {
    std::string what = text->empty() ? "no program type given" : fmt::format("unknown program type '{}'", printable(*text));
    reader.error(field, what + use_one_of(*text, kProgramTypes));
  }
  return type;
}

void read_path(YamlReader& reader, const Field& field, ProgramSpec& program) {
  auto path = reader.string(field);
  if (!path) return;
  if (auto problem = program_path_problem(*path)) reader.error(field, *problem);
  program.path = *path;
}

void read_sha256(YamlReader& reader, const Field& field, ProgramSpec& program) {
  auto text = reader.string(field);
  if (!text) return;
  if (auto digest = normalize_sha256(*text))
    program.sha256 = *digest;
  else
    reader.error(field, fmt::format("expected 64 hex digits (as printed by `sha256sum FILE`), got '{}'", printable(*text)));
}

bool has_inline_source(const ProgramSpec& program) {
  auto* props = std::get_if<BpftraceProps>(&program.props);
  return props && !props->src.empty();
}

// What each type needs beyond its properties: ebpf_object and user_so load a file, bpftrace
// takes its script from exactly one place.
void check_source(YamlReader& reader, const Field& item, const FieldMap& fields, const ProgramSpec& program) {
  const Field* path = fields.get("path");
  switch (program.type) {
    case ProgramType::EbpfObject:
      if (!path) reader.missing(item, "path", "add 'path: ...' naming the compiled .bpf.o (a file path or URL)");
      break;
    case ProgramType::UserSo:
      if (!path) reader.missing(item, "path", "add 'path: ...' naming the plugin .so (a file path or URL)");
      break;
    case ProgramType::Bpftrace:
      if (path && has_inline_source(program))
        reader.error(*path, "a bpftrace program takes its script from 'path' or 'properties.src', not both — remove one");
      else if (!path && !has_inline_source(program))
        reader.missing(item, "path",
                       "a bpftrace program needs its script: add 'path: ...' (a .bt file) or 'properties.src'");
      break;
  }
  const Field* sha256 = fields.get("sha256");
  if (sha256 && !path)
    reader.error(*sha256, "sha256 pins the file named by 'path', and this program has no path — remove sha256");
}

}  // namespace

std::optional<std::string> read_safe_name(YamlReader& reader, const Field& field, std::string_view what) {
  auto name = reader.string(field);
  if (!name) return std::nullopt;
  if (!is_safe_name(*name)) {
    reader.error(field, fmt::format("{} name '{}' is not allowed — {}", what, printable(*name), kSafeNameRule));
    return std::nullopt;
  }
  return name;
}

std::optional<ProgramDraft> parse_program(YamlReader& reader, const Field& item) {
  auto fields = reader.fields(item, kProgramFields);
  if (!fields) return std::nullopt;
  ProgramDraft draft;
  draft.spec.pos = reader.pos(item);
  draft.name = {YamlReader::child_path(item.path, "name"), reader.pos(item)};

  if (const Field* name = fields->get("name")) {
    draft.name.pos = reader.pos(*name);
    draft.spec.name = read_safe_name(reader, *name, "program").value_or("");
  } else {
    reader.missing(item, "name", "add 'name: ...' (unique in this spec)");
  }

  std::optional<ProgramType> type;
  if (const Field* field = fields->get("type"))
    type = read_type(reader, *field);
  else
    reader.missing(item, "type", "add 'type: ebpf_object', 'type: bpftrace' or 'type: user_so'");

  if (const Field* path = fields->get("path")) read_path(reader, *path, draft.spec);
  if (const Field* sha256 = fields->get("sha256")) read_sha256(reader, *sha256, draft.spec);

  // Properties mean different things per type: without a valid type they cannot be checked.
  if (type) {
    draft.typed = true;
    draft.spec.type = *type;
    switch (*type) {
      case ProgramType::EbpfObject: draft.spec.props = EbpfObjectProps{}; break;
      case ProgramType::Bpftrace: draft.spec.props = BpftraceProps{}; break;
      case ProgramType::UserSo: draft.spec.props = UserSoProps{}; break;
    }
    if (const Field* properties = fields->get("properties")) parse_properties(reader, *properties, draft.spec);
    check_source(reader, item, *fields, draft.spec);
    if (const Field* metrics = fields->get("metrics")) {
      if (*type == ProgramType::EbpfObject)
        draft.spec.metrics = parse_map_metrics(reader, *metrics);
      else
        reader.error(*metrics, fmt::format("metrics are read from the BPF maps of ebpf_object programs, and this one "
                                           "is {} — move them to the ebpf_object program that owns the maps",
                                           to_string(*type)));
    }
  }

  if (const Field* channels = fields->get("channels")) draft.channels = parse_channels(reader, *channels);
  if (const Field* events = fields->get("events")) draft.events = parse_events(reader, *events);
  return draft;
}

}  // namespace ea
