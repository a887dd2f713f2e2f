// Map-metric building blocks that need no kernel: label decoders, kernel symbol lookup, bucket
// layouts, and decoding of entries (synthetic map contents, hostile ones included).
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include <gtest/gtest.h>

#include "metrics/bpf_map_decoders.h"
#include "metrics/bpf_map_histogram.h"
#include "metrics/bpf_map_ksyms.h"
#include "metrics/bpf_map_metrics.h"
#include "metrics/bpf_map_reader.h"

#include <linux/bpf.h>

namespace ea {
namespace {

std::vector<std::byte> bytes(std::initializer_list<int> values) {
  std::vector<std::byte> out;
  for (int v : values) out.push_back(static_cast<std::byte>(v));
  return out;
}

std::vector<std::byte> text_bytes(std::string_view text, size_t size) {
  std::vector<std::byte> out(size);
  std::memcpy(out.data(), text.data(), std::min(size, text.size()));
  return out;
}

LabelDecoder decoder(LabelDecoderKind kind) { return LabelDecoder{.kind = kind}; }

MapMetricLabel label(std::string name, uint32_t size, std::vector<LabelDecoder> decoders) {
  return MapMetricLabel{std::move(name), size, std::move(decoders), {"t.yaml", 3, 5}};
}

std::optional<std::string> decode(const MapMetricLabel& spec, std::span<const std::byte> key) {
  auto chain = LabelDecoderChain::make(spec);
  EXPECT_TRUE(chain) << chain.error().message;
  return chain->decode(key);
}

TEST(BpfMapDecoders, IntegersInEitherByteOrder) {
  auto two = bytes({0x01, 0xbb});
  EXPECT_EQ(read_unsigned(two, ByteOrder::Big), 443u);
  EXPECT_EQ(read_unsigned(two, ByteOrder::Little), 0xbb01u);
  auto eight = bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
  EXPECT_EQ(read_unsigned(eight, ByteOrder::Host), UINT64_MAX);
  EXPECT_EQ(read_signed(eight, ByteOrder::Host), -1);
  EXPECT_EQ(read_signed(bytes({0xfe, 0xff}), ByteOrder::Little), -2);
  EXPECT_EQ(read_signed(bytes({0x80}), ByteOrder::Little), -128);
  EXPECT_EQ(read_unsigned(bytes({1, 2, 3}), ByteOrder::Little), 0u);  // not an integer size
  EXPECT_EQ(decode(label("port", 2, {LabelDecoder{.kind = LabelDecoderKind::Uint, .byte_order = ByteOrder::Big}}), two),
            "443");
  EXPECT_EQ(decode(label("delta", 2, {decoder(LabelDecoderKind::Int)}), bytes({0xfe, 0xff})), "-2");
}

TEST(BpfMapDecoders, StringsStopAtNulAndAreAlwaysValidUtf8) {
  EXPECT_EQ(sanitized_text(text_bytes("nginx", 16)), "nginx");
  EXPECT_EQ(sanitized_text(text_bytes("0123456789abcdef", 16)), "0123456789abcdef");  // no NUL at all
  EXPECT_EQ(sanitized_text(bytes({'a', 0xff, 'b', 0xc3})), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
  EXPECT_EQ(sanitized_text(bytes({0xc0, 0xaf})), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
  EXPECT_EQ(sanitized_text(bytes({0xed, 0xa0, 0x80})), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(sanitized_text(bytes({'a', '\n', 'b', 0x7f, 0})), "a?b?");
  EXPECT_EQ(sanitized_text(bytes({0xc3, 0xa9, 0xe2, 0x82, 0xac})), "\xC3\xA9\xE2\x82\xAC");  // é€ kept
  EXPECT_EQ(sanitized_text({}), "");
}

TEST(BpfMapDecoders, HexAndAddresses) {
  EXPECT_EQ(hex_text(bytes({0x00, 0xab, 0x10})), "00ab10");
  EXPECT_EQ(inet_text(bytes({127, 0, 0, 1})), "127.0.0.1");
  auto v6 = bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  EXPECT_EQ(inet_text(v6), "2001:db8::1");
  auto mapped = bytes({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3});
  EXPECT_EQ(inet_text(mapped), "::ffff:10.1.2.3");
  EXPECT_EQ(inet_text(bytes({1, 2})), "0102");
}

TEST(BpfMapDecoders, StaticMapAndRegexpFilter) {
  LabelDecoder names = decoder(LabelDecoderKind::StaticMap);
  names.static_map = {{"1", "read"}, {"2", "write"}};
  auto op = label("op", 1, {decoder(LabelDecoderKind::Uint), names});
  EXPECT_EQ(decode(op, bytes({1})), "read");
  EXPECT_EQ(decode(op, bytes({9})), "unknown:9");

  LabelDecoder filter = decoder(LabelDecoderKind::Regexp);
  filter.regexps = {"^ngin", "^envoy$"};
  auto comm = label("comm", 8, {decoder(LabelDecoderKind::String), filter});
  auto chain = LabelDecoderChain::make(comm);
  ASSERT_TRUE(chain);
  EXPECT_EQ(chain->decode(text_bytes("nginx", 8)), "nginx");
  EXPECT_EQ(chain->decode(text_bytes("envoy", 8)), "envoy");
  EXPECT_EQ(chain->decode(text_bytes("envoy2", 8)), std::nullopt);
  EXPECT_EQ(chain->decode(text_bytes("bash", 8)), std::nullopt);
  EXPECT_EQ(chain->decode(text_bytes("nginx", 8)), "nginx");  // cached verdict, same answer
}

TEST(BpfMapDecoders, RegexpsThatCouldBlowUpAreRefused) {
  EXPECT_TRUE(compile_label_regexp("^(nginx|envoy)[0-9]*$"));
  EXPECT_TRUE(compile_label_regexp("a{3}b{2,5}"));
  auto nested = compile_label_regexp("((a{10}){10}){11}");
  ASSERT_FALSE(nested);
  EXPECT_EQ(nested.error().message, "its repetition counts multiply to more than 1000 — use + or * instead");
  auto backref = compile_label_regexp("(a)\\1");
  ASSERT_FALSE(backref);
  EXPECT_EQ(backref.error().message, "back-references are not supported — match without them");
  auto broken = compile_label_regexp("(a");
  ASSERT_FALSE(broken);
  EXPECT_TRUE(broken.error().message.starts_with("is not a valid regular expression (ECMAScript syntax): "))
      << broken.error().message;
  // Polynomial matching: this pattern backtracks exponentially in a backtracking engine.
  auto slow = compile_label_regexp("(a*)*b");
  ASSERT_TRUE(slow);
  EXPECT_FALSE(std::regex_search(std::string(64, 'a'), *slow));
}

TEST(BpfMapDecoders, KernelSymbolsFindTheEnclosingSymbol) {
  auto symbols = KernelSymbols::parse(
      "ffffffff81000000 T _stext\n"
      "ffffffff81000100 t do_one\n"
      "garbage line\n"
      "0000000000000000 T hidden\n"
      "ffffffffc0000000 t mod_fn\t[loop]\n"
      "ffffffff81000200 T do_two\n");
  EXPECT_EQ(symbols.size(), 4u);
  EXPECT_EQ(symbols.find(0xffffffff81000100), "do_one");
  EXPECT_EQ(symbols.find(0xffffffff810001ff), "do_one");
  EXPECT_EQ(symbols.find(0xffffffff81000250), "do_two");
  EXPECT_EQ(symbols.find(0xffffffffc0000010), "mod_fn");
  EXPECT_EQ(symbols.find(0x1000), "");
  EXPECT_EQ(KernelSymbols::parse("").find(1), "");
}

MapMetricSpec histogram_spec(BucketType type, uint64_t min, uint64_t max, double multiplier) {
  MapMetricSpec spec;
  spec.name = "latency_seconds";
  spec.kind = MetricKind::Histogram;
  spec.bucket_type = type;
  spec.bucket_min = min;
  spec.bucket_max = max;
  spec.bucket_multiplier = multiplier;
  return spec;
}

TEST(BpfMapHistogram, Exp2BoundsAndWhereKeysGo) {
  BucketLayout layout(histogram_spec(BucketType::Exp2, 2, 5, 1e-6));
  EXPECT_EQ(layout.bounds(), (std::vector<double>{4e-6, 8e-6, 16e-6, 32e-6}));
  HistogramData h = layout.empty();
  layout.add(h, 0, 1);   // below bucket_min: first bucket
  layout.add(h, 2, 2);
  layout.add(h, 4, 3);
  layout.add(h, 5, 4);
  layout.add(h, 6, 100);  // bucket_max + 1: the sum, in key units
  layout.add(h, 9, 5);    // above: +Inf
  layout.add(h, -3, 1);   // a negative (int-decoded) key: first bucket
  EXPECT_EQ(h.counts, (std::vector<uint64_t>{4, 0, 3, 4, 5}));
  EXPECT_EQ(h.count, 16u);
  EXPECT_DOUBLE_EQ(h.sum, 100e-6);
}

TEST(BpfMapHistogram, LinearAndFixed) {
  BucketLayout linear(histogram_spec(BucketType::Linear, 0, 3, 10));
  EXPECT_EQ(linear.bounds(), (std::vector<double>{0, 10, 20, 30}));
  auto fixed_spec = histogram_spec(BucketType::Fixed, 0, 0, 1);
  fixed_spec.bucket_keys = {1, 10, 100};
  BucketLayout fixed(fixed_spec);
  EXPECT_EQ(fixed.bounds(), (std::vector<double>{1, 10, 100}));
  HistogramData h = fixed.empty();
  fixed.add(h, 5, 1);    // between 1 and 10: counted up to 10
  fixed.add(h, 100, 2);
  fixed.add(h, 101, 7);  // the sum key
  fixed.add(h, 500, 1);
  EXPECT_EQ(h.counts, (std::vector<uint64_t>{0, 1, 2, 1}));
  EXPECT_DOUBLE_EQ(h.sum, 7);
}

// A descriptor for MapMetric::bind to duplicate; build() never reads it.
struct DevNull {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ~DevNull() { close(fd); }
};

MetricMapInfo synthetic_map(uint32_t type, uint32_t key_size, uint32_t value_size, uint32_t cpus, int fd) {
  MetricMapInfo info{.program = "obj", .fd = fd};
  info.shape = MapShape{.type = type, .key_size = key_size, .value_size = value_size, .max_entries = 64, .cpus = cpus};
  return info;
}

void add_entry(MapEntries& entries, std::span<const std::byte> key, std::initializer_list<uint64_t> per_cpu,
               size_t value_size = 8) {
  entries.keys.insert(entries.keys.end(), key.begin(), key.end());
  for (uint64_t v : per_cpu) {
    std::vector<std::byte> value(value_size);
    std::memcpy(value.data(), &v, value_size);
    entries.values.insert(entries.values.end(), value.begin(), value.end());
  }
  ++entries.count;
}

MapMetricSpec counter_spec() {
  MapMetricSpec spec;
  spec.name = "calls";
  spec.kind = MetricKind::Counter;
  spec.map = "calls_map";
  spec.pos = {"t.yaml", 9, 11};
  spec.labels_pos = {"t.yaml", 12, 11};
  LabelDecoder big{.kind = LabelDecoderKind::Uint, .byte_order = ByteOrder::Big};
  spec.labels = std::vector<MapMetricLabel>{label("comm", 8, {decoder(LabelDecoderKind::String)}),
                                            MapMetricLabel{"", 2, {}, {}}, label("port", 2, {big})};
  return spec;
}

std::vector<std::byte> counter_key(std::string_view comm, uint16_t port) {
  auto key = text_bytes(comm, 12);
  key[10] = static_cast<std::byte>(port >> 8);
  key[11] = static_cast<std::byte>(port & 0xff);
  return key;
}

TEST(BpfMapMetricBuild, PerCpuValuesSumAndKeysDecodeIntoSortedSeries) {
  DevNull null;
  auto metric = MapMetric::bind(counter_spec(), synthetic_map(BPF_MAP_TYPE_PERCPU_HASH, 12, 8, 2, null.fd), "spec1");
  ASSERT_TRUE(metric) << metric.error().message;
  MapEntries entries;
  add_entry(entries, counter_key("nginx", 443), {3, 4});
  add_entry(entries, counter_key("curl", 80), {0, 1});
  auto padded = counter_key("curl", 80);
  padded[9] = std::byte{0x55};  // padding bytes do not make another series: the values add up
  add_entry(entries, padded, {10, 0});
  MetricFamily family = (*metric)->build(entries);
  EXPECT_EQ(family.name, "calls");
  EXPECT_EQ(family.spec, "spec1");
  EXPECT_EQ(family.kind, MetricKind::Counter);
  EXPECT_EQ(family.help, "Read from BPF map 'calls_map' of program 'obj'");
  ASSERT_EQ(family.series.size(), 2u);
  EXPECT_EQ(family.series[0].labels, (LabelSet{{"comm", "curl"}, {"port", "80"}}));
  EXPECT_EQ(family.series[0].value, 11);
  EXPECT_EQ(family.series[1].labels, (LabelSet{{"comm", "nginx"}, {"port", "443"}}));
  EXPECT_EQ(family.series[1].value, 7);
}

TEST(BpfMapMetricBuild, ArrayEntriesNothingWroteAreLeftOut) {
  DevNull null;
  MapMetricSpec spec;
  spec.name = "per_cpu_slot";
  spec.kind = MetricKind::Gauge;
  spec.map = "slots";
  spec.value_scale = 0.5;
  spec.labels = std::vector<MapMetricLabel>{label("slot", 4, {decoder(LabelDecoderKind::Uint)})};
  auto metric = MapMetric::bind(spec, synthetic_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1, null.fd), "s");
  ASSERT_TRUE(metric) << metric.error().message;
  MapEntries entries;
  for (uint32_t i = 0; i < 4; ++i) {
    uint32_t key = i;
    add_entry(entries, std::as_bytes(std::span(&key, 1)), {i == 2 ? 9u : 0u}, 4);
  }
  MetricFamily family = (*metric)->build(entries);
  ASSERT_EQ(family.series.size(), 1u);
  EXPECT_EQ(family.series[0].labels, (LabelSet{{"slot", "2"}}));
  EXPECT_EQ(family.series[0].value, 4.5);
}

TEST(BpfMapMetricBuild, HistogramsGroupByTheOtherLabels) {
  DevNull null;
  MapMetricSpec spec = histogram_spec(BucketType::Exp2, 0, 3, 1);
  spec.map = "lat";
  LabelDecoder names = decoder(LabelDecoderKind::StaticMap);
  names.static_map = {{"1", "read"}, {"2", "write"}};
  spec.labels = std::vector<MapMetricLabel>{label("op", 4, {decoder(LabelDecoderKind::Uint), names}),
                                            label("bucket", 4, {decoder(LabelDecoderKind::Uint)})};
  auto metric = MapMetric::bind(spec, synthetic_map(BPF_MAP_TYPE_HASH, 8, 8, 1, null.fd), "s");
  ASSERT_TRUE(metric) << metric.error().message;
  MapEntries entries;
  auto key = [](uint32_t op, uint32_t bucket) {
    std::vector<std::byte> out(8);
    std::memcpy(out.data(), &op, 4);
    std::memcpy(out.data() + 4, &bucket, 4);
    return out;
  };
  add_entry(entries, key(1, 0), {2});
  add_entry(entries, key(1, 3), {5});
  add_entry(entries, key(1, 4), {40});  // the sum
  add_entry(entries, key(2, 1), {1});
  add_entry(entries, key(2, 9), {1});   // beyond: +Inf
  MetricFamily family = (*metric)->build(entries);
  ASSERT_EQ(family.series.size(), 2u);
  EXPECT_EQ(family.series[0].labels, (LabelSet{{"op", "read"}}));
  EXPECT_EQ(family.series[0].histogram.bounds, (std::vector<double>{1, 2, 4, 8}));
  EXPECT_EQ(family.series[0].histogram.counts, (std::vector<uint64_t>{2, 0, 0, 5, 0}));
  EXPECT_EQ(family.series[0].histogram.count, 7u);
  EXPECT_EQ(family.series[0].histogram.sum, 40);
  EXPECT_EQ(family.series[1].labels, (LabelSet{{"op", "write"}}));
  EXPECT_EQ(family.series[1].histogram.counts, (std::vector<uint64_t>{0, 1, 0, 0, 1}));
  EXPECT_EQ(family.series[1].histogram.sum, 0);
}

TEST(BpfMapMetricBuild, HostileMapContentNeverBreaksDecoding) {
  DevNull null;
  MapMetricSpec spec = counter_spec();
  LabelDecoder filter = decoder(LabelDecoderKind::Regexp);
  filter.regexps = {"."};
  (*spec.labels)[0].decoders.push_back(filter);
  auto metric = MapMetric::bind(spec, synthetic_map(BPF_MAP_TYPE_PERCPU_HASH, 12, 8, 3, null.fd), "s");
  ASSERT_TRUE(metric) << metric.error().message;
  std::mt19937_64 random(42);
  MapEntries entries;
  for (int i = 0; i < 2000; ++i) {
    std::vector<std::byte> key(12);
    for (auto& b : key) b = static_cast<std::byte>(random());
    add_entry(entries, key, {random(), random(), random()});
  }
  entries.count += 5;  // a count beyond the buffers is not trusted
  MetricFamily family = (*metric)->build(entries);
  EXPECT_GT(family.series.size(), 0u);
  for (const MetricSeries& series : family.series)
    for (const auto& [name, value] : series.labels) {
      EXPECT_EQ(sanitized_text(std::as_bytes(std::span(value))), value) << "not printable UTF-8: " << value;
    }
}

TEST(BpfMapMetricBind, RefusesMapsThatDoNotFitTheMetric) {
  DevNull null;
  auto wrong_size = MapMetric::bind(counter_spec(), synthetic_map(BPF_MAP_TYPE_HASH, 16, 8, 1, null.fd), "s");
  ASSERT_FALSE(wrong_size);
  EXPECT_EQ(wrong_size.error().message,
            "t.yaml:9:11: metric 'calls': map 'calls_map' of program 'obj': the labels at t.yaml:12:11 take 12 bytes "
            "and the key is 16 bytes — make the sizes add up to the key's (mind alignment holes: skip them with "
            "'{padding: N}')");
  auto ring = MapMetric::bind(counter_spec(), synthetic_map(BPF_MAP_TYPE_RINGBUF, 12, 8, 1, null.fd), "s");
  ASSERT_FALSE(ring);
  EXPECT_EQ(ring.error().message,
            "t.yaml:9:11: metric 'calls': map 'calls_map' of program 'obj': is a ringbuf map; metrics are read from "
            "hash, array, lru_hash and their percpu kinds — aggregate into one of those");
  auto wide_value = MapMetric::bind(counter_spec(), synthetic_map(BPF_MAP_TYPE_HASH, 12, 16, 1, null.fd), "s");
  ASSERT_FALSE(wide_value);
  EXPECT_EQ(wide_value.error().message,
            "t.yaml:9:11: metric 'calls': map 'calls_map' of program 'obj': the map's value is 16 bytes; a map metric "
            "reads one integer of 1, 2, 4 or 8 bytes per key");
  MapMetricSpec inferred = counter_spec();
  inferred.labels.reset();
  auto no_btf = MapMetric::bind(inferred, synthetic_map(BPF_MAP_TYPE_HASH, 12, 8, 1, null.fd), "s");
  ASSERT_FALSE(no_btf);
  EXPECT_EQ(no_btf.error().message,
            "t.yaml:9:11: metric 'calls': map 'calls_map' of program 'obj': the map's key has no BTF type — declare "
            "'labels:' to say how the key decodes");
}

}  // namespace
}  // namespace ea
