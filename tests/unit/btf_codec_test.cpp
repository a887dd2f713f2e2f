// BTF encoding of spec values and decoding of records, against the BTF of a real fixture object
// (tests/fixtures/bpf/obj_types.bpf.c); no kernel needed.
#include <bpf/btf.h>
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "loader/btf_encode.h"
#include "pipeline/btf_decoder.h"

namespace ea {
namespace {

// Mirrors of the fixture's structs, laid out by the host compiler: the tests craft and check
// bytes through these, independently of the code under test.
struct Peer {
  uint16_t port;
  uint8_t addr[4];
};
struct Event {
  uint32_t pid;
  uint32_t tgid;
  char comm[16];
  uint32_t kind;
  Peer peer;
  int32_t delta;
  unsigned int flag : 1;
  unsigned int level : 3;
  uint64_t cookie;
  bool ok;
};
struct Limits {
  uint32_t max;
  uint16_t port;
  char tag[8];
  unsigned int enabled : 1;
  unsigned int level : 3;
  int delta : 4;
};
struct ConnKey {
  uint32_t addr;
  uint16_t port;
  uint16_t proto;
};

class BtfCodec : public ::testing::Test {
 protected:
  void SetUp() override {
    btf_.reset(btf__parse(EA_BUILD_DIR "/tests/bpf/obj_types.bpf.o", nullptr));
    ASSERT_TRUE(btf_) << "cannot read BTF of the obj_types fixture";
  }

  uint32_t struct_id(const char* name) const {
    int id = btf__find_by_name_kind(btf_.get(), name, BTF_KIND_STRUCT);
    EXPECT_GT(id, 0) << "struct " << name;
    return static_cast<uint32_t>(id);
  }

  // The declared type of global `name` (const volatile and all).
  uint32_t variable_type(const char* name) const {
    int id = btf__find_by_name_kind(btf_.get(), name, BTF_KIND_VAR);
    EXPECT_GT(id, 0) << "variable " << name;
    return btf__type_by_id(btf_.get(), static_cast<uint32_t>(id))->type;
  }

  template <class T>
  Result<void> encode(uint32_t type_id, const Value& value, T& out, std::string_view path = "v") {
    return btf_encode(btf_.get(), type_id, value, std::as_writable_bytes(std::span(&out, 1)), path);
  }

  std::string encode_error(uint32_t type_id, const Value& value, size_t size, std::string_view path = "v") {
    std::vector<std::byte> out(size);
    auto result = btf_encode(btf_.get(), type_id, value, out, path);
    EXPECT_FALSE(result) << "accepted " << value.dump();
    return result ? std::string() : result.error().message;
  }

  std::unique_ptr<struct btf, decltype(&btf__free)> btf_{nullptr, btf__free};
};

Event crafted_event() {
  Event event{};
  event.pid = 11;
  event.tgid = 22;
  std::strcpy(event.comm, "nginx \"w\"");
  event.kind = 2;
  event.peer = {8080, {127, 0, 0, 1}};
  event.delta = -5;
  event.flag = 1;
  event.level = 5;
  event.cookie = UINT64_MAX;
  event.ok = true;
  return event;
}

TEST_F(BtfCodec, MirrorsMatchTheFixtureLayout) {
  EXPECT_EQ(btf__resolve_size(btf_.get(), struct_id("event")), static_cast<long>(sizeof(Event)));
  EXPECT_EQ(btf__resolve_size(btf_.get(), struct_id("limits")), static_cast<long>(sizeof(Limits)));
  EXPECT_EQ(btf__resolve_size(btf_.get(), struct_id("conn_key")), static_cast<long>(sizeof(ConnKey)));
}

TEST_F(BtfCodec, DecodesACraftedRecordExactly) {
  Event event = crafted_event();
  std::string json;
  ASSERT_TRUE(append_btf_value_json(btf_.get(), static_cast<int>(struct_id("event")), std::as_bytes(std::span(&event, 1)),
                                    json));
  EXPECT_EQ(json,
            R"({"pid":11,"tgid":22,"comm":"nginx \"w\"","kind":"EVENT_GETPPID","peer":{"port":8080,"addr":[127,0,0,1]},)"
            R"("delta":-5,"flag":1,"level":5,"cookie":18446744073709551615,"ok":true})");
}

TEST_F(BtfCodec, DecoderProcessorFillsTheEnvelope) {
  auto decoder = make_btf_decoder(btf_.get(), static_cast<int>(struct_id("event")));
  ASSERT_TRUE(decoder) << decoder.error().message;
  Event event = crafted_event();
  std::strcpy(event.comm, "nginx");
  RecordMeta meta;
  std::string fields = "previous;";
  ASSERT_EQ((*decoder)->process(std::as_bytes(std::span(&event, 1)), meta, fields), ProcessOutcome::Emitted);
  EXPECT_TRUE(fields.starts_with("previous;{\"pid\":11,")) << fields;
  EXPECT_EQ(meta.pid, 11);
  EXPECT_EQ(meta.tgid, 22);
  EXPECT_EQ(meta.comm, "nginx");
}

TEST_F(BtfCodec, ShortRecordFailsWithoutOutput) {
  auto decoder = make_btf_decoder(btf_.get(), static_cast<int>(struct_id("event")));
  ASSERT_TRUE(decoder) << decoder.error().message;
  Event event = crafted_event();
  RecordMeta meta;
  std::string fields = "kept";
  auto bytes = std::as_bytes(std::span(&event, 1)).first(sizeof(Event) - 1);
  EXPECT_EQ((*decoder)->process(bytes, meta, fields), ProcessOutcome::Failed);
  EXPECT_EQ(fields, "kept");
  EXPECT_EQ(meta.pid, -1);
  EXPECT_EQ(std::string((*decoder)->error()),
            "record of 63 bytes is shorter than struct event (64 bytes): the channel's `struct` does not match what "
            "the program sends");
  std::string out;
  EXPECT_FALSE(append_btf_value_json(btf_.get(), static_cast<int>(struct_id("event")), bytes, out));
  EXPECT_EQ(out, "");
}

TEST_F(BtfCodec, InvalidUtf8InStringsStaysValidJson) {
  Event event = crafted_event();
  std::memcpy(event.comm, "a\xff\xc3\xa9\x01z", 7);  // stray byte, é, a control character
  std::string json;
  ASSERT_TRUE(append_btf_value_json(btf_.get(), static_cast<int>(struct_id("event")), std::as_bytes(std::span(&event, 1)),
                                    json));
  EXPECT_NE(json.find(R"("comm":"a\u00ff)" "\xc3\xa9" R"(\u0001z")"), std::string::npos) << json;
}

TEST_F(BtfCodec, FlexibleArrayTakesTheRestOfTheRecord) {
  const unsigned char record[] = {3, 0, 'a', 'b', 'c', 0, 'x'};
  std::string json;
  ASSERT_TRUE(append_btf_value_json(btf_.get(), static_cast<int>(struct_id("blob")),
                                    std::as_bytes(std::span(record)), json));
  EXPECT_EQ(json, R"({"length":3,"data":"abc"})");
}

TEST_F(BtfCodec, DecoderRefusesNonStructTypes) {
  auto decoder = make_btf_decoder(btf_.get(), static_cast<int>(variable_type("threshold")));
  ASSERT_FALSE(decoder);
  EXPECT_EQ(decoder.error().message,
            "BTF type __u32 is not a struct or union, so records cannot be decoded into fields");
}

TEST_F(BtfCodec, EncodesAStructWithBitfieldsStringsAndHex) {
  Limits limits{};
  limits.tag[7] = 'x';  // must be overwritten by the NUL padding
  auto result = encode(variable_type("limits"),
                       Value::parse(R"({"max": 100, "port": "0x1f90", "tag": "web", "enabled": true, "level": 5,
                                        "delta": -3})"),
                       limits);
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(limits.max, 100u);
  EXPECT_EQ(limits.port, 0x1f90);
  EXPECT_EQ(std::string(limits.tag, sizeof(limits.tag)), std::string("web\0\0\0\0\0", 8));
  EXPECT_EQ(limits.enabled, 1u);
  EXPECT_EQ(limits.level, 5u);
  EXPECT_EQ(limits.delta, -3);
}

TEST_F(BtfCodec, UnnamedStructMembersKeepTheirBytes) {
  Limits limits{};
  limits.max = 7;
  limits.level = 2;
  ASSERT_TRUE(encode(variable_type("limits"), Value::parse(R"({"port": 443})"), limits));
  EXPECT_EQ(limits.max, 7u);
  EXPECT_EQ(limits.level, 2u);
  EXPECT_EQ(limits.port, 443);
}

TEST_F(BtfCodec, EncodesScalarsEnumsAndArrays) {
  int16_t negative = 0;
  ASSERT_TRUE(encode(variable_type("negative"), Value(-32768), negative));
  EXPECT_EQ(negative, -32768);

  uint32_t mode = 0;
  ASSERT_TRUE(encode(variable_type("mode"), Value("MODE_SAFE"), mode));
  EXPECT_EQ(mode, 7u);
  ASSERT_TRUE(encode(variable_type("mode"), Value(1), mode));
  EXPECT_EQ(mode, 1u);

  bool verbose = false;
  ASSERT_TRUE(encode(variable_type("verbose"), Value(true), verbose));
  EXPECT_TRUE(verbose);

  uint16_t ports[4] = {9, 9, 9, 9};
  ASSERT_TRUE(encode(variable_type("ports"), Value::parse("[80, 443]"), ports));
  EXPECT_EQ(ports[0], 80);
  EXPECT_EQ(ports[1], 443);
  EXPECT_EQ(ports[2], 0);
  EXPECT_EQ(ports[3], 0);

  uint8_t mac[6] = {};
  ASSERT_TRUE(encode(variable_type("mac"), Value("0x0011223344aa"), mac));
  EXPECT_EQ(mac[0], 0x00);
  EXPECT_EQ(mac[5], 0xaa);
  ASSERT_TRUE(encode(variable_type("mac"), Value::parse("[1, 2, 255]"), mac));
  EXPECT_EQ(mac[2], 255);
  EXPECT_EQ(mac[3], 0);

  char comm[16];
  ASSERT_TRUE(encode(variable_type("target_comm"), Value("0x41"), comm));  // char arrays take text verbatim
  EXPECT_STREQ(comm, "0x41");

  int64_t offset = 0;
  ASSERT_TRUE(encode(variable_type("offset_ns"), Value("-0x10"), offset));
  EXPECT_EQ(offset, -16);

  ConnKey key{};
  ASSERT_TRUE(encode(struct_id("conn_key"), Value::parse(R"({"addr": 2130706433, "port": 80, "proto": 6})"), key));
  EXPECT_EQ(key.addr, 0x7f000001u);
  EXPECT_EQ(key.proto, 6);
}

TEST_F(BtfCodec, EncodingErrorsSayWhatAndWhere) {
  EXPECT_EQ(encode_error(variable_type("limits"), Value::parse(R"({"port": 70000})"), sizeof(Limits), "limits"),
            "limits.port: 70000 does not fit in __u16 (0..65535)");
  EXPECT_EQ(encode_error(variable_type("limits"), Value::parse(R"({"prot": 1})"), sizeof(Limits), "limits"),
            "limits.prot: struct limits has no field 'prot'; its fields: max, port, tag, enabled, level, delta");
  EXPECT_EQ(encode_error(variable_type("limits"), Value::parse(R"({"level": 8})"), sizeof(Limits), "limits"),
            "limits.level: 8 does not fit in unsigned int:3 (0..7)");
  EXPECT_EQ(encode_error(variable_type("limits"), Value::parse(R"({"delta": -9})"), sizeof(Limits), "limits"),
            "limits.delta: -9 does not fit in int:4 (-8..7)");
  EXPECT_EQ(encode_error(variable_type("limits"), Value(5), sizeof(Limits), "limits"),
            "limits: expected a map of field names for struct limits, got the number 5");
  EXPECT_EQ(encode_error(variable_type("target_comm"), Value("a-name-that-is-too-long"), 16, "target_comm"),
            "target_comm: \"a-name-that-is-too-long\" is 23 characters; char[16] holds at most 15 plus "
            "the terminating NUL");
  EXPECT_EQ(encode_error(variable_type("mode"), Value("MODE_TURBO"), 4, "mode"),
            "mode: 'MODE_TURBO' is not a value of enum run_mode; its values: MODE_OFF, MODE_FAST, MODE_SAFE");
  EXPECT_EQ(encode_error(variable_type("ports"), Value::parse("[1, 2, 3, 4, 5]"), 8, "ports"),
            "ports: 5 values given, __u16[4] holds 4");
  EXPECT_EQ(encode_error(variable_type("mac"), Value("0x00112233445566"), 6, "mac"),
            "mac: 7 bytes given, __u8[6] holds 6");
  EXPECT_EQ(encode_error(variable_type("negative"), Value(-32769), 2, "negative"),
            "negative: -32769 does not fit in __s16 (-32768..32767)");
  EXPECT_EQ(encode_error(variable_type("threshold"), Value(1.5), 4, "threshold"),
            "threshold: expected an integer, got the number 1.5");
  EXPECT_EQ(encode_error(variable_type("threshold"), Value("ten"), 4, "threshold"),
            "threshold: expected an integer, got the string \"ten\"");
  EXPECT_EQ(encode_error(variable_type("verbose"), Value("yes"), 1, "verbose"),
            "verbose: expected true or false, got the string \"yes\"");
  EXPECT_EQ(encode_error(variable_type("ports"), Value::parse(R"([1, "x"])"), 8, "ports"),
            "ports[1]: expected an integer, got the string \"x\"");
}

TEST_F(BtfCodec, UntypedValuesForMapsWithoutBtf) {
  uint32_t number = 0;
  ASSERT_TRUE(encode_untyped(Value(42), std::as_writable_bytes(std::span(&number, 1)), "key"));
  EXPECT_EQ(number, 42u);
  uint8_t bytes[4] = {9, 9, 9, 9};
  ASSERT_TRUE(encode_untyped(Value("0x0102"), std::as_writable_bytes(std::span(bytes)), "key"));
  EXPECT_EQ(bytes[0], 1);
  EXPECT_EQ(bytes[1], 2);
  EXPECT_EQ(bytes[2], 0);
  auto too_big = encode_untyped(Value(70000), std::as_writable_bytes(std::span(bytes).first(2)), "key");
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().message, "key: 70000 does not fit in 2 bytes (0..65535)");
}

}  // namespace
}  // namespace ea
