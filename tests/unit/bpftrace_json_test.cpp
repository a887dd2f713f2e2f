// bpftrace output lines -> record fields, through the parser and the "bpftrace_default" processor.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

#include <ebpf_agent/plugin.h>

#include "pipeline/bpftrace_json.h"
#include "pipeline/processor.h"

namespace ea {
namespace {

using bpftrace::LineOutcome;
using bpftrace::OutputLineParser;
using nlohmann::json;

json parse_record(OutputLineParser& parser, std::string_view line) {
  EXPECT_EQ(parser.parse(line), LineOutcome::Record) << parser.error();
  return json::parse(parser.fields());
}

TEST(BpftraceJson, TalkOomPrintfYieldsEveryField) {
  OutputLineParser parser;
  json record = parse_record(parser,
                             R"({"type": "printf", "data": "OOM KILL: ts=123456789 pid=4242 tgid=4240 ppid=1 )"
                             R"(state=0 code=137 comm=stress-ng msg=Memory cgroup out of memory\n"})");
  EXPECT_EQ(record["type"], "printf");
  EXPECT_EQ(record["message"],
            "OOM KILL: ts=123456789 pid=4242 tgid=4240 ppid=1 state=0 code=137 comm=stress-ng msg=Memory cgroup out "
            "of memory");
  EXPECT_EQ(record["ts"], 123456789);
  EXPECT_EQ(record["pid"], 4242);
  EXPECT_EQ(record["tgid"], 4240);
  EXPECT_EQ(record["ppid"], 1);
  EXPECT_EQ(record["state"], 0);
  EXPECT_EQ(record["code"], 137);
  EXPECT_EQ(record["comm"], "stress-ng");
  EXPECT_EQ(record["msg"], "Memory cgroup out of memory");
  // tgid present: kernel naming, pid is the thread.
  EXPECT_EQ(parser.identity().pid, 4242);
  EXPECT_EQ(parser.identity().tgid, 4240);
  EXPECT_EQ(parser.identity().comm, "stress-ng");
}

TEST(BpftraceJson, BpftraceNamingTakesPidAsTheProcess) {
  OutputLineParser parser;
  parse_record(parser, R"({"type": "printf", "data": "open pid=77 tid=78 comm=python3 path=/tmp/a b\n"})");
  EXPECT_EQ(parser.identity().tgid, 77);
  EXPECT_EQ(parser.identity().pid, 78);
  EXPECT_EQ(parser.identity().comm, "python3");

  parse_record(parser, R"({"type": "printf", "data": "pid=77"})");
  EXPECT_EQ(parser.identity().tgid, 77);
  EXPECT_EQ(parser.identity().pid, -1) << "the thread is unknown";
}

TEST(BpftraceJson, ValuesKeepSpacesAndNumbersAreTyped) {
  OutputLineParser parser;
  json record = parse_record(
      parser, R"({"type": "printf", "data": "a=-5 b=18446744073709551615 c=2.5 d=1e3 e=0x10 f=inf g= h=x=y  comm=Web Content  \n"})");
  EXPECT_EQ(record["a"], -5);
  EXPECT_EQ(record["b"].get<uint64_t>(), 18446744073709551615ull);
  EXPECT_DOUBLE_EQ(record["c"].get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(record["d"].get<double>(), 1000.0);
  EXPECT_EQ(record["e"], "0x10");
  EXPECT_EQ(record["f"], "inf");
  EXPECT_EQ(record["g"], "");
  EXPECT_EQ(record["h"], "x=y");
  EXPECT_EQ(record["comm"], "Web Content");
  EXPECT_EQ(record["message"], "a=-5 b=18446744073709551615 c=2.5 d=1e3 e=0x10 f=inf g= h=x=y  comm=Web Content  ");
}

TEST(BpftraceJson, KeysNeverDuplicateOrShadowTheRecordShape) {
  OutputLineParser parser;
  std::string_view line = R"({"type": "printf", "data": "type=evil message=evil x=1 x=2 1bad=3 -y=4"})";
  ASSERT_EQ(parser.parse(line), LineOutcome::Record);
  json record = json::parse(parser.fields());
  EXPECT_EQ(record["type"], "printf");
  EXPECT_EQ(record["message"], "type=evil message=evil x=1 x=2 1bad=3 -y=4");
  EXPECT_EQ(record["x"], 1) << "the first x wins; 1bad and -y are no keys";
  EXPECT_EQ(parser.fields().find("\"type\":\"evil\""), std::string::npos);
  EXPECT_EQ(record.size(), 3u);
}

TEST(BpftraceJson, MapsHistogramsAndStatsKeepTheirStructure) {
  OutputLineParser parser;
  json map = parse_record(parser, R"({"type": "map", "data": {"@m": {"2,b": 4, "1,a": 3}}})");
  EXPECT_EQ(map, json::parse(R"({"type":"map","kind":"map","map":"@m","value":{"2,b":4,"1,a":3}})"));
  EXPECT_EQ(parser.fields(), R"({"type":"map","kind":"map","map":"@m","value":{"2,b":4,"1,a":3}})")
      << "bpftrace's key order is kept";

  json hist = parse_record(parser, R"({"type": "hist", "data": {"@h": [{"min": 8, "max": 15, "count": 1}]}})");
  EXPECT_EQ(hist["kind"], "hist");
  EXPECT_EQ(hist["map"], "@h");
  EXPECT_EQ(hist["value"][0]["count"], 1);

  json stats = parse_record(parser, R"({"type": "stats", "data": {"@s": {"count": 1, "average": 4, "total": 4}}})");
  EXPECT_EQ(stats["kind"], "stats");
  EXPECT_EQ(stats["value"]["total"], 4);

  json scalar = parse_record(parser, R"({"type": "map", "data": {"@c": 1}})");
  EXPECT_EQ(scalar["value"], 1);
  EXPECT_EQ(parser.identity().pid, -1);
  EXPECT_EQ(parser.identity().tgid, -1);
}

TEST(BpftraceJson, TextMessagesAndValues) {
  OutputLineParser parser;
  EXPECT_EQ(parse_record(parser, R"({"type": "time", "data": "03:40:12\n"})"),
            json::parse(R"({"type":"time","message":"03:40:12"})"));
  EXPECT_EQ(parse_record(parser, R"({"type": "join", "data": "/bin/echo a=b"})"),
            json::parse(R"({"type":"join","message":"/bin/echo a=b"})"))
      << "only printf text is split into fields";
  EXPECT_EQ(parse_record(parser, R"({"type": "cat", "data": "line1\n"})")["message"], "line1");
  EXPECT_EQ(parse_record(parser, R"({"type": "value", "data": [1,"x"]})"),
            json::parse(R"({"type":"value","value":[1,"x"]})"));
}

TEST(BpftraceJson, ControlLinesAndBlankLinesEmitNothing) {
  OutputLineParser parser;
  EXPECT_EQ(parser.parse(R"({"type": "attached_probes", "data": {"probes": 2}})"), LineOutcome::Control);
  EXPECT_EQ(parser.parse(R"({"type": "lost_events", "data": {"events": 12}})"), LineOutcome::Control);
  EXPECT_EQ(parser.parse(""), LineOutcome::Control);
  EXPECT_EQ(parser.parse(" \r"), LineOutcome::Control);
  EXPECT_TRUE(parser.fields().empty());
}

TEST(BpftraceJson, PlainTextLinesBecomeTextRecords) {
  OutputLineParser parser;
  json record = parse_record(parser, "Attaching 1 probe...");
  EXPECT_EQ(record, json::parse(R"({"type":"text","message":"Attaching 1 probe..."})"));
  record = parse_record(parser, "opened pid=12 comm=cat\r");
  EXPECT_EQ(record["message"], "opened pid=12 comm=cat");
  EXPECT_EQ(record["pid"], 12);
  EXPECT_EQ(parser.identity().tgid, 12);
}

TEST(BpftraceJson, JunkIsRefusedWithAReason) {
  OutputLineParser parser;
  EXPECT_EQ(parser.parse(R"({"type": "printf", "data": "trunc)"), LineOutcome::Invalid);
  EXPECT_NE(parser.error().find("not valid JSON"), std::string::npos) << parser.error();
  EXPECT_TRUE(parser.fields().empty());

  EXPECT_EQ(parser.parse(R"({"data": "x"})"), LineOutcome::Invalid);
  EXPECT_NE(parser.error().find("\"type\""), std::string::npos) << parser.error();
  EXPECT_EQ(parser.parse(R"({"type": 5, "data": "x"})"), LineOutcome::Invalid);
  EXPECT_EQ(parser.parse(R"({"type": "printf"})"), LineOutcome::Invalid);
  EXPECT_NE(parser.error().find("\"data\""), std::string::npos) << parser.error();
  EXPECT_EQ(parser.parse(R"({"type": "map", "data": {"@a": 1, "@b": 2}})"), LineOutcome::Invalid);
  EXPECT_EQ(parser.parse(R"({"type": "hist", "data": 3})"), LineOutcome::Invalid);
  EXPECT_TRUE(parser.fields().empty());

  std::string deep = R"({"type": "value", "data": )" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(parser.parse(deep), LineOutcome::Invalid);
  EXPECT_NE(parser.error().find("deeper"), std::string::npos) << parser.error();
}

TEST(BpftraceJson, InvalidUtf8BecomesReplacementCharacters) {
  OutputLineParser parser;
  std::string line = "{\"type\": \"printf\", \"data\": \"path=/tmp/\xff\xc3(x comm=ok\\n\"}";
  json record = parse_record(parser, line);
  EXPECT_EQ(record["path"], "/tmp/\xEF\xBF\xBD\xEF\xBF\xBD(x");
  EXPECT_EQ(record["comm"], "ok");
  json text = parse_record(parser, std::string("raw \xe2\x82 end"));
  EXPECT_EQ(text["message"], "raw \xEF\xBF\xBD\xEF\xBF\xBD end");
}

TEST(BpftraceJson, ControlCharactersAreEscaped) {
  OutputLineParser parser;
  json record = parse_record(parser, R"({"type": "printf", "data": "a\tb \"q\" \\ \u0001 end\n"})");
  EXPECT_EQ(record["message"], "a\tb \"q\" \\ \x01 end");
}

TEST(BpftraceDefaultProcessor, IsRegisteredAndFillsTheEnvelope) {
  const ProcessorFactory* factory = find_builtin_processor("bpftrace_default");
  ASSERT_NE(factory, nullptr);
  auto processor = (*factory)(ProcessorContext{});
  ASSERT_TRUE(processor.has_value()) << processor.error().message;

  auto bytes = [](std::string_view text) { return std::as_bytes(std::span(text.data(), text.size())); };
  std::string fields = "prefix";
  RecordMeta meta;
  EXPECT_EQ((*processor)->process(bytes(R"({"type": "printf", "data": "pid=10 tid=11 comm=sh\n"})"), meta, fields),
            ProcessOutcome::Emitted);
  EXPECT_EQ(meta.tgid, 10);
  EXPECT_EQ(meta.pid, 11);
  EXPECT_EQ(meta.comm, "sh");
  EXPECT_EQ(json::parse(fields.substr(6))["message"], "pid=10 tid=11 comm=sh");

  fields.clear();
  RecordMeta control_meta;
  EXPECT_EQ((*processor)->process(bytes(R"({"type": "lost_events", "data": {"events": 3}})"), control_meta, fields),
            ProcessOutcome::Skipped);
  EXPECT_EQ((*processor)->process(bytes("{oops"), control_meta, fields), ProcessOutcome::Failed);
  EXPECT_TRUE(fields.empty());
  EXPECT_NE((*processor)->error().find("not valid JSON"), std::string::npos);
}

// The same parser behind the user_so C ABI: bpftrace_default.so as the talk's spec loads it.
class BpftraceDefaultPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string path = EA_BUILD_DIR "/plugins/bpftrace_default.so";
    if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is not built (ninja bpftrace_default)";
    handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(handle_, nullptr) << dlerror();
    auto version = reinterpret_cast<ea_plugin_abi_version_fn>(dlsym(handle_, "ea_plugin_abi_version"));
    ASSERT_NE(version, nullptr);
    EXPECT_EQ(version(), EA_PLUGIN_ABI_VERSION);
    process_ = reinterpret_cast<ea_process_fn>(dlsym(handle_, "process"));
    ASSERT_NE(process_, nullptr);
  }
  void TearDown() override {
    if (handle_) dlclose(handle_);
  }

  // Calls process() on `line` with a `capacity`-byte result buffer, as the agent does.
  ea_tracer_ctx call(std::string_view line, uint32_t capacity) {
    result_.assign(capacity, 0);
    ea_tracer_ctx ctx{};
    ctx.abi_version = EA_PLUGIN_ABI_VERSION;
    ctx.ring_ctx.data = reinterpret_cast<const uint8_t*>(line.data());
    ctx.ring_ctx.len = static_cast<uint32_t>(line.size());
    ctx.res_ctx.data = result_.data();
    ctx.res_ctx.cap = capacity;
    ctx.meta.pid = -1;
    ctx.meta.tgid = -1;
    process_(&ctx);
    return ctx;
  }

  void* handle_ = nullptr;
  ea_process_fn process_ = nullptr;
  std::vector<uint8_t> result_;
};

TEST_F(BpftraceDefaultPluginTest, GivesTheBuiltinsRecordAndAsksForRoomWhenShort) {
  std::string_view line = R"({"type": "printf", "data": "OOM KILL: ts=1 pid=4242 tgid=4240 comm=stress msg=Out of memory\n"})";
  OutputLineParser parser;
  ASSERT_EQ(parser.parse(line), LineOutcome::Record);

  ea_tracer_ctx small = call(line, 8);
  EXPECT_EQ(small.err_ctx.err_code, EA_ERR_RESULT_TOO_SMALL);
  EXPECT_EQ(small.res_ctx.len, parser.fields().size()) << "the size it needs";

  ea_tracer_ctx ctx = call(line, small.res_ctx.len);
  ASSERT_EQ(ctx.err_ctx.err_code, EA_OK) << ctx.err_ctx.err_msg;
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(result_.data()), ctx.res_ctx.len), parser.fields());
  EXPECT_EQ(ctx.meta.pid, 4242);
  EXPECT_EQ(ctx.meta.tgid, 4240);
  EXPECT_STREQ(ctx.meta.comm, "stress");
}

TEST_F(BpftraceDefaultPluginTest, SkipsControlLinesAndRefusesJunk) {
  EXPECT_EQ(call(R"({"type": "attached_probes", "data": {"probes": 1}})", 256).err_ctx.err_code, EA_SKIP);
  ea_tracer_ctx junk = call("{junk", 256);
  EXPECT_NE(junk.err_ctx.err_code, EA_OK);
  EXPECT_NE(junk.err_ctx.err_code, EA_SKIP);
  EXPECT_NE(junk.err_ctx.err_code, EA_ERR_RESULT_TOO_SMALL);
  EXPECT_NE(std::string(junk.err_ctx.err_msg).find("not valid JSON"), std::string::npos) << junk.err_ctx.err_msg;
  EXPECT_EQ(junk.res_ctx.len, 0u);
}

}  // namespace
}  // namespace ea
