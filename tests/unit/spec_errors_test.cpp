// Every class of spec error names file:line:col, the field, and the fix; all problems are listed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include <fmt/format.h>

#include "spec_test_util.h"

namespace ea {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

size_t line_count(const std::string& text) { return std::ranges::count(text, '\n') + 1; }

// Whatever the agent registers besides the tests' own processor, comma-separated.
std::string builtin_names() { return fmt::format("{}", fmt::join(builtin_processor_names(), ", ")); }

TEST(SpecErrors, UnknownProgramTypeSuggestsTheClosest) {
  std::string errors = errors_of(R"(
kind: ebpfprogram
name: oom
spec:
  programs:
    - name: oom
      type: ebpf_obj
      path: oom.bpf.o
)");
  EXPECT_EQ(errors,
            "t.yaml:6:13: field 'spec.programs[0].type': unknown program type 'ebpf_obj' — use one of: ebpf_object, "
            "bpftrace, user_so (did you mean 'ebpf_object'?)");
}

TEST(SpecErrors, UnknownFieldsAtEveryLevel) {
  std::string errors = errors_of(R"(
kind: ebpfprogram
name: oom
descripton: typo
spec:
  programs:
    - name: oom
      type: ebpf_object
      path: oom.bpf.o
      propertes: {}
  channels:
    oom_events:
      type: ring_buffer
      pinpth: /sys/fs/bpf/x
)");
  EXPECT_EQ(errors,
            "t.yaml:3:1: field 'descripton': unknown field 'descripton' — use one of: kind, name, description, version, "
            "author, spec (did you mean 'description'?)\n"
            "t.yaml:9:7: field 'spec.programs[0].propertes': unknown field 'propertes' — use one of: name, type, path, "
            "sha256, properties, channels, events, metrics (did you mean 'properties'?)\n"
            "t.yaml:13:7: field 'spec.channels.oom_events.pinpth': unknown field 'pinpth' — use one of: type, pinpath, "
            "program, struct, events, storage (did you mean 'pinpath'?)");
}

TEST(SpecErrors, PropertyOfAnotherProgramTypeIsExplained) {
  std::string errors = errors_of(R"(
kind: ebpfprogram
name: t
spec:
  programs:
    - name: obj
      type: ebpf_object
      path: obj.bpf.o
      properties: {path: x, functions: [{name: process}]}
)");
  EXPECT_EQ(errors,
            "t.yaml:8:20: field 'spec.programs[0].properties.path': unknown field 'path' — use one of: progs, variables, "
            "maps, attach\n"
            "t.yaml:8:29: field 'spec.programs[0].properties.functions': 'functions' is a property of user_so programs "
            "and this one is ebpf_object — use one of: progs, variables, maps, attach");
}

TEST(SpecErrors, WrongTypesNameTheExpectedOne) {
  std::string errors = errors_of(R"(
kind: ebpfprogram
name: [a, b]
spec:
  programs:
    name: oom
  channels:
    - oom_events
  events:
    name: x
)");
  EXPECT_EQ(errors,
            "t.yaml:2:7: field 'name': expected a string, got a list\n"
            "t.yaml:5:5: field 'spec.programs': expected a list ('- item' lines or [a, b]), got a map\n"
            "t.yaml:7:5: field 'spec.channels': expected a map (indented 'key: value' lines), got a list\n"
            "t.yaml:9:5: field 'spec.events': expected a list ('- item' lines or [a, b]), got a map");
}

TEST(SpecErrors, MissingRequiredFields) {
  std::string errors = errors_of(R"(
name: oom
spec:
  programs:
    - path: oom.bpf.o
  channels:
    oom_events: {}
  events:
    - target_processor: process
)");
  EXPECT_EQ(errors,
            "t.yaml:1:1: field 'kind': missing — add 'kind: ebpfprogram'\n"
            "t.yaml:4:7: field 'spec.programs[0].name': missing — add 'name: ...' (unique in this spec)\n"
            "t.yaml:4:7: field 'spec.programs[0].type': missing — add 'type: ebpf_object', 'type: bpftrace' or "
            "'type: user_so'\n"
            "t.yaml:6:17: field 'spec.channels.oom_events.type': missing — add 'type: ring_buffer', 'type: perf_buffer' "
            "or 'type: pipe'\n"
            "t.yaml:8:7: field 'spec.events[0].name': missing — add 'name: ...' — a user_so program of this spec, or "
            "'builtin'");
}

TEST(SpecErrors, EverythingMissingStillGivesPositions) {
  EXPECT_EQ(errors_of("kind: ebpfprogram\n"),
            "t.yaml:1:1: field 'name': missing — add 'name: ...' (names the spec in `ebpf-agent list` and `delete`)\n"
            "t.yaml:1:1: field 'spec': missing — add a 'spec:' section with 'programs:'");
  EXPECT_EQ(errors_of("kind: ebpfprogram\nname: x\nspec:\n  programs: []\n"),
            "t.yaml:4:13: field 'spec.programs': is empty — add at least one program");
}

TEST(SpecErrors, YamlSyntaxErrorsUseTheParsersPosition) {
  EXPECT_EQ(errors_of("kind: ebpfprogram\nname: x\nspec:\n  programs: [\n  channels: {}\n"),
            "t.yaml:6:1: YAML syntax error: end of sequence flow not found — check the indentation and quoting here");
  EXPECT_EQ(errors_of("kind: ebpfprogram\nname: x\n  bad: indent\n"),
            "t.yaml:3:6: YAML syntax error: illegal map value — check the indentation and quoting here");
}

TEST(SpecErrors, SyntaxErrorInOneDocumentStillChecksTheOthersWithFileLines) {
  std::string errors = errors_of(R"(
kind: ebpfprogram
name: good
spec:
  programs:
    - {name: obj, path: obj.bpf.o, type: ebpf_object}
---
kind: ebpfprogram
name: broken
spec: {programs: [}
---
kind: ebpfprogram
name: third
spec:
  programs:
    - {name: obj, path: obj.bpf.o, type: bpftrce}
)");
  EXPECT_THAT(errors, HasSubstr("t.yaml:9:19: YAML syntax error: illegal flow end"));
  EXPECT_THAT(errors, HasSubstr("\nt.yaml:15:42: field 'spec.programs[0].type': unknown program type 'bpftrce'"));
  EXPECT_EQ(line_count(errors), 2u);
}

TEST(SpecErrors, EveryProblemIsListedInFileOrder) {
  std::string errors = errors_of(R"(
kind: ebpfprogram
name: bad/name
version: {major: 1}
spec:
  programs:
    - name: a
      type: user_so
    - name: a
      type: ebpf_object
      path: sftp://host/a.bpf.o
      sha256: abc
  channels:
    c1:
      type: ring_bufer
      storage: {kafak: true, file: maybe}
)");
  EXPECT_EQ(line_count(errors), 9u) << errors;
  EXPECT_EQ(errors,
            "t.yaml:2:7: field 'name': spec name 'bad/name' is not allowed — use 1 to 64 of A-Z a-z 0-9 _ . - (not "
            "starting with '.')\n"
            "t.yaml:3:10: field 'version': expected a string, got a map\n"
            "t.yaml:6:7: field 'spec.programs[0].path': missing — add 'path: ...' naming the plugin .so (a file path or "
            "URL)\n"
            "t.yaml:8:13: field 'spec.programs[1].name': a program named 'a' is already declared at line 6 — program "
            "names must be unique in a spec\n"
            "t.yaml:10:13: field 'spec.programs[1].path': unsupported scheme 'sftp://' — use file://, http://, https://, "
            "ftp:// or a plain path\n"
            "t.yaml:11:15: field 'spec.programs[1].sha256': expected 64 hex digits (as printed by `sha256sum FILE`), got "
            "'abc'\n"
            "t.yaml:14:13: field 'spec.channels.c1.type': unknown channel type 'ring_bufer' — use one of: ring_buffer, "
            "perf_buffer, pipe (did you mean 'ring_buffer'?)\n"
            "t.yaml:15:17: field 'spec.channels.c1.storage.kafak': unknown output 'kafak' — use one of: kafka, tmpfs, "
            "file, tsdb, stdout, prometheus, clickhouse (did you mean 'kafka'?)\n"
            "t.yaml:15:36: field 'spec.channels.c1.storage.file': expected true or false, got 'maybe'");
}

TEST(SpecErrors, KindMustBeEbpfprogram) {
  EXPECT_EQ(errors_of(std::string("kind: Deployment\nname: x\n") + kMinimalBody),
            "t.yaml:1:7: field 'kind': unsupported kind 'Deployment' — this agent reads 'kind: ebpfprogram' documents");
}

TEST(SpecErrors, NameCharset) {
  auto name_errors = [](std::string_view name) {
    auto specs = parse_test_yaml(fmt::format("kind: ebpfprogram\nname: '{}'\n{}", name, kMinimalBody));
    return specs ? std::string() : specs.error().message;
  };
  const std::string longest(64, 'a');
  for (std::string good : {std::string("oom"), std::string("tcp_connlat-2.1"), std::string("A"), std::string("x.y"), longest})
    EXPECT_EQ(name_errors(good), "") << good;
  for (std::string bad : {std::string(""), std::string(".hidden"), std::string("a/b"), std::string("../x"),
                          std::string("a b"), std::string("ünï"), std::string("a:b"), longest + "a"})
    EXPECT_THAT(name_errors(bad), HasSubstr("t.yaml:2:7: field 'name': spec name '")) << bad;
  EXPECT_THAT(errors_of("kind: ebpfprogram\nname: t\nspec:\n  programs:\n    - {name: a/b, path: x.o, type: ebpf_object}\n"),
              HasSubstr("t.yaml:5:14: field 'spec.programs[0].name': program name 'a/b' is not allowed"));
  EXPECT_THAT(errors_of("kind: ebpfprogram\nname: x\nspec:\n  programs: [{name: p, path: p.o, type: ebpf_object}]\n"
                        "  channels:\n    ../up: {type: ring_buffer}\n"),
              HasSubstr("t.yaml:6:5: field 'spec.channels.../up': channel name '../up' is not allowed"));
}

TEST(SpecErrors, Sha256MustBe64HexDigits) {
  std::string digest(64, 'A');
  auto specs = parse_test_yaml(program_yaml("path: x.o") + "      sha256: " + digest + "\n");
  ASSERT_TRUE(specs) << specs.error().message;
  EXPECT_EQ(specs->at(0).programs.at(0).sha256, std::string(64, 'a'));
  EXPECT_EQ(errors_of(program_yaml("path: x.o") + "      sha256: " + digest.substr(1) + "g\n"),
            "t.yaml:8:15: field 'spec.programs[0].sha256': expected 64 hex digits (as printed by `sha256sum FILE`), got '" +
                digest.substr(1) + "g'");
  EXPECT_THAT(errors_of(program_yaml("path: x.o") + "      sha256: " + digest + "0\n"), HasSubstr("expected 64 hex digits"));
}

TEST(SpecErrors, BpftraceNeedsExactlyOneSource) {
  const std::string head = "kind: ebpfprogram\nname: t\nspec:\n  programs:\n    - name: bt\n      type: bpftrace\n";
  EXPECT_EQ(errors_of(head),
            "t.yaml:5:7: field 'spec.programs[0].path': missing — a bpftrace program needs its script: add 'path: ...' "
            "(a .bt file) or 'properties.src'");
  EXPECT_EQ(errors_of(head + "      path: a.bt\n      properties: {src: 'BEGIN {}'}\n"),
            "t.yaml:7:13: field 'spec.programs[0].path': a bpftrace program takes its script from 'path' or "
            "'properties.src', not both — remove one");
  EXPECT_EQ(errors_of(head + "      properties: {src: ''}\n      sha256: " + std::string(64, '0') + "\n"),
            "t.yaml:5:7: field 'spec.programs[0].path': missing — a bpftrace program needs its script: add 'path: ...' "
            "(a .bt file) or 'properties.src'\n"
            "t.yaml:7:25: field 'spec.programs[0].properties.src': is empty — write the bpftrace program here, or remove "
            "'src' and give 'path'\n"
            "t.yaml:8:15: field 'spec.programs[0].sha256': sha256 pins the file named by 'path', and this program has no "
            "path — remove sha256");
}

TEST(SpecErrors, EbpfObjectProperties) {
  // `deep` nests 65 lists: its innermost value (column 113) is one level too deep.
  const std::string deep = std::string(65, '[') + "1" + std::string(65, ']');
  std::string errors = errors_of(R"(
kind: ebpfprogram
name: t
spec:
  programs:
    - name: obj
      type: ebpf_object
      path: obj.bpf.o
      properties:
        progs: "a,,b|1c, a"
        variables: {ok: 1, not-ident: 2, deep: )" + deep + R"(}
        maps:
          counts: {max_entries: 0}
          table: {max_entries: -1, entries: [{key: 1}, [1, 2]]}
        attach:
          a: {pid: -2, retprobe: maybe, offset: 1.5, interface: "eth0/1", mode: natve, cgroup: relative/x}
          b: {perf_event: {type: hw, config: cpu-cycles, frequency: 99, period: 1000}}
          c: {perf_event: {config: ''}}
)");
  EXPECT_EQ(errors,
            "t.yaml:9:16: field 'spec.programs[0].properties.progs': an empty program name — write names separated by "
            "',' and alternatives by '|'\n"
            "t.yaml:9:16: field 'spec.programs[0].properties.progs': '1c' is not a BPF program name (the C function's "
            "name)\n"
            "t.yaml:9:16: field 'spec.programs[0].properties.progs': 'a' is listed twice — keep one\n"
            "t.yaml:10:28: field 'spec.programs[0].properties.variables.not-ident': 'not-ident' is not a global variable "
            "name (a C identifier)\n"
            "t.yaml:10:113: field "
            "'spec.programs[0].properties.variables.deep[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]"
            "[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]"
            "[0][0][0][0][0][0][0][0][0]': nested deeper than 64 levels — flatten the value\n"
            "t.yaml:12:33: field 'spec.programs[0].properties.maps.counts.max_entries': a map needs at least 1 entry — "
            "give a positive max_entries\n"
            "t.yaml:13:32: field 'spec.programs[0].properties.maps.table.max_entries': expected an integer from 0 to "
            "4294967295, got '-1'\n"
            "t.yaml:13:46: field 'spec.programs[0].properties.maps.table.entries[0].value': missing — a map entry needs "
            "both 'key' and 'value'\n"
            "t.yaml:13:56: field 'spec.programs[0].properties.maps.table.entries[1]': expected a map (indented 'key: "
            "value' lines), got a list\n"
            "t.yaml:15:20: field 'spec.programs[0].properties.attach.a.pid': expected an integer from -1 to 2147483647, "
            "got '-2'\n"
            "t.yaml:15:34: field 'spec.programs[0].properties.attach.a.retprobe': expected true or false, got 'maybe'\n"
            "t.yaml:15:49: field 'spec.programs[0].properties.attach.a.offset': expected an integer from 0 to "
            "18446744073709551615, got '1.5'\n"
            "t.yaml:15:65: field 'spec.programs[0].properties.attach.a.interface': 'eth0/1' is not a network interface "
            "name (1 to 15 characters, no '/', ':' or spaces) — see `ip link`\n"
            "t.yaml:15:81: field 'spec.programs[0].properties.attach.a.mode': unknown attach mode 'natve' (XDP: generic, "
            "native, offload, skb, drv; TC: ingress, egress) — use one of: generic, native, offload, skb, drv, ingress, "
            "egress (did you mean 'native'?)\n"
            "t.yaml:15:96: field 'spec.programs[0].properties.attach.a.cgroup': the cgroup must be an absolute path "
            "(starting with '/'), e.g. /sys/fs/cgroup/unified/app.slice\n"
            "t.yaml:16:34: field 'spec.programs[0].properties.attach.b.perf_event.type': unknown perf event type 'hw' — "
            "use one of: software, hardware\n"
            "t.yaml:16:81: field 'spec.programs[0].properties.attach.b.perf_event.period': give 'frequency' (samples per "
            "second) or 'period' (events per sample), not both\n"
            "t.yaml:17:27: field 'spec.programs[0].properties.attach.c.perf_event.type': missing — add 'type: software' "
            "(cpu-clock, task-clock, ...) or 'type: hardware'\n"
            "t.yaml:17:27: field 'spec.programs[0].properties.attach.c.perf_event.frequency': missing — add 'frequency: "
            "N' (samples per second) or 'period: N' (events per sample)\n"
            "t.yaml:17:36: field 'spec.programs[0].properties.attach.c.perf_event.config': is empty — name the event, "
            "e.g. cpu-clock");
}

TEST(SpecErrors, ChannelsAndEvents) {
  std::string errors = errors_of(R"(
kind: ebpfprogram
name: t
spec:
  programs:
    - {name: obj, path: obj.bpf.o, type: ebpf_object}
    - name: user
      path: user.so
      type: user_so
      properties: {functions: [{name: process}, {name: summarize}]}
      channels:
        shared: {type: ring_buffer}
  channels:
    shared: {type: perf_buffer, program: user}
    pipe_out: {type: pipe, pinpath: relative/fifo}
    fifo2: {type: pipe}
    other: {type: ring_buffer, program: ob, struct: struct event}
  events:
    - {name: usr, target_processor: process}
    - {name: obj}
    - {name: user, target_processor: summarise, hash: hsah}
    - {name: builtin, target_processor: spec_test_procesor}
)");
  EXPECT_EQ(errors,
            "t.yaml:11:9: field 'spec.programs[1].channels.shared': a channel named 'shared' is already declared at line "
            "13 — channel names must be unique in a spec\n"
            "t.yaml:13:42: field 'spec.channels.shared.program': 'user' is a user_so program, and channels are fed by "
            "ebpf_object or bpftrace programs — use one of: obj\n"
            "t.yaml:14:37: field 'spec.channels.pipe_out.pinpath': pinpath must be an absolute path (starting with '/')\n"
            "t.yaml:15:5: field 'spec.channels.fifo2': a pipe channel needs 'pinpath' (the FIFO's absolute path) when "
            "the spec has no bpftrace programs, not exactly one — add 'pinpath: /var/lib/ebpf-agent/...'\n"
            "t.yaml:16:41: field 'spec.channels.other.program': no program named 'ob' in this spec — use one of: obj "
            "(did you mean 'obj'?)\n"
            "t.yaml:16:53: field 'spec.channels.other.struct': 'struct event' is not a C struct name — write only the "
            "name, e.g. 'struct: event'\n"
            "t.yaml:18:14: field 'spec.events[0].name': no user_so program named 'usr' in this spec — use one of: user, "
            "builtin (did you mean 'user'?)\n"
            "t.yaml:19:14: field 'spec.events[1].name': 'obj' is a ebpf_object program; events go to a user_so program "
            "or 'builtin' — use one of: user, builtin\n"
            "t.yaml:20:38: field 'spec.events[2].target_processor': 'summarise' is not one of the functions of user_so "
            "program 'user' — use one of: process, summarize (did you mean 'summarize'?)\n"
            "t.yaml:20:55: field 'spec.events[2].hash': unknown dispatch strategy 'hsah' — use one of: hash, round_robin "
            "(did you mean 'hash'?)\n"
            "t.yaml:21:41: field 'spec.events[3].target_processor': no built-in processor named 'spec_test_procesor' — "
            "use one of: " + builtin_names() + " (did you mean 'spec_test_processor'?)");
}

TEST(SpecErrors, BuiltinDefaultTargetIsChecked) {
  std::string errors = errors_of(std::string("kind: ebpfprogram\nname: t\n") + kMinimalBody +
                                 "  channels:\n    c: {type: ring_buffer, events: [{name: builtin}]}\n");
  EXPECT_THAT(errors, HasSubstr("t.yaml:7:37: field 'spec.channels.c.events[0].target_processor': no built-in processor "
                                "named 'process' — use one of: "));
  EXPECT_THAT(errors, HasSubstr("spec_test_processor"));
}

TEST(SpecErrors, TwoPipesCannotShareTheBpftraceDefault) {
  EXPECT_EQ(errors_of(R"(
kind: ebpfprogram
name: t
spec:
  programs:
    - {name: bt, type: bpftrace, path: x.bt}
  channels:
    a: {type: pipe}
    b: {type: pipe}
    c: {type: pipe, pinpath: /run/x}
    d: {type: perf_buffer, pinpath: /run/x}
)"),
            "t.yaml:8:5: field 'spec.channels.b': the channel 'a' already uses the bpftrace program's default pipe — add "
            "'pinpath' to one of them\n"
            "t.yaml:10:5: field 'spec.channels.d': pinpath '/run/x' is already used by the channel at line 9 — give "
            "each channel its own");
}

TEST(SpecErrors, DuplicateKeysAndSpecNames) {
  EXPECT_EQ(errors_of(R"(
kind: ebpfprogram
name: t
name: u
spec:
  programs:
    - {name: obj, path: obj.bpf.o, type: ebpf_object, type: user_so}
---
kind: ebpfprogram
name: t
)" + std::string(kMinimalBody)),
            "t.yaml:3:1: field 'name': duplicate field 'name' (first written at line 2) — keep only one\n"
            "t.yaml:6:55: field 'spec.programs[0].type': duplicate field 'type' (first written at line 6) — keep only "
            "one\n"
            "t.yaml:9:7: field 'name': a spec named 't' is already defined at line 2 — spec names must be unique");
}

TEST(SpecErrors, PinpathRules) {
  auto pinpath_errors = [](std::string_view pinpath) {
    return errors_of(fmt::format("kind: ebpfprogram\nname: t\n{}  channels:\n    c: {{type: pipe, pinpath: '{}'}}\n",
                                 kMinimalBody, pinpath));
  };
  EXPECT_THAT(pinpath_errors("/var/lib/../etc/x"), HasSubstr("t.yaml:7:30: field 'spec.channels.c.pinpath': pinpath "
                                                             "must not contain '..' — write the resolved path"));
  EXPECT_THAT(pinpath_errors("/var/lib/"), HasSubstr("names a directory"));
  EXPECT_THAT(pinpath_errors("fifo"), HasSubstr("must be an absolute path"));
}

TEST(SpecErrors, ValuesEchoedSafely) {
  std::string errors = errors_of(program_yaml("path: \"bad\\x01\\nvalue\"") + "      sha256: \"" + std::string(300, 'z') + "\"\n");
  EXPECT_THAT(errors, HasSubstr("the path contains control characters"));
  EXPECT_THAT(errors, HasSubstr("got '" + std::string(80, 'z') + "...'"));
  EXPECT_THAT(errors, Not(HasSubstr(std::string(81, 'z'))));
}

}  // namespace
}  // namespace ea
