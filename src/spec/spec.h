// The `kind: ebpfprogram` spec model: what the parser produces and every loader consumes.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics/metric.h"

namespace ea {

// Where something was written, for error messages ("oom.yaml:12:7").
struct SourcePos {
  std::string file;
  int line = 0;    // 1-based, 0 = unknown
  int column = 0;  // 1-based, 0 = unknown
  std::string str() const;  // "file:line:col"
};

// A value from YAML (number, string, bool, list, map) kept as JSON for BTF-typed encoding.
using Value = nlohmann::json;

struct VariableInit {
  std::string name;  // a `const volatile` (.rodata) or global (.data/.bss) variable
  Value value;
  SourcePos pos;
};

struct MapEntry {
  Value key;
  Value value;
  SourcePos pos;
};

struct MapInit {
  std::string name;
  std::optional<uint32_t> max_entries;  // resize before load
  std::vector<MapEntry> entries;        // written after load
  SourcePos pos;
};

// Attach options a SEC() name cannot carry, keyed by BPF program (function) name.
struct AttachOptions {
  std::string prog;
  // uprobe / uretprobe: `binary` is one path or library name, or candidates of which every one
  // present on the host is probed (`[libssl.so.3, libssl.so.1.1]`)
  std::vector<std::string> binary;
  std::string symbol;
  std::optional<uint64_t> offset;
  int pid = -1;  // -1 = every process
  bool retprobe = false;
  // uprobe: when no `binary` candidate exists on this host, leave the program unattached (logged)
  // instead of failing the spec: e.g. TLS probes on a host without libssl
  bool optional = false;
  // perf_event
  std::string perf_type;    // "software" | "hardware"
  std::string perf_config;  // "cpu-clock", "task-clock", "cpu-cycles", ...
  uint64_t frequency = 0;   // samples per second (or period when frequency == 0)
  uint64_t period = 0;
  // xdp / tc
  std::string interface;
  std::string mode;  // xdp: generic | native | offload; tc: ingress | egress
  // cgroup-attached programs
  std::string cgroup;
  SourcePos pos;
};

struct EbpfObjectProps {
  std::optional<std::vector<std::string>> progs;  // load only these BPF programs
  std::vector<VariableInit> variables;
  std::vector<MapInit> maps;
  std::vector<AttachOptions> attach;
};

struct BpftraceProps {
  std::string src;                // inline source; empty when `path` names a .bt file
  std::vector<std::string> args;  // extra positional arguments ($1, $2 ...)
};

struct FunctionSpec {
  std::string name;  // exported symbol of a processing function
  std::string type;  // free-form tag from the talk (`type: default`)
  SourcePos pos;
};

struct UserSoProps {
  std::vector<FunctionSpec> functions;
  std::string initfile;  // path handed to the plugin's init hook (resolved like `path`)
  Value config;          // free-form, handed to init as JSON text
};

// `metrics:` of an ebpf_object program: a map the kernel aggregates into, read on every metrics
// collection; its key decodes into labels field by field (in the spirit of ebpf_exporter).
enum class LabelDecoderKind {
  Uint, Int, String, Hex, InetIp, Ksym,  // bytes -> text: exactly one, first
  StaticMap, Regexp,                     // text -> text / filter: any number after it
};
std::string_view to_string(LabelDecoderKind kind);

enum class ByteOrder { Host, Little, Big };

struct LabelDecoder {
  LabelDecoderKind kind = LabelDecoderKind::Uint;
  ByteOrder byte_order = ByteOrder::Host;         // uint, int
  std::map<std::string, std::string> static_map;  // static_map: decoded text -> label value
  std::vector<std::string> regexps;               // regexp: keep keys whose text matches one
  SourcePos pos;
};

struct MapMetricLabel {
  std::string name;  // "" for `padding: N` (bytes skipped)
  uint32_t size = 0;
  std::vector<LabelDecoder> decoders;
  SourcePos pos;
};

enum class BucketType { Exp2, Linear, Fixed };
std::string_view to_string(BucketType type);

struct MapMetricSpec {
  std::string name;  // Prometheus base name, unit suffix included, no `_total`
  std::string help;
  std::string unit;
  MetricKind kind = MetricKind::Counter;
  std::string map;
  std::optional<std::vector<MapMetricLabel>> labels;  // nullopt: inferred from the key's BTF
  double value_scale = 1;                             // counters and gauges
  // Histograms: the last label is the bucket key.
  BucketType bucket_type = BucketType::Exp2;
  double bucket_multiplier = 1;  // key unit -> metric unit
  uint64_t bucket_min = 0;       // exp2/linear: bucket keys bucket_min..bucket_max
  uint64_t bucket_max = 0;
  std::vector<uint64_t> bucket_keys;  // fixed: ascending
  SourcePos pos;
  SourcePos labels_pos;  // where `labels:` was written (the metric when omitted)
};

enum class ProgramType { EbpfObject, Bpftrace, UserSo };
std::string_view to_string(ProgramType type);

struct ProgramSpec {
  std::string name;
  ProgramType type = ProgramType::EbpfObject;
  std::string path;    // as written: file://, http(s)://, ftp://, or a plain path; may be empty for bpftrace `src`
  std::string sha256;  // lowercase hex; when set the fetched content must match
  std::variant<EbpfObjectProps, BpftraceProps, UserSoProps> props;
  std::vector<MapMetricSpec> metrics;  // ebpf_object only
  SourcePos pos;
};

enum class DispatchStrategy {
  Hash,        // partition by key across shards: each key keeps its order
  RoundRobin,  // spread records evenly; no ordering guarantee
};

struct EventSpec {
  std::string name;              // a user_so program of this spec, or "builtin"
  DispatchStrategy dispatch = DispatchStrategy::Hash;
  std::string key;               // record field used by `hash` (default: tgid, else pid)
  std::string target_processor;  // function of that user_so, or a built-in processor's name
  SourcePos pos;
};

// Output selection as in the talk: `storage: {kafka: true, tmpfs: true}`.
struct StorageSpec {
  std::map<std::string, bool> outputs;  // output name -> enabled
  SourcePos pos;
};

enum class ChannelType { RingBuffer, PerfBuffer, Pipe };
std::string_view to_string(ChannelType type);

struct ChannelSpec {
  std::string name;     // ring/perf: the map's name in an ebpf_object program
  ChannelType type = ChannelType::RingBuffer;
  std::string pinpath;  // pipe: FIFO path; ring/perf: optional bpffs pin of the map
  std::string program;  // which ebpf_object/bpftrace program feeds it (optional: found by map name)
  std::string record_struct;  // `struct: event`: C struct of the records, decoded through BTF
  std::vector<EventSpec> events;
  std::optional<StorageSpec> storage;
  SourcePos pos;
};

struct Spec {
  std::string kind;  // always "ebpfprogram"
  std::string name;
  std::string description;
  std::string version;
  std::string author;
  std::vector<ProgramSpec> programs;
  std::vector<ChannelSpec> channels;
  std::vector<EventSpec> events;  // spec-level: apply to every channel that names none of its own
  std::optional<StorageSpec> storage;
  std::string source_file;  // where it was read from ("<inline>" when not a file)
  std::string base_dir;     // relative paths resolve against this first
  std::string yaml_text;    // the document as given

  const ProgramSpec* find_program(std::string_view name) const;
  const ChannelSpec* find_channel(std::string_view name) const;
  // Events routed from a channel: its own, else the spec-level ones.
  const std::vector<EventSpec>& events_for(const ChannelSpec& channel) const;
};

}  // namespace ea
