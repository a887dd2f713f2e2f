// ebpf_object against the real kernel (root): variables and map entries as the program sees
// them, verifier rejections, hook alternatives and missing hooks, and every attach kind.
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "loader/ebpf_object.h"
#include "loader/kernel_features.h"
#include "pipeline/btf_decoder.h"

// A uprobe target: not inlined, not static, so it has its own symbol.
extern "C" __attribute__((noinline)) int ea_uprobe_target(int value) {
  asm volatile("" ::: "memory");
  return value + 1;
}

namespace ea {
namespace {

namespace fs = std::filesystem;

#define REQUIRE_ROOT() \
  if (geteuid() != 0) GTEST_SKIP() << "needs root: loads BPF programs into the kernel"

const SourcePos kProgramPos{"t.yaml", 5, 7};

Result<std::unique_ptr<EbpfObject>> open_fixture(const std::string& fixture, EbpfObjectProps props) {
  ProgramSpec program;
  program.name = "t_" + fixture;
  program.type = ProgramType::EbpfObject;
  program.path = fixture + ".bpf.o";
  program.props = std::move(props);
  program.pos = kProgramPos;
  auto file = fetch_program_file(EA_BUILD_DIR "/tests/bpf/" + fixture + ".bpf.o", "", "", program.pos);
  if (!file) return std::unexpected(file.error());
  return EbpfObject::open(program, std::move(*file));
}

std::string error_of(const Result<std::unique_ptr<EbpfObject>>& object) {
  EXPECT_FALSE(object) << "opened";
  return object ? std::string() : object.error().message;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Reads global `name` from the kernel's copy of its section map (not libbpf's memory).
template <class T>
T kernel_variable(const EbpfObject& object, const std::string& section, const char* name) {
  const struct btf* btf = object.btf();
  int sec_id = btf__find_by_name_kind(btf, section.c_str(), BTF_KIND_DATASEC);
  EXPECT_GT(sec_id, 0) << section;
  const btf_type* datasec = btf__type_by_id(btf, static_cast<uint32_t>(sec_id));
  const btf_var_secinfo* infos = btf_var_secinfos(datasec);
  bpf_map* map = bpf_object__find_map_by_name(object.object(), section.c_str());
  EXPECT_NE(map, nullptr) << section;
  std::vector<char> value(bpf_map__value_size(map));
  uint32_t key = 0;
  EXPECT_EQ(bpf_map_lookup_elem(bpf_map__fd(map), &key, value.data()), 0);
  for (uint16_t i = 0; i < btf_vlen(datasec); ++i) {
    const btf_type* var = btf__type_by_id(btf, infos[i].type);
    if (std::string_view(btf__name_by_offset(btf, var->name_off)) != name) continue;
    EXPECT_EQ(infos[i].size, sizeof(T)) << name;
    T result;
    std::memcpy(&result, value.data() + infos[i].offset, sizeof(T));
    return result;
  }
  ADD_FAILURE() << "no variable " << name << " in " << section;
  return T{};
}

// Mirror of the fixture's `struct observed`, filled by probe_config.
struct Observed {
  uint32_t threshold;
  int64_t offset_ns;
  char comm[16];
  uint32_t limits_max;
  uint16_t limits_port;
  uint8_t level;
  int8_t delta;
  uint64_t conn_hits;
  uint8_t mode;
  uint8_t verbose;
};
struct ConnKey {
  uint32_t addr;
  uint16_t port;
  uint16_t proto;
};
struct ConnValue {
  uint64_t hits;
  char label[8];
};

EbpfObjectProps configured_types() {
  EbpfObjectProps props;
  props.progs = std::vector<std::string>{"probe_config"};
  props.variables = {
      {"threshold", 42, {}},
      {"offset_ns", -7, {}},
      {"target_comm", "nginx", {}},
      {"limits", Value::parse(R"({"max": 9, "port": 8080, "level": 6, "delta": -2})"), {}},
      {"mode", "MODE_FAST", {}},
      {"verbose", true, {}},
      {"data_counter", 77, {}},
      {"bss_value", 5, {}},
  };
  MapInit conns{.name = "conns", .max_entries = 32};
  conns.entries.push_back(
      {Value::parse(R"({"addr": 2130706433, "port": 80, "proto": 6})"), Value::parse(R"({"hits": 1234, "label": "lo"})"), {}});
  MapInit untyped{.name = "untyped"};
  untyped.entries.push_back({1, "0x0807060504030201", {}});
  MapInit per_cpu{.name = "per_cpu_totals"};
  per_cpu.entries.push_back({1, 9, {}});
  props.maps = {conns, untyped, per_cpu};
  return props;
}

TEST(EbpfObject, VariablesAreWhatTheProgramSees) {
  REQUIRE_ROOT();
  auto object = open_fixture("obj_types", configured_types());
  ASSERT_TRUE(object) << object.error().message;
  auto loaded = (*object)->load();
  ASSERT_TRUE(loaded) << loaded.error().message;

  char packet[64] = {};
  LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = packet, .data_size_in = sizeof(packet), .repeat = 1);
  bpf_program* probe = bpf_object__find_program_by_name((*object)->object(), "probe_config");
  ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(probe), &run), 0) << std::strerror(errno);
  EXPECT_EQ(run.retval, static_cast<uint32_t>(XDP_PASS));

  Observed observed = kernel_variable<Observed>(**object, ".bss", "observed");
  EXPECT_EQ(observed.threshold, 42u);
  EXPECT_EQ(observed.offset_ns, -7);
  EXPECT_STREQ(observed.comm, "nginx");
  EXPECT_EQ(observed.limits_max, 9u);
  EXPECT_EQ(observed.limits_port, 8080);
  EXPECT_EQ(observed.level, 6);
  EXPECT_EQ(observed.delta, -2);
  EXPECT_EQ(observed.mode, 1);
  EXPECT_EQ(observed.verbose, 1);
  EXPECT_EQ(observed.conn_hits, 1234u) << "the `maps` entry was written before the program ran";

  EXPECT_EQ(kernel_variable<uint32_t>(**object, ".rodata", "threshold"), 42u);
  EXPECT_EQ(kernel_variable<uint64_t>(**object, ".data", "data_counter"), 77u);
  EXPECT_EQ(kernel_variable<uint32_t>(**object, ".bss", "bss_value"), 5u);

  // After load, .data is the live map and can still be tuned; .rodata is frozen.
  uint64_t counter = 91;
  ASSERT_TRUE((*object)->set_variable("data_counter", std::as_bytes(std::span(&counter, 1))));
  EXPECT_EQ(kernel_variable<uint64_t>(**object, ".data", "data_counter"), 91u);
  uint32_t threshold = 1;
  auto frozen = (*object)->set_variable("threshold", std::as_bytes(std::span(&threshold, 1)));
  ASSERT_FALSE(frozen);
  EXPECT_EQ(frozen.error().message,
            "program 't_obj_types': variable 'threshold' is read-only in the kernel once loaded (const volatile, "
            ".rodata): set it before load");
}

TEST(EbpfObject, MapEntriesAndSizesReachTheKernel) {
  REQUIRE_ROOT();
  auto object = open_fixture("obj_types", configured_types());
  ASSERT_TRUE(object) << object.error().message;
  ASSERT_TRUE((*object)->load());

  int conns = (*object)->map_fd("conns");
  ASSERT_GE(conns, 0);
  bpf_map_info info{};
  uint32_t info_length = sizeof(info);
  ASSERT_EQ(bpf_obj_get_info_by_fd(conns, &info, &info_length), 0);
  EXPECT_EQ(info.max_entries, 32u);
  EXPECT_EQ((*object)->map_type("conns"), BPF_MAP_TYPE_HASH);
  EXPECT_TRUE((*object)->has_map("events"));
  EXPECT_FALSE((*object)->has_map(".rodata")) << "internal maps are not the spec's maps";
  EXPECT_EQ((*object)->map_fd("nope"), -1);

  ConnKey key{0x7f000001, 80, 6};
  ConnValue value{};
  ASSERT_EQ(bpf_map_lookup_elem(conns, &key, &value), 0);
  EXPECT_EQ(value.hits, 1234u);
  EXPECT_STREQ(value.label, "lo");

  uint32_t untyped_key = 1;
  uint64_t untyped_value = 0;
  ASSERT_EQ(bpf_map_lookup_elem((*object)->map_fd("untyped"), &untyped_key, &untyped_value), 0);
  EXPECT_EQ(untyped_value, 0x0102030405060708u);

  int cpus = libbpf_num_possible_cpus();
  std::vector<uint64_t> totals(static_cast<size_t>(cpus));
  ASSERT_EQ(bpf_map_lookup_elem((*object)->map_fd("per_cpu_totals"), &untyped_key, totals.data()), 0);
  EXPECT_EQ(totals, std::vector<uint64_t>(static_cast<size_t>(cpus), 9)) << "one value given to every CPU";

  ConnKey other{1, 2, 3};
  ConnValue other_value{7, "x"};
  ASSERT_TRUE((*object)->map_update("conns", std::as_bytes(std::span(&other, 1)), std::as_bytes(std::span(&other_value, 1))));
  auto wrong_size = (*object)->map_update("conns", std::as_bytes(std::span(&untyped_key, 1)),
                                          std::as_bytes(std::span(&other_value, 1)));
  ASSERT_FALSE(wrong_size);
  EXPECT_EQ(wrong_size.error().message, "program 't_obj_types': map 'conns' has 8-byte keys, 4 given");
}

TEST(EbpfObject, BadMapEntryNamesTheEntry) {
  REQUIRE_ROOT();
  EbpfObjectProps props;
  props.progs = std::vector<std::string>{"probe_config"};
  MapInit conns{.name = "conns"};
  conns.entries.push_back({Value::parse(R"({"addr": 1, "port": 70000})"), Value::parse(R"({"hits": 1})"), {"t.yaml", 12, 11}});
  props.maps = {conns};
  auto object = open_fixture("obj_types", props);
  ASSERT_TRUE(object) << object.error().message;
  auto loaded = (*object)->load();
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().message,
            "t.yaml:12:11: program 't_obj_types': map 'conns' entry key.port: 70000 does not fit in __u16 "
            "(0..65535)");
}

TEST(EbpfObject, UnknownNamesListWhatTheObjectHas) {
  EbpfObjectProps variable;
  variable.variables = {{"treshold", 1, {"t.yaml", 9, 5}}};
  std::string message = error_of(open_fixture("obj_types", variable));
  EXPECT_TRUE(message.starts_with("t.yaml:9:5: program 't_obj_types': " EA_BUILD_DIR
                                  "/tests/bpf/obj_types.bpf.o has no global variable 'treshold'; its variables: "))
      << message;
  for (const char* name : {"small", "threshold", "target_comm", "limits", "data_counter", "bss_value", "observed"}) {
    EXPECT_TRUE(contains(message, name)) << name << " in " << message;
  }

  EbpfObjectProps prog;
  prog.progs = std::vector<std::string>{"emit_events"};
  EXPECT_TRUE(contains(error_of(open_fixture("obj_types", prog)),
                       "`progs` names 'emit_events', which " EA_BUILD_DIR
                       "/tests/bpf/obj_types.bpf.o does not have; its programs: emit_event, probe_config"));

  EbpfObjectProps map;
  map.maps = {MapInit{.name = "con", .max_entries = 4}};
  EXPECT_EQ(error_of(open_fixture("obj_types", map)),
            "t.yaml:5:7: program 't_obj_types': " EA_BUILD_DIR
            "/tests/bpf/obj_types.bpf.o has no map 'con'; its maps: conns, events, per_cpu_totals, untyped");

  EbpfObjectProps attach;
  attach.attach = {AttachOptions{.prog = "emit", .interface = "lo"}};
  EXPECT_TRUE(contains(error_of(open_fixture("obj_types", attach)), "`attach` names 'emit'"));

  EbpfObjectProps badly_typed;
  badly_typed.variables = {{"target_comm", 5, {"t.yaml", 9, 5}}};
  EXPECT_EQ(error_of(open_fixture("obj_types", badly_typed)),
            "t.yaml:9:5: program 't_obj_types': variable target_comm: expected a list or a string for char[16], got "
            "the number 5");
}

TEST(EbpfObject, VerifierRejectionReturnsTheLogTail) {
  REQUIRE_ROOT();
  auto object = open_fixture("obj_rejected", {});
  ASSERT_TRUE(object) << object.error().message;
  auto loaded = (*object)->load();
  ASSERT_FALSE(loaded);
  const std::string& message = loaded.error().message;
  EXPECT_TRUE(message.starts_with("t.yaml:5:7: program 't_obj_rejected': loading " EA_BUILD_DIR
                                  "/tests/bpf/obj_rejected.bpf.o into the kernel failed: Permission denied; the "
                                  "verifier rejected BPF program 'unchecked_lookup' "
                                  "(SEC(\"tracepoint/syscalls/sys_enter_getppid\"))\n"))
      << message;
  EXPECT_TRUE(contains(message, "verifier log")) << message;
  EXPECT_TRUE(contains(message, "invalid mem access 'map_value_or_null'")) << message;
  EXPECT_LE(std::ranges::count(message, '\n'), 45) << "only the tail of the log";
}

// The hook this kernel offers first among kprobe, fentry, tracepoint.
std::string expected_nanosleep_variant() {
  if (kernel_has_kprobes()) return "kprobe/do_nanosleep";
  if (kernel_has_fentry()) return "fentry/do_nanosleep";
  return "tracepoint/syscalls/sys_enter_nanosleep";
}

TEST(EbpfObject, ProgsAlternativesPickAHookThisKernelHas) {
  REQUIRE_ROOT();
  EbpfObjectProps props;
  props.progs = std::vector<std::string>{"on_nanosleep_kprobe|on_nanosleep_fentry|on_nanosleep_tracepoint"};
  auto object = open_fixture("obj_hooks", props);
  ASSERT_TRUE(object) << object.error().message;
  ASSERT_TRUE((*object)->load());
  auto attached = (*object)->attach();
  ASSERT_TRUE(attached) << attached.error().message;
  EXPECT_EQ((*object)->attach_points(), std::vector<std::string>{expected_nanosleep_variant()});
  timespec pause{0, 1000};
  syscall(SYS_nanosleep, &pause, nullptr);  // glibc's nanosleep() is clock_nanosleep, another tracepoint
  std::string counter = expected_nanosleep_variant().starts_with("kprobe")   ? "kprobe_hits"
                        : expected_nanosleep_variant().starts_with("fentry") ? "fentry_hits"
                                                                             : "tracepoint_hits";
  EXPECT_GE(kernel_variable<uint64_t>(**object, ".bss", counter.c_str()), 1u);

  ASSERT_TRUE((*object)->attach()) << "attach is idempotent";
  EXPECT_EQ((*object)->attach_points().size(), 1u);
  (*object)->detach();
  (*object)->detach();
  EXPECT_TRUE((*object)->attach_points().empty());
}

TEST(EbpfObject, KprobeOnAKernelWithoutKprobes) {
  REQUIRE_ROOT();
  if (kernel_has_kprobes()) GTEST_SKIP() << "this kernel has kprobes";
  EbpfObjectProps only_kprobe;
  only_kprobe.progs = std::vector<std::string>{"on_nanosleep_kprobe"};
  EXPECT_EQ(error_of(open_fixture("obj_hooks", only_kprobe)),
            "t.yaml:5:7: program 't_obj_hooks': BPF program 'on_nanosleep_kprobe' (SEC(\"kprobe/do_nanosleep\")) cannot "
            "run here: this kernel has no kprobes (CONFIG_KPROBES off): use a tracepoint/tp_btf variant (see `progs: "
            "\"a|b\"`)");

  // Without `progs` the kprobe program is loaded and its attach fails with the same advice.
  auto object = open_fixture("obj_hooks", {});
  ASSERT_TRUE(object) << object.error().message;
  bpf_program* program;
  bpf_object__for_each_program(program, (*object)->object()) {
    bpf_program__set_autoload(program, std::string_view(bpf_program__name(program)) == "on_nanosleep_kprobe");
  }
  auto loaded = (*object)->load();
  ASSERT_TRUE(loaded) << loaded.error().message;
  auto attached = (*object)->attach();
  ASSERT_FALSE(attached);
  EXPECT_EQ(attached.error().message,
            "t.yaml:5:7: program 't_obj_hooks': attaching BPF program 'on_nanosleep_kprobe' "
            "(SEC(\"kprobe/do_nanosleep\")) failed: this kernel has no kprobes (CONFIG_KPROBES off): use a "
            "tracepoint/tp_btf variant (see `progs: \"a|b\"`)");
  EXPECT_TRUE((*object)->attach_points().empty());
}

TEST(EbpfObject, FentryOnAKernelWithoutTrampolines) {
  REQUIRE_ROOT();
  if (kernel_has_fentry()) GTEST_SKIP() << "this kernel attaches fentry programs";
  EbpfObjectProps only_fentry;
  only_fentry.progs = std::vector<std::string>{"on_nanosleep_fentry"};
  std::string message = error_of(open_fixture("obj_hooks", only_fentry));
  EXPECT_TRUE(contains(message, "BPF program 'on_nanosleep_fentry' (SEC(\"fentry/do_nanosleep\")) cannot run here: "
                                "this kernel cannot run fentry/fexit/fmod_ret/lsm programs ("))
      << message;
  EXPECT_TRUE(message.ends_with("): use a tracepoint/tp_btf variant (see `progs: \"a|b\"`)")) << message;
}

TEST(EbpfObject, TracepointRecordsDecodeThroughBtf) {
  REQUIRE_ROOT();
  EbpfObjectProps props;
  props.progs = std::vector<std::string>{"emit_event"};
  props.variables = {{"target_tgid", getpid(), {}},
                     {"threshold", 99, {}},
                     {"limits", Value::parse(R"({"port": 4242, "level": 3})"), {}}};
  auto object = open_fixture("obj_types", props);
  ASSERT_TRUE(object) << object.error().message;
  ASSERT_TRUE((*object)->load());
  ASSERT_TRUE((*object)->attach());
  EXPECT_EQ((*object)->attach_points(), std::vector<std::string>{"tracepoint/syscalls/sys_enter_getppid"});

  auto decoder = make_btf_decoder((*object)->btf(), (*object)->find_struct("event"));
  ASSERT_TRUE(decoder) << decoder.error().message;
  EXPECT_EQ((*object)->find_struct("struct event"), (*object)->find_struct("event"));
  EXPECT_EQ((*object)->find_struct("no_such_struct"), 0);

  struct Received {
    Processor* decoder;
    std::vector<std::string> records;
    RecordMeta meta;
  } received{decoder->get(), {}, {}};
  auto on_record = [](void* context, void* data, size_t size) -> int {
    auto* state = static_cast<Received*>(context);
    std::string fields;
    if (state->decoder->process({static_cast<const std::byte*>(data), size}, state->meta, fields) ==
        ProcessOutcome::Emitted) {
      state->records.push_back(fields);
    }
    return 0;
  };
  ring_buffer* ring = ring_buffer__new((*object)->map_fd("events"), on_record, &received, nullptr);
  ASSERT_NE(ring, nullptr);

  int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  syscall(SYS_getppid);
  ring_buffer__poll(ring, 1000);
  auto stats = (*object)->run_stats();
  if (stats_fd >= 0) {
    EXPECT_GE(stats.run_count, 1u);
    close(stats_fd);
  }

  char comm[16] = {};
  prctl(PR_GET_NAME, comm);
  ASSERT_EQ(received.records.size(), 1u);
  EXPECT_EQ(received.records[0],
            fmt::format(R"({{"pid":{},"tgid":{},"comm":"{}","kind":"EVENT_GETPPID","peer":{{"port":4242,)"
                        R"("addr":[127,0,0,1]}},"delta":-5,"flag":1,"level":3,"cookie":99,"ok":true}})",
                        gettid(), getpid(), comm));
  EXPECT_EQ(received.meta.pid, gettid());
  EXPECT_EQ(received.meta.tgid, getpid());

  (*object)->detach();
  syscall(SYS_getppid);
  ring_buffer__poll(ring, 100);
  EXPECT_EQ(received.records.size(), 1u) << "nothing arrives after detach";
  ring_buffer__free(ring);
}

// Opens obj_hooks with only `program` loaded and the given attach options.
Result<std::unique_ptr<EbpfObject>> hooks_with(const std::string& program, std::optional<AttachOptions> options) {
  EbpfObjectProps props;
  props.progs = std::vector<std::string>{program};
  if (options) {
    options->prog = program;
    options->pos = {"t.yaml", 20, 9};
    props.attach = {*options};
  }
  auto object = open_fixture("obj_hooks", props);
  if (!object) return object;
  if (auto loaded = (*object)->load(); !loaded) return std::unexpected(loaded.error());
  return object;
}

TEST(EbpfObject, UprobeBySymbolInOneProcess) {
  REQUIRE_ROOT();
  std::string self = fs::read_symlink("/proc/self/exe").string();
  auto object = hooks_with("on_user_function", AttachOptions{.binary = {self}, .symbol = "ea_uprobe_target", .pid = getpid()});
  ASSERT_TRUE(object) << object.error().message;
  auto attached = (*object)->attach();
  ASSERT_TRUE(attached) << attached.error().message;
  EXPECT_EQ((*object)->attach_points(),
            std::vector<std::string>{fmt::format("uprobe {}:ea_uprobe_target pid {}", self, getpid())});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(ea_uprobe_target(i), i + 1);
  EXPECT_EQ(kernel_variable<uint64_t>(**object, ".bss", "uprobe_hits"), 3u);
}

TEST(EbpfObject, UprobeOnAMissingSymbolSaysSo) {
  REQUIRE_ROOT();
  auto object = hooks_with("on_user_function", AttachOptions{.binary = {"/proc/self/exe"}, .symbol = "no_such_function_x"});
  ASSERT_TRUE(object) << object.error().message;
  auto attached = (*object)->attach();
  ASSERT_FALSE(attached);
  EXPECT_TRUE(attached.error().message.starts_with(
      "t.yaml:20:9: program 't_obj_hooks': attaching BPF program 'on_user_function' (SEC(\"uprobe\")) failed: "))
      << attached.error().message;
  EXPECT_TRUE(contains(attached.error().message, "no_such_function_x")) << attached.error().message;
}

TEST(EbpfObject, OptionalUprobeOnAnAbsentLibraryStaysUnattached) {
  REQUIRE_ROOT();
  AttachOptions options{.binary = {"libno-such-library.so.9", "/nonexistent/libx.so"}, .symbol = "f"};
  auto strict = hooks_with("on_user_function", options);
  ASSERT_TRUE(strict) << strict.error().message;
  auto refused = (*strict)->attach();
  ASSERT_FALSE(refused);
  EXPECT_TRUE(contains(refused.error().message, "none of the uprobe binaries exists on this host"))
      << refused.error().message;

  options.optional = true;
  auto lenient = hooks_with("on_user_function", options);
  ASSERT_TRUE(lenient) << lenient.error().message;
  auto attached = (*lenient)->attach();
  ASSERT_TRUE(attached) << attached.error().message;
  EXPECT_EQ((*lenient)->attach_points(),
            std::vector<std::string>{"not attached (not on this host: libno-such-library.so.9, /nonexistent/libx.so)"});
}

TEST(EbpfObject, PerfEventSamplesEveryCpu) {
  REQUIRE_ROOT();
  auto object = hooks_with("on_cpu_sample",
                           AttachOptions{.perf_type = "software", .perf_config = "cpu-clock", .frequency = 1000});
  ASSERT_TRUE(object) << object.error().message;
  auto attached = (*object)->attach();
  ASSERT_TRUE(attached) << attached.error().message;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  EXPECT_EQ((*object)->attach_points(),
            std::vector<std::string>{fmt::format("perf_event software:cpu-clock 1000 Hz on {} CPUs", cpus)});
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
  while (std::chrono::steady_clock::now() < until) {
  }
  EXPECT_GE(kernel_variable<uint64_t>(**object, ".bss", "perf_hits"), 1u);
  (*object)->detach();
}

TEST(EbpfObject, PerfEventErrors) {
  REQUIRE_ROOT();
  auto no_rate = hooks_with("on_cpu_sample", std::nullopt);
  ASSERT_TRUE(no_rate) << no_rate.error().message;
  auto attached = (*no_rate)->attach();
  ASSERT_FALSE(attached);
  EXPECT_EQ(attached.error().message,
            "t.yaml:5:7: program 't_obj_hooks': attaching BPF program 'on_cpu_sample' (SEC(\"perf_event\")) failed: "
            "SEC(\"perf_event\") samples a perf event: give its rate, e.g. `attach: {on_cpu_sample: {perf_event: "
            "{type: software, config: cpu-clock, frequency: 99}}}`");

  EXPECT_TRUE(contains(error_of(hooks_with("on_cpu_sample", AttachOptions{.perf_type = "software",
                                                                           .perf_config = "cpu-cycles",
                                                                           .frequency = 99})),
                       "perf_event config 'cpu-cycles' is unknown for type software; known: cpu-clock, task-clock"));

  auto hardware = hooks_with("on_cpu_sample", AttachOptions{.perf_type = "hardware", .perf_config = "cpu-cycles",
                                                            .frequency = 99});
  ASSERT_TRUE(hardware) << hardware.error().message;
  auto counted = (*hardware)->attach();
  if (counted) GTEST_SKIP() << "this machine exposes hardware counters";
  EXPECT_TRUE(contains(counted.error().message,
                       "hardware counter 'cpu-cycles' is not available on this machine (virtual machines often hide "
                       "hardware counters): use `type: software, config: cpu-clock`"))
      << counted.error().message;
}

// A veth pair for XDP/TC tests, removed again however the test ends.
class TestInterface {
 public:
  TestInterface() : name_(fmt::format("eaobj{}", getpid() % 100000)) {
    std::system(fmt::format("ip link del {} >/dev/null 2>&1", name_).c_str());
    ok_ = std::system(fmt::format("ip link add {0} type veth peer name {0}p && ip link set {0} up", name_).c_str()) == 0;
  }
  ~TestInterface() { std::system(fmt::format("ip link del {} >/dev/null 2>&1", name_).c_str()); }
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }
  int index() const { return static_cast<int>(if_nametoindex(name_.c_str())); }

 private:
  std::string name_;
  bool ok_ = false;
};

std::string command_output(const std::string& command) {
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return output;
  char buffer[512];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) output.append(buffer, n);
  pclose(pipe);
  return output;
}

TEST(EbpfObject, XdpInEachModeAndDetach) {
  REQUIRE_ROOT();
  TestInterface netif;
  if (!netif.ok()) GTEST_SKIP() << "cannot create a veth pair (`ip link add ... type veth`)";
  for (const char* mode : {"generic", ""}) {
    auto object = hooks_with("xdp_pass", AttachOptions{.interface = netif.name(), .mode = mode});
    ASSERT_TRUE(object) << object.error().message;
    auto attached = (*object)->attach();
    ASSERT_TRUE(attached) << attached.error().message;
    std::string point = *mode ? fmt::format("xdp {} ({})", netif.name(), mode) : fmt::format("xdp {}", netif.name());
    EXPECT_EQ((*object)->attach_points(), std::vector<std::string>{point});
    uint32_t prog_id = 0;
    ASSERT_EQ(bpf_xdp_query_id(netif.index(), 0, &prog_id), 0);
    EXPECT_NE(prog_id, 0u) << mode;

    auto second = hooks_with("xdp_pass", AttachOptions{.interface = netif.name(), .mode = "generic"});
    ASSERT_TRUE(second);
    auto busy = (*second)->attach();
    ASSERT_FALSE(busy) << "two XDP programs on one interface";
    EXPECT_TRUE(contains(busy.error().message, "already has an XDP program attached")) << busy.error().message;

    (*object)->detach();
    prog_id = 0;
    ASSERT_EQ(bpf_xdp_query_id(netif.index(), 0, &prog_id), 0);
    EXPECT_EQ(prog_id, 0u) << "detached in mode '" << mode << "'";
  }
  auto missing = hooks_with("xdp_pass", AttachOptions{.interface = "ea-no-such0"});
  ASSERT_TRUE(missing);
  EXPECT_TRUE(contains((*missing)->attach().error().message, "no network interface 'ea-no-such0' (see `ip link`)"));
  auto unnamed = hooks_with("xdp_pass", std::nullopt);
  ASSERT_TRUE(unnamed);
  EXPECT_TRUE(contains((*unnamed)->attach().error().message,
                       "XDP programs need an interface: `attach: {PROG: {interface: eth0}}`"));
  EXPECT_TRUE(contains(error_of(hooks_with("xdp_pass", AttachOptions{.interface = netif.name(), .mode = "offload"})),
                       "XDP offload is not supported"));
}

TEST(EbpfObject, TcFilterAndItsQdiscAreRemovedOnDetach) {
  REQUIRE_ROOT();
  TestInterface netif;
  if (!netif.ok()) GTEST_SKIP() << "cannot create a veth pair (`ip link add ... type veth`)";
  auto ingress = hooks_with("tc_pass", AttachOptions{.interface = netif.name(), .mode = "ingress"});
  auto egress = hooks_with("tc_pass", AttachOptions{.interface = netif.name(), .mode = "egress"});
  ASSERT_TRUE(ingress) << ingress.error().message;
  ASSERT_TRUE(egress) << egress.error().message;
  ASSERT_TRUE((*ingress)->attach());
  ASSERT_TRUE((*egress)->attach());
  EXPECT_EQ((*ingress)->attach_points(), std::vector<std::string>{fmt::format("tc {} ingress", netif.name())});
  EXPECT_TRUE(contains(command_output("tc filter show dev " + netif.name() + " ingress"), "tc_pass"));
  EXPECT_TRUE(contains(command_output("tc filter show dev " + netif.name() + " egress"), "tc_pass"));

  (*ingress)->detach();
  EXPECT_FALSE(contains(command_output("tc filter show dev " + netif.name() + " ingress"), "tc_pass"));
  EXPECT_TRUE(contains(command_output("tc filter show dev " + netif.name() + " egress"), "tc_pass"))
      << "the other program's filter stays";
  EXPECT_TRUE(contains(command_output("tc qdisc show dev " + netif.name()), "clsact"));
  (*egress)->detach();
  EXPECT_FALSE(contains(command_output("tc qdisc show dev " + netif.name()), "clsact")) << "the qdisc we made is gone";
}

TEST(EbpfObject, CgroupProgramAttachesToADirectory) {
  REQUIRE_ROOT();
  fs::path root;
  for (const char* candidate : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
    struct statfs fs_info {};
    if (statfs(candidate, &fs_info) == 0 && fs_info.f_type == 0x63677270 /* CGROUP2_SUPER_MAGIC */) {
      root = candidate;
      break;
    }
  }
  if (root.empty()) GTEST_SKIP() << "no cgroup v2 hierarchy mounted";
  fs::path cgroup = root / fmt::format("ea-obj-test-{}", getpid());
  ASSERT_EQ(mkdir(cgroup.c_str(), 0755), 0) << std::strerror(errno);
  {
    auto object = hooks_with("cgroup_egress_allow", AttachOptions{.cgroup = cgroup.string()});
    ASSERT_TRUE(object) << object.error().message;
    auto attached = (*object)->attach();
    EXPECT_TRUE(attached) << attached.error().message;
    EXPECT_EQ((*object)->attach_points(),
              std::vector<std::string>{fmt::format("cgroup {} (cgroup_skb/egress)", cgroup.string())});
    int fd = open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    uint32_t count = 0;
    EXPECT_EQ(bpf_prog_query(fd, BPF_CGROUP_INET_EGRESS, 0, nullptr, nullptr, &count), 0);
    EXPECT_EQ(count, 1u);
    (*object)->detach();
    count = 0;
    EXPECT_EQ(bpf_prog_query(fd, BPF_CGROUP_INET_EGRESS, 0, nullptr, nullptr, &count), 0);
    EXPECT_EQ(count, 0u);
    close(fd);
  }
  rmdir(cgroup.c_str());
}

TEST(EbpfObject, AttachOptionsThatDoNotFitTheProgram) {
  EXPECT_EQ(error_of(hooks_with("on_nanosleep_tracepoint", AttachOptions{.interface = "lo"})),
            "t.yaml:20:9: program 't_obj_hooks': attach options for 'on_nanosleep_tracepoint': the attach "
            "options given do not apply to SEC(\"tracepoint/syscalls/sys_enter_nanosleep\"), which attaches by its "
            "section name");
  EXPECT_TRUE(contains(error_of(hooks_with("xdp_pass", AttachOptions{.binary = {"/bin/true"}, .symbol = "main"})),
                       "`binary`/`symbol`/`offset`/`optional` are uprobe options, but SEC(\"xdp\") is not a uprobe "
                       "program"));
}

TEST(EbpfObject, KernelInterfacesAreReady) {
  REQUIRE_ROOT();
  auto problems = prepare_kernel_interfaces();
  EXPECT_TRUE(problems.empty()) << fmt::format("{}", fmt::join(problems, "\n"));
  struct statfs bpffs {};
  ASSERT_EQ(statfs("/sys/fs/bpf", &bpffs), 0);
  EXPECT_EQ(bpffs.f_type, 0xcafe4a11);
  EXPECT_EQ(access("/sys/kernel/tracing/events", F_OK), 0);
}

}  // namespace
}  // namespace ea
