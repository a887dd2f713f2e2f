// Internals of the spec parser: one document is read into drafts that keep the position of every
// field a later cross-reference check may point at, then checked, then assembled into a Spec.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "spec/spec.h"
#include "spec/yaml_reader.h"

namespace ea {

// Bounds on a spec's lists: far above real specs, low enough that every check stays cheap
// (name lookups, duplicate checks and did-you-mean run over them).
inline constexpr size_t kMaxPrograms = 256;
inline constexpr size_t kMaxChannels = 256;  // in the whole spec
inline constexpr size_t kMaxEvents = 1024;   // in the whole spec
inline constexpr size_t kMaxNamedItems = 1024;  // progs, variables, maps, attach, functions, args
// `metrics:` bounds: a map key is read and decoded on every collection, so keep it small.
inline constexpr size_t kMaxMetricLabels = 32;
inline constexpr uint64_t kMaxLabelSize = 1024;      // bytes of key one label takes
inline constexpr uint64_t kMaxMetricKeySize = 4096;  // bytes of key all labels take
inline constexpr size_t kMaxDecoders = 16;
inline constexpr size_t kMaxMetricMapEntries = 1024;  // static_map entries
inline constexpr size_t kMaxRegexps = 16;
inline constexpr size_t kMaxRegexpSize = 256;
inline constexpr size_t kMaxLabelValueSize = 1024;
inline constexpr size_t kMaxMetricNameSize = 200;
inline constexpr uint64_t kMaxBuckets = 512;

// A field's path and position, kept for cross-reference errors ("no such program").
struct FieldRef {
  std::string path;
  SourcePos pos;
};

struct EventDraft {
  EventSpec spec;
  FieldRef name;
  FieldRef target;  // points at the event itself when target_processor was left to its default
};

struct ChannelDraft {
  ChannelSpec spec;  // without events: they are assembled from `events` below
  FieldRef name;
  std::optional<FieldRef> program;  // set when `program:` was written
  bool pinpath_written = false;     // even when refused: its own error says what is wrong
  std::vector<EventDraft> events;
};

struct ProgramDraft {
  ProgramSpec spec;
  bool typed = false;  // spec.type was read; without it references to the program are not judged
  FieldRef name;
  // The bpftrace slide nests `channels:` and `events:` in a program item.
  std::vector<ChannelDraft> channels;
  std::vector<EventDraft> events;
};

struct SpecDraft {
  Spec spec;  // top-level fields only; the lists below are assembled into it
  std::vector<ProgramDraft> programs;
  std::vector<ChannelDraft> channels;
  std::vector<EventDraft> events;
};

// One parsed YAML document of `kind: ebpfprogram` (every problem goes to the reader); nullopt when
// the document is not even a map. yaml_text, source_file and base_dir are left to the caller.
struct ParsedDocument {
  Spec spec;
  SourcePos name_pos;  // where `name:` was written, for duplicate-name errors across documents
};
std::optional<ParsedDocument> parse_spec_document(YamlReader& reader, const YAML::Node& document);

// A spec, program or channel name (they become parts of file paths): reported when unsafe.
std::optional<std::string> read_safe_name(YamlReader& reader, const Field& field, std::string_view what);
// `item` is one entry of spec.programs.
std::optional<ProgramDraft> parse_program(YamlReader& reader, const Field& item);
// `type`-specific `properties` of a program whose type is known.
void parse_properties(YamlReader& reader, const Field& properties, ProgramSpec& program);
// `metrics:` of an ebpf_object program (map metrics).
std::vector<MapMetricSpec> parse_map_metrics(YamlReader& reader, const Field& metrics);
// `channels: {NAME: {...}}`, `events: [...]`, `storage: {kafka: true}`.
std::vector<ChannelDraft> parse_channels(YamlReader& reader, const Field& channels);
std::vector<EventDraft> parse_events(YamlReader& reader, const Field& events);
std::optional<StorageSpec> parse_storage(YamlReader& reader, const Field& storage);

// Names, uniqueness and references between programs, channels and events (all reported).
void check_references(YamlReader& reader, const SpecDraft& draft);

}  // namespace ea
