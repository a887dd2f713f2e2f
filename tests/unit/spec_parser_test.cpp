// The spec parser on the talk's shapes and the realistic fixtures in tests/fixtures/specs/.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "pipeline/processor.h"
#include "spec/parser.h"
#include "spec_test_util.h"

namespace ea {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kFixtures = std::string(EA_SOURCE_DIR) + "/tests/fixtures/specs";

Spec parse_fixture(const std::string& name, size_t index = 0) {
  auto specs = parse_spec_file(kFixtures + "/" + name);
  if (!specs) {
    ADD_FAILURE() << specs.error().message;
    return {};
  }
  EXPECT_GT(specs->size(), index);
  return specs->size() > index ? (*specs)[index] : Spec{};
}

TEST(SpecFixtures, OomTalkShapeHasSpecLevelEvents) {
  Spec spec = parse_fixture("oom.yaml");
  EXPECT_EQ(spec.kind, "ebpfprogram");
  EXPECT_EQ(spec.name, "oom");
  EXPECT_EQ(spec.description, "oom");
  EXPECT_EQ(spec.version, "0.1");
  EXPECT_EQ(spec.author, "ebpfprogram");
  EXPECT_EQ(spec.source_file, kFixtures + "/oom.yaml");
  EXPECT_EQ(spec.base_dir, kFixtures);
  EXPECT_THAT(spec.yaml_text, HasSubstr("target_processor: process"));

  ASSERT_EQ(spec.programs.size(), 2u);
  const ProgramSpec& oom = spec.programs[0];
  EXPECT_EQ(oom.name, "oom");
  EXPECT_EQ(oom.type, ProgramType::EbpfObject);
  EXPECT_EQ(oom.path, "file:///root/ebpf-agent/output/oom.bpf.o");
  EXPECT_EQ(oom.sha256, "");
  EXPECT_EQ(oom.pos.str(), kFixtures + "/oom.yaml:10:7");
  const auto& props = std::get<EbpfObjectProps>(oom.props);
  EXPECT_FALSE(props.progs.has_value());
  EXPECT_TRUE(props.variables.empty());

  const ProgramSpec& user = spec.programs[1];
  EXPECT_EQ(user.name, "oom_user");
  EXPECT_EQ(user.type, ProgramType::UserSo);
  EXPECT_EQ(user.path, "file:///root/ebpf-agent/output/oom.so");
  const auto& functions = std::get<UserSoProps>(user.props).functions;
  ASSERT_EQ(functions.size(), 1u);
  EXPECT_EQ(functions[0].name, "process");
  EXPECT_EQ(functions[0].pos.line, 18);
  EXPECT_EQ(functions[0].pos.column, 13);

  ASSERT_EQ(spec.channels.size(), 1u);
  const ChannelSpec& channel = spec.channels[0];
  EXPECT_EQ(channel.name, "oom_events");
  EXPECT_EQ(channel.type, ChannelType::RingBuffer);
  EXPECT_EQ(channel.pinpath, "");
  EXPECT_TRUE(channel.events.empty());
  EXPECT_FALSE(channel.storage.has_value());
  EXPECT_EQ(channel.pos.line, 20);
  EXPECT_EQ(channel.pos.column, 5);

  ASSERT_EQ(spec.events.size(), 1u);
  const EventSpec& event = spec.events[0];
  EXPECT_EQ(event.name, "oom_user");
  EXPECT_EQ(event.dispatch, DispatchStrategy::Hash);
  EXPECT_EQ(event.target_processor, "process");
  EXPECT_EQ(event.key, "");
  EXPECT_EQ(event.pos.line, 23);
  EXPECT_EQ(event.pos.column, 7);
  EXPECT_EQ(&spec.events_for(channel), &spec.events);
  EXPECT_EQ(spec.find_program("oom_user"), &spec.programs[1]);
  EXPECT_EQ(spec.find_channel("oom_events"), &spec.channels[0]);
  EXPECT_EQ(spec.find_program("nope"), nullptr);
}

TEST(SpecFixtures, ChannelShapeNestsEventsAndStorage) {
  Spec spec = parse_fixture("tcp_tracer.yaml");
  EXPECT_EQ(spec.version, "1.2");
  ASSERT_EQ(spec.programs.size(), 2u);

  const ProgramSpec& tracer = spec.programs[0];
  EXPECT_EQ(tracer.path, "ftp://files.example.com/probes/tcp_tracer.bpf.o");
  EXPECT_EQ(tracer.sha256, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  const auto& props = std::get<EbpfObjectProps>(tracer.props);
  ASSERT_TRUE(props.progs.has_value());
  EXPECT_THAT(*props.progs, ElementsAre("handle_connect", "handle_state|handle_state_fallback"));
  ASSERT_EQ(props.variables.size(), 3u);
  EXPECT_EQ(props.variables[0].name, "min_latency_us");
  EXPECT_EQ(props.variables[0].value, Value(100));
  EXPECT_EQ(props.variables[1].name, "target_comm");
  EXPECT_EQ(props.variables[1].value, Value("curl"));
  EXPECT_EQ(props.variables[2].value, Value::parse("[80, 443]"));
  EXPECT_EQ(props.variables[2].pos.line, 19);
  ASSERT_EQ(props.maps.size(), 1u);
  const MapInit& map = props.maps[0];
  EXPECT_EQ(map.name, "ports_filter");
  EXPECT_EQ(map.max_entries, 1024u);
  ASSERT_EQ(map.entries.size(), 2u);
  EXPECT_EQ(map.entries[0].key, Value(443));
  EXPECT_EQ(map.entries[0].value, Value(1));
  EXPECT_EQ(map.entries[1].key, Value(80));
  EXPECT_EQ(map.entries[1].pos.line, 26);

  const auto& user = std::get<UserSoProps>(spec.programs[1].props);
  EXPECT_EQ(user.initfile, "conf/tcp_connlat.ini");
  EXPECT_EQ(user.config, Value::parse(R"({"threshold_ms": 5, "labels": {"team": "net"}})"));
  EXPECT_TRUE(user.functions.empty());

  ASSERT_EQ(spec.channels.size(), 1u);
  const ChannelSpec& channel = spec.channels[0];
  EXPECT_EQ(channel.name, "tcp_tracer_events");
  EXPECT_EQ(channel.program, "tcp_tracer");
  EXPECT_EQ(channel.record_struct, "event");
  ASSERT_EQ(channel.events.size(), 1u);
  EXPECT_EQ(channel.events[0].name, "tcp_connlat_user");
  EXPECT_EQ(channel.events[0].dispatch, DispatchStrategy::Hash);
  EXPECT_EQ(channel.events[0].target_processor, "process");
  ASSERT_TRUE(channel.storage.has_value());
  EXPECT_EQ(channel.storage->outputs, (std::map<std::string, bool>{{"kafka", true}, {"tmpfs", true}}));
  EXPECT_TRUE(spec.events.empty());
  EXPECT_EQ(&spec.events_for(channel), &channel.events);
}

TEST(SpecFixtures, BpftraceSlideNestsChannelsInAProgram) {
  Spec spec = parse_fixture("bpftrace_openfile.yaml");
  EXPECT_EQ(spec.name, "test_bpftrace");
  EXPECT_EQ(spec.description, "");
  EXPECT_EQ(spec.version, "0.1");
  ASSERT_EQ(spec.programs.size(), 2u);
  EXPECT_EQ(spec.programs[0].type, ProgramType::Bpftrace);
  EXPECT_EQ(spec.programs[0].path, "");
  EXPECT_THAT(std::get<BpftraceProps>(spec.programs[0].props).src, HasSubstr("sys_enter_openat"));
  EXPECT_EQ(spec.programs[1].path, "file:///root/ebpf-agent/output/bpftrace_default.so");

  ASSERT_EQ(spec.channels.size(), 1u);
  const ChannelSpec& channel = spec.channels[0];
  EXPECT_EQ(channel.name, "bpftrace_channel");
  EXPECT_EQ(channel.type, ChannelType::Pipe);
  EXPECT_EQ(channel.pinpath, "/var/lib/ebpf-agent/bpftrace/test_bpftrace.bpftrace_src/output");
  ASSERT_EQ(channel.events.size(), 1u);
  EXPECT_EQ(channel.events[0].name, "bpftrace_user_so");
  EXPECT_EQ(channel.events[0].target_processor, "process");
  EXPECT_TRUE(spec.events.empty());
}

TEST(SpecFixtures, AttachOptions) {
  Spec spec = parse_fixture("attach_options.yaml");
  EXPECT_EQ(spec.version, "2");
  const auto& props = std::get<EbpfObjectProps>(spec.programs.at(0).props);
  EXPECT_THAT(*props.progs, ElementsAre("ssl_read_enter", "ssl_read_exit", "on_cpu_sample",
                                        "xdp_pass|xdp_pass_generic", "tc_count"));
  ASSERT_EQ(props.attach.size(), 5u);
  const AttachOptions& enter = props.attach[0];
  EXPECT_EQ(enter.prog, "ssl_read_enter");
  EXPECT_EQ(enter.binary, std::vector<std::string>{"/usr/lib/x86_64-linux-gnu/libssl.so.3"});
  EXPECT_EQ(enter.symbol, "SSL_read");
  EXPECT_EQ(enter.pid, 4242);
  EXPECT_FALSE(enter.retprobe);
  EXPECT_FALSE(enter.offset.has_value());
  const AttachOptions& exit = props.attach[1];
  EXPECT_EQ(exit.offset, 0x10u);
  EXPECT_TRUE(exit.retprobe);
  EXPECT_EQ(exit.pid, -1);
  const AttachOptions& sample = props.attach[2];
  EXPECT_EQ(sample.perf_type, "software");
  EXPECT_EQ(sample.perf_config, "cpu-clock");
  EXPECT_EQ(sample.frequency, 99u);
  EXPECT_EQ(sample.period, 0u);
  EXPECT_EQ(props.attach[3].interface, "veth0");
  EXPECT_EQ(props.attach[3].mode, "generic");
  EXPECT_EQ(props.attach[4].mode, "egress");
  EXPECT_EQ(spec.channels.at(0).type, ChannelType::PerfBuffer);
  EXPECT_EQ(spec.channels.at(0).pinpath, "/sys/fs/bpf/attach_options/samples");
}

TEST(SpecFixtures, MultiDocumentFile) {
  auto specs = parse_spec_file(kFixtures + "/multi.yaml");
  ASSERT_TRUE(specs) << specs.error().message;
  ASSERT_EQ(specs->size(), 2u);
  const Spec& first = (*specs)[0];
  const Spec& second = (*specs)[1];
  EXPECT_EQ(first.name, "first");
  EXPECT_EQ(first.programs.at(0).name, "one");
  EXPECT_EQ(first.programs.at(0).pos.line, 8);
  EXPECT_EQ(second.name, "second");
  EXPECT_EQ(second.programs.at(0).pos.line, 15);
  EXPECT_THAT(std::get<BpftraceProps>(second.programs.at(0).props).args, ElementsAre("eth0", "5", "x y"));
  // Each spec keeps only its own document's text.
  EXPECT_THAT(first.yaml_text, HasSubstr("name: first"));
  EXPECT_THAT(first.yaml_text, Not(HasSubstr("name: second")));
  EXPECT_THAT(second.yaml_text, HasSubstr("name: second"));
  EXPECT_THAT(second.yaml_text, Not(HasSubstr("name: first")));
}

TEST(SpecParser, ProgramLevelEventsWithoutChannelsGoToTheSpecLevel) {
  auto specs = parse_test_yaml(R"(
kind: ebpfprogram
name: nested
spec:
  programs:
    - name: obj
      path: obj.bpf.o
      type: ebpf_object
    - name: user
      path: user.so
      type: user_so
      events:
        - {name: user, hash: round_robin, key: pid}
  channels:
    records: {type: ring_buffer}
)");
  ASSERT_TRUE(specs) << specs.error().message;
  const Spec& spec = specs->at(0);
  ASSERT_EQ(spec.events.size(), 1u);
  EXPECT_EQ(spec.events[0].dispatch, DispatchStrategy::RoundRobin);
  EXPECT_EQ(spec.events[0].key, "pid");
  EXPECT_EQ(spec.events[0].target_processor, "process");
  EXPECT_EQ(spec.events_for(spec.channels.at(0)).size(), 1u);
}

TEST(SpecParser, VersionIsKeptAsWritten) {
  for (auto [written, kept] : {std::pair{"0.10", "0.10"}, {"'0.1'", "0.1"}, {"3", "3"}, {"1.0.2", "1.0.2"}}) {
    auto specs = parse_test_yaml(fmt::format("kind: ebpfprogram\nname: v\nversion: {}\n{}", written, kMinimalBody));
    ASSERT_TRUE(specs) << specs.error().message;
    EXPECT_EQ(specs->at(0).version, kept) << written;
  }
}

TEST(SpecParser, ProgsAsStringOrListAreTheSame) {
  auto progs_of = [](std::string_view progs) -> std::vector<std::string> {
    auto specs = parse_test_yaml(fmt::format(R"(
kind: ebpfprogram
name: p
spec:
  programs:
    - name: obj
      path: obj.bpf.o
      type: ebpf_object
      properties:
        progs: {}
)",
                                             progs));
    if (!specs) {
      ADD_FAILURE() << specs.error().message;
      return {};
    }
    return std::get<EbpfObjectProps>(specs->at(0).programs.at(0).props).progs.value();
  };
  std::vector<std::string> expected{"kprobe_oom_kill_process|tp_btf_mark_victim", "other"};
  EXPECT_EQ(progs_of("\"kprobe_oom_kill_process|tp_btf_mark_victim, other\""), expected);
  EXPECT_EQ(progs_of("[kprobe_oom_kill_process | tp_btf_mark_victim, other]"), expected);
  EXPECT_EQ(progs_of("\"kprobe_oom_kill_process |tp_btf_mark_victim,other\""), expected);
  EXPECT_EQ(progs_of("single"), std::vector<std::string>{"single"});
}

TEST(SpecParser, VariableValuesKeepTheirYamlTypes) {
  auto specs = parse_test_yaml(R"(
kind: ebpfprogram
name: vars
spec:
  programs:
    - name: obj
      path: obj.bpf.o
      type: ebpf_object
      properties:
        variables:
          count: 10
          negative: -3
          hex: 0xff
          big: 18446744073709551615
          ratio: 0.5
          enabled: true
          quoted_number: "10"
          name: nginx
          bytes: [0x01, 0x02]
          nested: {a: [1, {b: null}]}
          empty:
)");
  ASSERT_TRUE(specs) << specs.error().message;
  Value values = Value::object();
  for (const auto& variable : std::get<EbpfObjectProps>(specs->at(0).programs.at(0).props).variables)
    values[variable.name] = variable.value;
  EXPECT_EQ(values, Value::parse(R"({"count": 10, "negative": -3, "hex": 255, "big": 18446744073709551615,
    "ratio": 0.5, "enabled": true, "quoted_number": "10", "name": "nginx", "bytes": [1, 2],
    "nested": {"a": [1, {"b": null}]}, "empty": null})"));
  EXPECT_TRUE(values["big"].is_number_unsigned());
}

TEST(SpecParser, PathSchemes) {
  for (std::string_view path : {"file:///opt/p.bpf.o", "file://p.bpf.o", "http://h/p.bpf.o", "https://h:8443/p.bpf.o",
                                "ftp://h/p.bpf.o", "/opt/p.bpf.o", "relative/p.bpf.o", "p.bpf.o"}) {
    auto specs = parse_test_yaml(program_yaml(fmt::format("path: '{}'", path)));
    ASSERT_TRUE(specs) << path << ": " << specs.error().message;
    EXPECT_EQ(specs->at(0).programs.at(0).path, path);
  }
}

TEST(SpecParser, PipeWithoutPinpathTakesTheSingleBpftraceProgramsDefault) {
  auto specs = parse_test_yaml(R"(
kind: ebpfprogram
name: bt
spec:
  programs:
    - name: script
      type: bpftrace
      properties: {src: 'BEGIN { printf("hi\n"); }', args: [1, two]}
  channels:
    out:
      type: pipe
      events:
        - {name: builtin, target_processor: spec_test_processor}
)");
  ASSERT_TRUE(specs) << specs.error().message;
  EXPECT_EQ(specs->at(0).channels.at(0).pinpath, "");
  EXPECT_EQ(specs->at(0).channels.at(0).events.at(0).target_processor, "spec_test_processor");
  EXPECT_THAT(std::get<BpftraceProps>(specs->at(0).programs.at(0).props).args, ElementsAre("1", "two"));
}

TEST(SpecParser, InlineSourceHasNoBaseDirOrFileOfItsOwn) {
  auto specs = parse_specs(std::string("kind: ebpfprogram\nname: x\n") + kMinimalBody, "<inline>", "/srv/specs");
  ASSERT_TRUE(specs) << specs.error().message;
  EXPECT_EQ(specs->at(0).source_file, "<inline>");
  EXPECT_EQ(specs->at(0).base_dir, "/srv/specs");
  EXPECT_EQ(specs->at(0).programs.at(0).pos.str(), "<inline>:5:7");
}

// The specs the agent ships (examples and the embedded default) must always validate.
TEST(SpecShipped, EveryShippedSpecParses) {
  size_t checked = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(std::string(EA_SOURCE_DIR) + "/specs")) {
    if (entry.path().extension() != ".yaml") continue;
    auto specs = parse_spec_file(entry.path().string());
    EXPECT_TRUE(specs) << specs.error().message;
    ++checked;
  }
  EXPECT_GT(checked, 0u);
}

}  // namespace
}  // namespace ea
