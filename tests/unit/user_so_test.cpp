// user_so plugins (tests/plugins/*) through UserSoPlugin: handshake and symbol errors, init,
// the processing contract, crash survival, and the preload/postload hooks against a real object.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ebpf_agent/plugin.h"
#include <nlohmann/json.hpp>

#include "oom_event.h"
#include "loader/ebpf_object.h"
#include "loader/user_so.h"
#include "pipeline/crash_guard.h"

namespace ea {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string test_plugin(std::string_view name) { return fmt::format("{}/tests/plugins/{}.so", EA_BUILD_DIR, name); }

FetchedFile local_file(const std::string& path) {
  auto file = fetch_program_file(path, "", "/", SourcePos{"spec.yaml", 12, 7});
  EXPECT_TRUE(file.has_value()) << file.error().message;
  return file ? std::move(*file) : FetchedFile{};
}

struct PluginSetup {
  std::string so = test_plugin("echo");
  std::vector<std::string> functions = {"process"};
  std::string initfile;
  Value config;  // null = absent
  std::string base_dir = std::filesystem::temp_directory_path();
};

Spec spec_for(const PluginSetup& setup) {
  Spec spec;
  spec.kind = "ebpfprogram";
  spec.name = "plugin_test";
  spec.source_file = setup.base_dir + "/spec.yaml";
  spec.base_dir = setup.base_dir;
  ProgramSpec program;
  program.name = "user";
  program.type = ProgramType::UserSo;
  program.path = "file://" + setup.so;
  program.pos = SourcePos{"spec.yaml", 12, 7};
  UserSoProps props;
  int line = 14;
  for (const std::string& name : setup.functions) props.functions.push_back({name, "", SourcePos{"spec.yaml", line++, 11}});
  props.initfile = setup.initfile;
  props.config = setup.config;
  program.props = props;
  spec.programs.push_back(program);
  return spec;
}

Result<std::shared_ptr<UserSoPlugin>> load(const PluginSetup& setup) {
  Spec spec = spec_for(setup);
  return UserSoPlugin::load(spec, spec.programs.front(), local_file(setup.so));
}

std::shared_ptr<UserSoPlugin> load_ok(const PluginSetup& setup) {
  auto plugin = load(setup);
  EXPECT_TRUE(plugin.has_value()) << plugin.error().message;
  return plugin ? *plugin : nullptr;
}

std::unique_ptr<Processor> make_processor(UserSoPlugin& plugin, std::string_view function = "process") {
  auto factory = plugin.processor(function);
  EXPECT_TRUE(factory.has_value()) << factory.error().message;
  Spec spec;
  spec.name = "plugin_test";
  ChannelSpec channel;
  channel.name = "events";
  ProcessorContext context{.spec = &spec, .channel = &channel};
  auto processor = (*factory)(context);
  EXPECT_TRUE(processor.has_value()) << processor.error().message;
  return std::move(*processor);
}

struct Output {
  ProcessOutcome outcome;
  std::string fields;
  RecordMeta meta;
  std::string error;
};

Output run(Processor& processor, std::string_view input) {
  Output out;
  out.outcome = processor.process(std::as_bytes(std::span(input.data(), input.size())), out.meta, out.fields);
  out.error = processor.error();
  return out;
}

std::string error_of(const Result<std::shared_ptr<UserSoPlugin>>& plugin) {
  EXPECT_FALSE(plugin.has_value());
  return plugin ? std::string() : plugin.error().message;
}

TEST(UserSoLoad, RefusesASharedObjectWithoutTheHandshake) {
  PluginSetup setup{.so = test_plugin("no_handshake")};
  EXPECT_THAT(error_of(load(setup)),
              AllOf(StartsWith(setup.so + ": "),
                    HasSubstr("not an ebpf-agent plugin: missing symbol ea_plugin_abi_version")));
}

TEST(UserSoLoad, RefusesAnotherAbiVersionNamingBoth) {
  PluginSetup setup{.so = test_plugin("abi_mismatch")};
  EXPECT_THAT(error_of(load(setup)),
              AllOf(HasSubstr(setup.so), HasSubstr(fmt::format("built for plugin ABI v{}, this agent speaks v{} to v{}: rebuild it against "
                                                             "this agent's include/ebpf_agent/plugin.h",
                                                             EA_PLUGIN_ABI_VERSION + 1, EA_PLUGIN_ABI_MIN_VERSION,
                                                             EA_PLUGIN_ABI_VERSION))));
}

TEST(UserSoLoad, NamesEveryMissingFunctionAndTheObject) {
  PluginSetup setup{.so = test_plugin("missing_symbol"), .functions = {"process", "summarize", "flush"}};
  EXPECT_THAT(error_of(load(setup)), AllOf(StartsWith(setup.so + " does not export symbols summarize, flush "
                                                      "(properties.functions at spec.yaml:15:11)"),
                                           HasSubstr("C linkage")));
}

TEST(UserSoLoad, ReportsWhyDlopenFailed) {
  std::string path = std::filesystem::temp_directory_path() / fmt::format("not_elf_{}.so", getpid());
  std::ofstream(path) << std::string(4096, '#');  // long enough to be read as a header
  PluginSetup setup{.so = path};
  std::string error = error_of(load(setup));
  std::filesystem::remove(path);
  EXPECT_THAT(error, AllOf(HasSubstr(path), HasSubstr("cannot load the plugin"), HasSubstr("invalid ELF header")));
}

TEST(UserSoLoad, InitFailureQuotesTheLastError) {
  PluginSetup setup{.config = {{"fail_init", true}}};
  EXPECT_THAT(error_of(load(setup)),
              HasSubstr("ea_plugin_init failed with -22 (Invalid argument): init refused: the config asks it to fail"));
}

TEST(UserSoLoad, SettingsWithoutAnInitHookAreRefused) {
  PluginSetup setup{.so = test_plugin("crashing"), .config = {{"threshold", 3}}};
  EXPECT_THAT(error_of(load(setup)), HasSubstr("no ea_plugin_init to receive them"));
}

TEST(UserSoLoad, MissingInitfileNamesTheProperty) {
  PluginSetup setup{.initfile = "file://no_such_initfile_here.conf"};
  EXPECT_THAT(error_of(load(setup)), AllOf(HasSubstr("properties.initfile"), HasSubstr("no_such_initfile_here.conf")));
}

TEST(UserSoLoad, InitGetsConfigJsonAndTheResolvedInitfile) {
  std::string dir = std::filesystem::temp_directory_path() / fmt::format("ea_user_so_{}", getpid());
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/echo.conf") << "first line\nsecond\n";
  PluginSetup setup{.initfile = "file://echo.conf", .config = {{"threshold", 3}}, .base_dir = dir};
  auto plugin = load_ok(setup);
  ASSERT_TRUE(plugin);
  auto processor = make_processor(*plugin);
  Output out = run(*processor, "hi \"there\"\n");
  std::filesystem::remove_all(dir);
  ASSERT_EQ(out.outcome, ProcessOutcome::Emitted) << out.error;
  auto fields = nlohmann::json::parse(out.fields);
  EXPECT_EQ(fields["input"], "hi \"there\"\n");
  EXPECT_EQ(fields["config"], nlohmann::json({{"threshold", 3}}));
  EXPECT_EQ(fields["initfile"], "first line");
}

TEST(UserSoProcess, UnknownFunctionListsTheDeclaredOnes) {
  auto plugin = load_ok({});
  ASSERT_TRUE(plugin);
  auto factory = plugin->processor("summarize");
  ASSERT_FALSE(factory.has_value());
  EXPECT_THAT(factory.error().message, HasSubstr("no processing function 'summarize' (its properties.functions: process)"));
}

TEST(UserSoProcess, ResultBufferGrowsOnceUpToTheLimit) {
  auto plugin = load_ok({});
  ASSERT_TRUE(plugin);
  auto processor = make_processor(*plugin);

  Output fits = run(*processor, "big:4096");
  ASSERT_EQ(fits.outcome, ProcessOutcome::Emitted) << fits.error;
  EXPECT_EQ(fits.fields.size(), 4096u);

  Output grown = run(*processor, "big:300000");
  ASSERT_EQ(grown.outcome, ProcessOutcome::Emitted) << grown.error;
  EXPECT_EQ(grown.fields.size(), 300000u);
  EXPECT_EQ(nlohmann::json::parse(grown.fields)["pad"].get<std::string>().size(), 300000u - 10);

  Output too_big = run(*processor, "big:2000000");
  EXPECT_EQ(too_big.outcome, ProcessOutcome::Failed);
  EXPECT_THAT(too_big.error, HasSubstr("needs a 2000000-byte result; the limit is 1048576 bytes"));
  EXPECT_TRUE(too_big.fields.empty());

  Output liar = run(*processor, "liar");
  EXPECT_EQ(liar.outcome, ProcessOutcome::Failed);
  EXPECT_THAT(liar.error, HasSubstr("EA_ERR_RESULT_TOO_SMALL but asked for"));
}

TEST(UserSoProcess, SkipEmitsNothing) {
  auto plugin = load_ok({});
  ASSERT_TRUE(plugin);
  auto processor = make_processor(*plugin);
  Output out = run(*processor, "skip");
  EXPECT_EQ(out.outcome, ProcessOutcome::Skipped);
  EXPECT_TRUE(out.fields.empty());
}

TEST(UserSoProcess, PluginFailureCarriesItsMessage) {
  auto plugin = load_ok({});
  ASSERT_TRUE(plugin);
  auto processor = make_processor(*plugin);
  Output out = run(*processor, "fail");
  EXPECT_EQ(out.outcome, ProcessOutcome::Failed);
  EXPECT_EQ(out.error, "process failed with code 7: asked to fail");
  EXPECT_TRUE(out.fields.empty());
}

TEST(UserSoProcess, UntrustedResultsAreChecked) {
  auto plugin = load_ok({});
  ASSERT_TRUE(plugin);
  auto processor = make_processor(*plugin);

  Output overflow = run(*processor, "overflow");
  EXPECT_EQ(overflow.outcome, ProcessOutcome::Failed);
  EXPECT_THAT(overflow.error, HasSubstr("reported a 4097-byte result in a 4096-byte buffer"));

  Output not_json = run(*processor, "notjson");
  EXPECT_EQ(not_json.outcome, ProcessOutcome::Failed);
  EXPECT_THAT(not_json.error, HasSubstr("invalid JSON at byte 0 of 5"));
  EXPECT_TRUE(not_json.fields.empty());

  Output line_breaks = run(*processor, "newline");
  ASSERT_EQ(line_breaks.outcome, ProcessOutcome::Emitted) << line_breaks.error;
  EXPECT_EQ(line_breaks.fields, "{ \"a\":1  }") << "a JSON line must stay one line";
}

TEST(UserSoProcess, MetaIsCopiedWithCommBounded) {
  auto plugin = load_ok({});
  ASSERT_TRUE(plugin);
  auto processor = make_processor(*plugin);
  Output out = run(*processor, "meta");
  ASSERT_EQ(out.outcome, ProcessOutcome::Emitted) << out.error;
  EXPECT_EQ(out.meta.pid, 42);
  EXPECT_EQ(out.meta.tgid, 43);
  EXPECT_EQ(out.meta.comm, "abcdefghijklmnop");

  Output plain = run(*processor, "x");
  EXPECT_EQ(plain.meta.pid, -1) << "meta the plugin does not set stays unknown";
  EXPECT_EQ(plain.meta.comm, "");
}

int deep_recursion(int depth) {
  if (depth < 0) return 0;  // never: keeps the compiler from calling the recursion infinite
  volatile char frame[512];
  frame[0] = static_cast<char>(depth);
  return deep_recursion(depth + 1) + frame[0];
}

TEST(CrashGuard, CatchesFaultsAndCountsThem) {
  uint64_t before = caught_crash_count();
  auto segv = call_guarded([](void*) { *static_cast<volatile int*>(nullptr) = 1; }, nullptr);
  ASSERT_TRUE(segv.has_value());
  EXPECT_EQ(segv->signal, SIGSEGV);
  EXPECT_EQ(segv->fault_address, 0u);
  EXPECT_THAT(describe(*segv), StartsWith("SIGSEGV (address 0x0) at "));

  auto fpe = call_guarded([](void*) { std::raise(SIGFPE); }, nullptr);
  ASSERT_TRUE(fpe.has_value());
  EXPECT_EQ(fpe->signal, SIGFPE);

  bool ran = false;
  auto fine = [&] { ran = true; };
  EXPECT_FALSE(call_guarded(fine).has_value());
  EXPECT_TRUE(ran);
  EXPECT_EQ(caught_crash_count(), before + 2);
}

TEST(CrashGuard, CatchesAStackOverflowOnAnyThread) {
  std::optional<CrashInfo> crash;
  std::thread worker([&] { crash = call_guarded([](void*) { deep_recursion(0); }, nullptr); });
  worker.join();
  ASSERT_TRUE(crash.has_value());
  EXPECT_EQ(crash->signal, SIGSEGV);
}

TEST(CrashGuard, NestedCallsKeepTheOuterGuard) {
  auto outer = [] {
    auto inner = call_guarded([](void*) { *static_cast<volatile int*>(nullptr) = 1; }, nullptr);
    if (!inner) std::abort();
    *static_cast<volatile int*>(nullptr) = 2;  // caught by the outer guard
  };
  auto crash = call_guarded(outer);
  ASSERT_TRUE(crash.has_value());
  EXPECT_EQ(crash->signal, SIGSEGV);
}

TEST(CrashGuardDeathTest, FaultsOutsideAGuardedCallStillKill) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  call_guarded([](void*) {}, nullptr);  // handlers installed
  EXPECT_EXIT(*static_cast<volatile int*>(nullptr) = 1, ::testing::KilledBySignal(SIGSEGV), "");
  EXPECT_EXIT(kill(getpid(), SIGBUS), ::testing::KilledBySignal(SIGBUS), "");
}

TEST(UserSoCrash, CrashIsSurvivedCountedAndDisablesOnlyThatPlugin) {
  auto crashing = load_ok({.so = test_plugin("crashing")});
  auto healthy = load_ok({});
  ASSERT_TRUE(crashing && healthy);
  auto first = make_processor(*crashing);
  auto second = make_processor(*crashing);  // another shard of the same plugin
  auto other = make_processor(*healthy);

  ASSERT_EQ(run(*first, "fine").outcome, ProcessOutcome::Emitted);
  uint64_t before = caught_crash_count();
  Output crash = run(*first, "segv");
  EXPECT_EQ(crash.outcome, ProcessOutcome::Failed);
  EXPECT_THAT(crash.error,
              AllOf(StartsWith("plugin 'user' (" + test_plugin("crashing") + ") crashed with SIGSEGV (address 0x0) at "
                               "crashing.so+0x"),
                    HasSubstr("(process+0x"), HasSubstr("in process; disabled")));
  EXPECT_EQ(caught_crash_count(), before + 1);
  EXPECT_TRUE(crashing->crashed());

  for (Processor* processor : {first.get(), second.get()}) {
    Output after = run(*processor, "fine");  // would succeed if the plugin were still called
    EXPECT_EQ(after.outcome, ProcessOutcome::Failed);
    EXPECT_EQ(after.error, crash.error);
  }
  EXPECT_EQ(caught_crash_count(), before + 1) << "a disabled plugin is not called again";

  EXPECT_FALSE(healthy->crashed());
  EXPECT_EQ(run(*other, "x").outcome, ProcessOutcome::Emitted);
}

TEST(UserSoCrash, DivisionByZeroIsCaughtToo) {
  auto crashing = load_ok({.so = test_plugin("crashing")});
  ASSERT_TRUE(crashing);
  auto processor = make_processor(*crashing);
  Output crash = run(*processor, "fpe");
  EXPECT_EQ(crash.outcome, ProcessOutcome::Failed);
  EXPECT_THAT(crash.error, AllOf(HasSubstr("crashed with SIGFPE at crashing.so+0x"), HasSubstr("; disabled")));
}

int64_t clock_ns(clockid_t clock) {
  timespec now{};
  clock_gettime(clock, &now);
  return int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

std::string_view as_input(const oom_event& event) {
  return std::string_view(reinterpret_cast<const char*>(&event), sizeof(event));
}

TEST(UserSoOomPlugin, DecodesTheRecordIntoTheTalksFields) {
  auto plugin = load_ok({.so = fmt::format("{}/plugins/oom_user.so", EA_BUILD_DIR)});
  ASSERT_TRUE(plugin);
  auto processor = make_processor(*plugin);

  oom_event event{};
  event.ts_ns = clock_ns(CLOCK_MONOTONIC) - 2'000'000'000;  // two seconds ago
  event.start_ns = event.ts_ns - 5'000'000'000;
  event.delta_ns = 5'000'000'000;
  event.total_vm_pages = 1000;
  event.rss_pages = 600;
  event.pid = 4242;
  event.tgid = 4240;
  event.ppid = 1;
  event.state = 0;
  event.exit_code = 0;
  std::memcpy(event.comm, "a\"b\\c\x01\xff full comm", sizeof(event.comm));  // 16 bytes, no NUL
  std::strcpy(event.message, "Memory cgroup out of memory");

  Output out = run(*processor, as_input(event));
  ASSERT_EQ(out.outcome, ProcessOutcome::Emitted) << out.error;
  auto fields = nlohmann::json::parse(out.fields);
  EXPECT_EQ(fields["comm"], "a\"b\\c\u0001\ufffd full com");
  EXPECT_EQ(fields["message"], "Memory cgroup out of memory");
  int64_t expected_unix_ns = clock_ns(CLOCK_REALTIME) - 2'000'000'000;
  EXPECT_NEAR(fields["timestamp"].get<double>(), static_cast<double>(expected_unix_ns), 100e6);
  EXPECT_EQ(fields["delta_time"], 5'000'000'000);
  EXPECT_EQ(fields["tid"], 4242);
  EXPECT_EQ(fields["pid"], 4240);
  EXPECT_EQ(fields["ppid"], 1);
  EXPECT_EQ(fields["state"], 0);
  EXPECT_EQ(fields["exit_code"], 0);
  long page_kb = sysconf(_SC_PAGESIZE) / 1024;
  EXPECT_EQ(fields["total_vm_kb"], 1000 * page_kb);
  EXPECT_EQ(fields["rss_kb"], 600 * page_kb);
  EXPECT_EQ(out.meta.pid, 4242);
  EXPECT_EQ(out.meta.tgid, 4240);
  EXPECT_EQ(out.meta.comm, std::string_view(event.comm, sizeof(event.comm)));
}

TEST(UserSoOomPlugin, ShortRecordFailsWithItsSize) {
  auto plugin = load_ok({.so = fmt::format("{}/plugins/oom_user.so", EA_BUILD_DIR)});
  ASSERT_TRUE(plugin);
  auto processor = make_processor(*plugin);
  Output out = run(*processor, std::string(100, 'x'));
  EXPECT_EQ(out.outcome, ProcessOutcome::Failed);
  EXPECT_THAT(out.error, HasSubstr("record of 100 bytes is shorter than struct oom_event (144)"));
}

// The hooks against a real BPF object: root, since it is loaded into the kernel.
class UserSoHooks : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root: loads tests/bpf/plugin_hooks.bpf.o into the kernel";
  }

  std::unique_ptr<EbpfObject> open_object() {
    ProgramSpec program;
    program.name = "hooks";
    program.type = ProgramType::EbpfObject;
    program.path = fmt::format("file://{}/tests/bpf/plugin_hooks.bpf.o", EA_BUILD_DIR);
    program.props = EbpfObjectProps{};
    auto object = EbpfObject::open(program, local_file(program.path));
    EXPECT_TRUE(object.has_value()) << object.error().message;
    return object ? std::move(*object) : nullptr;
  }

  static uint32_t read_u32(int map_fd, uint32_t key, size_t value_size) {
    std::vector<uint8_t> value(value_size);
    EXPECT_EQ(bpf_map_lookup_elem(map_fd, &key, value.data()), 0);
    uint32_t result = 0;
    std::memcpy(&result, value.data(), sizeof(result));
    return result;
  }
};

TEST_F(UserSoHooks, PreloadSetsAVariableAndPostloadWritesAMap) {
  auto plugin = load_ok({.config = {{"variable", 1234}, {"map_value", 5678}}});
  auto object = open_object();
  ASSERT_TRUE(plugin && object);

  auto preloaded = plugin->preload(*object);
  ASSERT_TRUE(preloaded.has_value()) << preloaded.error().message;
  auto loaded = object->load();
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  auto postloaded = plugin->postload(*object);
  ASSERT_TRUE(postloaded.has_value()) << postloaded.error().message;

  bpf_map* rodata = bpf_object__find_map_by_name(object->object(), ".rodata");
  ASSERT_NE(rodata, nullptr);
  EXPECT_EQ(read_u32(bpf_map__fd(rodata), 0, bpf_map__value_size(rodata)), 1234u) << "plugin_value set by preload";
  EXPECT_EQ(read_u32(object->map_fd("plugin_map"), 1, sizeof(uint32_t)), 5678u) << "plugin_map[1] written by postload";

  auto processor = make_processor(*plugin);
  Output seen = run(*processor, "hooks");
  ASSERT_EQ(seen.outcome, ProcessOutcome::Emitted) << seen.error;
  auto fields = nlohmann::json::parse(seen.fields);
  EXPECT_EQ(fields["preload_map_update"], -EPERM) << "map_update is postload-only";
  EXPECT_EQ(fields["postload_set_variable"], -EPERM) << "set_variable is preload-only";
  EXPECT_EQ(fields["postload_map_fd"], object->map_fd("plugin_map"));
}

TEST_F(UserSoHooks, HookFailureQuotesThePluginAndTheAgent) {
  auto plugin = load_ok({.config = {{"bad_variable", true}}});
  auto object = open_object();
  ASSERT_TRUE(plugin && object);
  auto preloaded = plugin->preload(*object);
  ASSERT_FALSE(preloaded.has_value());
  EXPECT_THAT(preloaded.error().message,
              AllOf(HasSubstr("ea_plugin_preload of plugin 'user'"), HasSubstr("failed on object 'hooks' with -22"),
                    HasSubstr(": could not set no_such_variable in "), HasSubstr("last object API error: ")));
}

}  // namespace
}  // namespace ea
