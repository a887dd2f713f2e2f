// HPACK decoder: RFC 7541 Appendix C examples, table bookkeeping and hostile input.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "l7/hpack_decoder.h"
#include "l7/hpack_huffman.h"

using ea::l7::HeaderField;
using ea::l7::HpackDecoder;
using ea::l7::HpackLimits;
using ea::l7::HpackStatus;

namespace {

std::vector<uint8_t> hex(std::string_view text) {
  std::vector<uint8_t> out;
  std::string digits;
  for (char c : text)
    if (std::isxdigit(static_cast<unsigned char>(c))) digits.push_back(c);
  for (size_t i = 0; i + 1 < digits.size(); i += 2)
    out.push_back(static_cast<uint8_t>(std::stoul(digits.substr(i, 2), nullptr, 16)));
  return out;
}

std::vector<HeaderField> decode_ok(HpackDecoder& d, std::string_view block) {
  std::vector<HeaderField> out;
  auto bytes = hex(block);
  HpackStatus s = d.decode(bytes, out);
  EXPECT_EQ(s, HpackStatus::Ok) << ea::l7::describe(s);
  return out;
}

const std::vector<HeaderField> kRequest1 = {
    {":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "www.example.com"}};
const std::vector<HeaderField> kRequest2 = {{":method", "GET"},
                                            {":scheme", "http"},
                                            {":path", "/"},
                                            {":authority", "www.example.com"},
                                            {"cache-control", "no-cache"}};
const std::vector<HeaderField> kRequest3 = {{":method", "GET"},
                                            {":scheme", "https"},
                                            {":path", "/index.html"},
                                            {":authority", "www.example.com"},
                                            {"custom-key", "custom-value"}};
const std::vector<HeaderField> kResponse1 = {{":status", "302"},
                                             {"cache-control", "private"},
                                             {"date", "Mon, 21 Oct 2013 20:13:21 GMT"},
                                             {"location", "https://www.example.com"}};
const std::vector<HeaderField> kResponse2 = {{":status", "307"},
                                             {"cache-control", "private"},
                                             {"date", "Mon, 21 Oct 2013 20:13:21 GMT"},
                                             {"location", "https://www.example.com"}};
const std::vector<HeaderField> kResponse3 = {
    {":status", "200"},
    {"cache-control", "private"},
    {"date", "Mon, 21 Oct 2013 20:13:22 GMT"},
    {"location", "https://www.example.com"},
    {"content-encoding", "gzip"},
    {"set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"}};

}  // namespace

TEST(HpackHuffmanTable, IsACompleteCanonicalPrefixCode) {
  // Kraft sum of exactly 1 (complete code) and codes of each length consecutive in symbol order.
  double kraft = 0;
  for (const auto& c : ea::l7::kHpackHuffmanCodes) kraft += std::ldexp(1.0, -c.bits);
  EXPECT_DOUBLE_EQ(kraft, 1.0);
  std::set<std::pair<uint8_t, uint32_t>> seen;
  for (const auto& c : ea::l7::kHpackHuffmanCodes) {
    EXPECT_LT(c.code, 1u << c.bits);
    EXPECT_TRUE(seen.insert({c.bits, c.code}).second);
  }
  EXPECT_EQ(ea::l7::kHpackHuffmanCodes[256].code, 0x3fffffffu);  // EOS
  EXPECT_EQ(ea::l7::kHpackHuffmanCodes[256].bits, 30);
  EXPECT_EQ(ea::l7::kHpackHuffmanCodes['a'].code, 0x3u);
  EXPECT_EQ(ea::l7::kHpackHuffmanCodes[0].code, 0x1ff8u);
}

TEST(HpackDecoderRfc, C2LiteralRepresentations) {
  HpackDecoder d;
  EXPECT_EQ(decode_ok(d, "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
            (std::vector<HeaderField>{{"custom-key", "custom-header"}}));
  EXPECT_EQ(d.dynamic_size(), 55u);
  HpackDecoder d2;
  EXPECT_EQ(decode_ok(d2, "040c 2f73 616d 706c 652f 7061 7468"),
            (std::vector<HeaderField>{{":path", "/sample/path"}}));
  EXPECT_EQ(d2.dynamic_entries(), 0u);
  HpackDecoder d3;
  EXPECT_EQ(decode_ok(d3, "1008 7061 7373 776f 7264 0673 6563 7265 74"),
            (std::vector<HeaderField>{{"password", "secret"}}));
  EXPECT_EQ(d3.dynamic_entries(), 0u);
  HpackDecoder d4;
  EXPECT_EQ(decode_ok(d4, "82"), (std::vector<HeaderField>{{":method", "GET"}}));
}

TEST(HpackDecoderRfc, C3RequestsWithoutHuffman) {
  HpackDecoder d;
  EXPECT_EQ(decode_ok(d, "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"), kRequest1);
  EXPECT_EQ(d.dynamic_size(), 57u);
  EXPECT_EQ(decode_ok(d, "8286 84be 5808 6e6f 2d63 6163 6865"), kRequest2);
  EXPECT_EQ(d.dynamic_size(), 110u);
  EXPECT_EQ(decode_ok(d, "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"),
            kRequest3);
  EXPECT_EQ(d.dynamic_size(), 164u);
  EXPECT_EQ(d.dynamic_entries(), 3u);
}

TEST(HpackDecoderRfc, C4RequestsWithHuffman) {
  HpackDecoder d;
  EXPECT_EQ(decode_ok(d, "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"), kRequest1);
  EXPECT_EQ(decode_ok(d, "8286 84be 5886 a8eb 1064 9cbf"), kRequest2);
  EXPECT_EQ(decode_ok(d, "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"), kRequest3);
  EXPECT_EQ(d.dynamic_size(), 164u);
}

TEST(HpackDecoderRfc, C5ResponsesWithoutHuffmanEvict) {
  HpackDecoder d;
  d.set_max_table_size_setting(256);
  EXPECT_EQ(decode_ok(d,
                      "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 "
                      "3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 "
                      "7861 6d70 6c65 2e63 6f6d"),
            kResponse1);
  EXPECT_EQ(d.dynamic_size(), 222u);
  EXPECT_EQ(decode_ok(d, "4803 3330 37c1 c0bf"), kResponse2);
  EXPECT_EQ(d.dynamic_size(), 222u);
  EXPECT_EQ(decode_ok(d,
                      "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 "
                      "474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 "
                      "454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 "
                      "6572 7369 6f6e 3d31"),
            kResponse3);
  EXPECT_EQ(d.dynamic_size(), 215u);
  EXPECT_EQ(d.dynamic_entries(), 3u);
}

TEST(HpackDecoderRfc, C6ResponsesWithHuffmanEvict) {
  HpackDecoder d;
  d.set_max_table_size_setting(256);
  EXPECT_EQ(decode_ok(d,
                      "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 "
                      "82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3"),
            kResponse1);
  EXPECT_EQ(decode_ok(d, "4883 640e ffc1 c0bf"), kResponse2);
  EXPECT_EQ(decode_ok(d,
                      "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b "
                      "d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 "
                      "0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07"),
            kResponse3);
  EXPECT_EQ(d.dynamic_size(), 215u);
}

TEST(HpackDecoder, TableSizeUpdateEvictsAndIsBounded) {
  HpackDecoder d;
  decode_ok(d, "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d");
  EXPECT_EQ(d.dynamic_entries(), 1u);
  decode_ok(d, "20 82");  // size update to 0, then :method GET
  EXPECT_EQ(d.dynamic_entries(), 0u);
  EXPECT_EQ(d.dynamic_capacity(), 0u);
  std::vector<HeaderField> out;
  auto over = hex("3fe2 1f");  // update to 4097 > SETTINGS 4096
  EXPECT_EQ(d.decode(over, out), HpackStatus::BadTableSizeUpdate);
  HpackDecoder d2;
  auto late = hex("82 20");  // update after a field
  EXPECT_EQ(d2.decode(late, out), HpackStatus::BadTableSizeUpdate);
}

TEST(HpackDecoderHostile, IndexErrors) {
  std::vector<HeaderField> out;
  HpackDecoder d;
  auto zero = hex("80");
  EXPECT_EQ(d.decode(zero, out), HpackStatus::IndexZero);
  HpackDecoder d2;
  auto past = hex("be");  // index 62 with an empty table
  EXPECT_EQ(d2.decode(past, out), HpackStatus::IndexOutOfRange);
  HpackDecoder unknown(/*table_known=*/false);
  EXPECT_EQ(unknown.decode(past, out), HpackStatus::UnknownDynamicIndex);
  EXPECT_FALSE(unknown.reliable());
}

TEST(HpackDecoderHostile, UnknownTableRecoversWithStaticAndLiteralBlocks) {
  HpackDecoder d(/*table_known=*/false);
  EXPECT_FALSE(d.reliable());
  // A block using only static entries and literals decodes and makes the decoder reliable;
  // the entry it inserts is then usable even though older entries are unknown.
  EXPECT_EQ(decode_ok(d, "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"), kRequest1);
  EXPECT_TRUE(d.reliable());
  EXPECT_FALSE(d.table_known());
  EXPECT_EQ(decode_ok(d, "8286 84be"), (std::vector<HeaderField>{{":method", "GET"},
                                                                {":scheme", "http"},
                                                                {":path", "/"},
                                                                {":authority", "www.example.com"}}));
  std::vector<HeaderField> out;
  auto older = hex("bf");  // index 63: inserted before we started
  EXPECT_EQ(d.decode(older, out), HpackStatus::UnknownDynamicIndex);
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(d.reliable());
  EXPECT_EQ(d.dynamic_entries(), 0u);  // dropped: the failed block may have changed the table
}

TEST(HpackDecoderHostile, LengthsIntegersAndHuffman) {
  std::vector<HeaderField> out;
  HpackLimits small;
  small.max_string_length = 5;
  HpackDecoder d(true, small);
  auto long_name = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
  EXPECT_EQ(d.decode(long_name, out), HpackStatus::StringTooLong);
  HpackDecoder d2;
  auto truncated = hex("400a 6375");
  EXPECT_EQ(d2.decode(truncated, out), HpackStatus::Truncated);
  auto huge_length = hex("407f ffff ffff 0f");  // name length > 2^32
  EXPECT_EQ(d2.decode(huge_length, out), HpackStatus::IntegerOverflow);
  auto long_but_absent = hex("407f ffff ff07");  // ~2 GB name with no bytes
  EXPECT_EQ(d2.decode(long_but_absent, out), HpackStatus::Truncated);
  // Huffman "a" is 00011; padding must be ones: 00011|000 is bad, 00011|111 good.
  auto bad_padding = hex("4081 18 00");
  EXPECT_EQ(d2.decode(bad_padding, out), HpackStatus::BadHuffman);
  auto long_padding = hex("4082 1fff 00");  // 'a' then 8 bits of padding
  EXPECT_EQ(d2.decode(long_padding, out), HpackStatus::BadHuffman);
  auto eos = hex("4084 ffff ffff 00");  // EOS symbol in a string
  EXPECT_EQ(d2.decode(eos, out), HpackStatus::BadHuffman);
  HpackDecoder d3;
  auto good = hex("4081 1f 00");
  EXPECT_EQ(d3.decode(good, out), HpackStatus::Ok);
  EXPECT_EQ(out, (std::vector<HeaderField>{{"a", ""}}));
}

TEST(HpackDecoderHostile, HeaderListSizeCap) {
  HpackLimits small;
  small.max_header_list_size = 100;
  HpackDecoder d(true, small);
  std::vector<HeaderField> out;
  auto many = hex("8282828282");  // 5 x (7 + 3 + 32) = 210 > 100
  EXPECT_EQ(d.decode(many, out), HpackStatus::HeaderListTooLarge);
}

TEST(HpackDecoderHostile, RandomBytesNeverCrash) {
  std::mt19937 rng(7);
  HpackDecoder d;
  std::vector<HeaderField> out;
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> block(rng() % 64);
    for (auto& b : block) b = static_cast<uint8_t>(rng());
    (void)d.decode(block, out);
    EXPECT_LE(d.dynamic_size(), d.dynamic_capacity());
  }
}
