// `metrics:` of ebpf_object programs: the model it parses into, and every refusal with its
// position, field and fix.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "spec_test_util.h"

namespace ea {
namespace {

using ::testing::HasSubstr;

// A spec whose one ebpf_object program has `metrics:` starting at line 8.
std::string metrics_yaml(std::string_view metrics) {
  return fmt::format(
      "kind: ebpfprogram\n"
      "name: t\n"
      "spec:\n"
      "  programs:\n"
      "    - name: obj\n"
      "      type: ebpf_object\n"
      "      path: obj.bpf.o\n"
      "      metrics:\n"
      "{}",
      metrics);
}

TEST(SpecMapMetrics, ParsesCountersAndHistogramsWithTheirDecoders) {
  auto specs = parse_test_yaml(metrics_yaml(R"(        - name: tcp_retransmits
          help: TCP retransmissions by destination port
          type: counter
          map: retrans_by_port
          value_scale: 2
          labels:
            - name: port
              size: 2
              decoders: [{name: uint, byte_order: big}]
            - {padding: 2}
            - name: comm
              size: 16
              decoders: [{name: string}, {name: regexp, regexps: ["^nginx", "^envoy"]}]
        - name: block_io_latency_seconds
          type: histogram
          unit: seconds
          map: io_latency
          bucket_type: exp2
          bucket_multiplier: 1e-6
          bucket_min: 1
          bucket_max: 26
          labels:
            - {name: device, size: 4, decoders: [{name: uint}, {name: static_map, static_map: {8: sda}}]}
            - {name: bucket, size: 4}
        - {name: runq, type: gauge, map: runq_len}
        - {name: sizes_bytes, unit: bytes, type: histogram, map: sizes, bucket_type: fixed, bucket_keys: [64, 512, 4096]}
)"));
  ASSERT_TRUE(specs) << specs.error().message;
  const auto& metrics = specs->front().programs.front().metrics;
  ASSERT_EQ(metrics.size(), 4u);

  const MapMetricSpec& counter = metrics[0];
  EXPECT_EQ(counter.name, "tcp_retransmits");
  EXPECT_EQ(counter.help, "TCP retransmissions by destination port");
  EXPECT_EQ(counter.kind, MetricKind::Counter);
  EXPECT_EQ(counter.map, "retrans_by_port");
  EXPECT_EQ(counter.value_scale, 2);
  EXPECT_EQ(counter.pos.str(), "t.yaml:9:11");
  ASSERT_TRUE(counter.labels);
  ASSERT_EQ(counter.labels->size(), 3u);
  EXPECT_EQ((*counter.labels)[0].name, "port");
  EXPECT_EQ((*counter.labels)[0].decoders[0].byte_order, ByteOrder::Big);
  EXPECT_EQ((*counter.labels)[1].name, "");  // padding
  EXPECT_EQ((*counter.labels)[1].size, 2u);
  EXPECT_EQ((*counter.labels)[2].decoders[1].kind, LabelDecoderKind::Regexp);
  EXPECT_EQ((*counter.labels)[2].decoders[1].regexps, (std::vector<std::string>{"^nginx", "^envoy"}));

  const MapMetricSpec& histogram = metrics[1];
  EXPECT_EQ(histogram.kind, MetricKind::Histogram);
  EXPECT_EQ(histogram.unit, "seconds");
  EXPECT_EQ(histogram.bucket_type, BucketType::Exp2);
  EXPECT_EQ(histogram.bucket_multiplier, 1e-6);
  EXPECT_EQ(histogram.bucket_min, 1u);
  EXPECT_EQ(histogram.bucket_max, 26u);
  const auto& device = (*histogram.labels)[0];
  EXPECT_EQ(device.decoders[1].static_map, (std::map<std::string, std::string>{{"8", "sda"}}));
  const auto& bucket = (*histogram.labels)[1];
  ASSERT_EQ(bucket.decoders.size(), 1u);  // an integer size without decoders reads as uint
  EXPECT_EQ(bucket.decoders[0].kind, LabelDecoderKind::Uint);

  EXPECT_FALSE(metrics[2].labels);  // inferred from the key's BTF at load
  EXPECT_EQ(metrics[3].bucket_type, BucketType::Fixed);
  EXPECT_EQ(metrics[3].bucket_keys, (std::vector<uint64_t>{64, 512, 4096}));
}

TEST(SpecMapMetrics, NamesTypesAndUnits) {
  EXPECT_EQ(errors_of(metrics_yaml(R"(        - {name: retransmits_total, type: counter, map: m}
        - {name: 9lives, type: gauge, map: m}
        - {name: lat, type: histo, map: m}
        - {name: lat_ms, type: gauge, map: m, unit: seconds}
        - {name: x, type: gauge, map: "not-a-map"}
        - {name: y, type: gauge}
        - {name: ok, type: gauge, map: m}
        - {name: ok, type: gauge, map: m2}
)")),
            "t.yaml:9:18: field 'spec.programs[0].metrics[0].name': drop '_total': it is added when the counter is rendered for Prometheus (name it 'retransmits')\n"
            "t.yaml:10:18: field 'spec.programs[0].metrics[1].name': '9lives' is not a metric name: 1 to 200 letters, digits and '_', not starting with a digit or '__' (e.g. tcp_retransmits)\n"
            "t.yaml:11:29: field 'spec.programs[0].metrics[2].type': unknown metric type 'histo' — use one of: counter, gauge, histogram\n"
            "t.yaml:12:53: field 'spec.programs[0].metrics[3].unit': Prometheus names end with their unit: rename the metric to 'lat_ms_seconds', or remove 'unit'\n"
            "t.yaml:13:39: field 'spec.programs[0].metrics[4].map': 'not-a-map' is not a BPF map name (the C variable of the map)\n"
            "t.yaml:14:11: field 'spec.programs[0].metrics[5].map': missing — add 'map: ...', the BPF map (hash, array or their per-CPU kinds) holding the values\n"
            "t.yaml:16:11: field 'spec.programs[0].metrics[7]': metric 'ok' is declared twice in this program — give each its own name");
}

TEST(SpecMapMetrics, LabelsAndDecoders) {
  EXPECT_EQ(errors_of(metrics_yaml(R"(        - name: a
          type: counter
          map: m
          labels:
            - {name: comm, size: 16}
            - {name: le, size: 4}
            - {name: port, size: 3, decoders: [{name: uint}]}
            - {name: p2, size: 4, decoders: [{name: static_map, static_map: {1: a}}]}
            - {name: p3, size: 4, decoders: [{name: uint}, {name: string}]}
            - {name: p4, size: 4, decoders: [{name: unit}]}
            - {name: p5, size: 4, decoders: [{name: string, byte_order: big}]}
            - {name: p6, size: 4, decoders: [{name: uint}, {name: regexp, regexps: ["(a)\\1"]}]}
            - {name: p7, size: 4, decoders: [{name: uint, regexps: [x]}]}
            - {name: p8, size: 4, padding: 2}
            - {name: ok, size: 4}
            - {name: ok, size: 4}
)")),
            "t.yaml:13:15: field 'spec.programs[0].metrics[0].labels[0].decoders': missing — a 16-byte label is not an integer: say how it decodes, e.g. 'decoders: [{name: string}]'\n"
            "t.yaml:14:22: field 'spec.programs[0].metrics[0].labels[1].name': 'le' is the label Prometheus gives histogram buckets — rename it\n"
            "t.yaml:15:55: field 'spec.programs[0].metrics[0].labels[2].decoders[0].name': 'uint' decodes integers of 1, 2, 4 or 8 bytes, and this label is 3 bytes — fix 'size' or use 'hex' (raw bytes) or 'string'\n"
            "t.yaml:16:53: field 'spec.programs[0].metrics[0].labels[3].decoders[0].name': 'static_map' works on the text a decoder made; start with one that reads the key's bytes (uint, int, string, hex, inet_ip, ksym)\n"
            "t.yaml:17:67: field 'spec.programs[0].metrics[0].labels[4].decoders[1].name': 'string' reads the key's bytes, which the first decoder already did — keep one byte decoder, first; static_map and regexp may follow\n"
            "t.yaml:18:53: field 'spec.programs[0].metrics[0].labels[5].decoders[0].name': unknown decoder 'unit' — use one of: uint, int, string, hex, inet_ip, ksym, static_map, regexp (did you mean 'uint'?)\n"
            "t.yaml:19:73: field 'spec.programs[0].metrics[0].labels[6].decoders[0].byte_order': only uint and int decoders have a byte order — remove it\n"
            "t.yaml:20:85: field 'spec.programs[0].metrics[0].labels[7].decoders[1].regexps[0]': back-references are not supported — match without them\n"
            "t.yaml:21:68: field 'spec.programs[0].metrics[0].labels[8].decoders[0].regexps': belongs to a 'regexp' decoder — remove it, or set 'name: regexp'\n"
            "t.yaml:22:22: field 'spec.programs[0].metrics[0].labels[9].name': a padding item only skips bytes — give it alone, e.g. '{padding: 4}'\n"
            "t.yaml:24:15: field 'spec.programs[0].metrics[0].labels[11]': label 'ok' is given twice — each label needs its own name");
}

TEST(SpecMapMetrics, HistogramBuckets) {
  EXPECT_EQ(errors_of(metrics_yaml(R"(        - {name: a, type: histogram, map: m}
        - {name: b, type: histogram, map: m, bucket_min: 5, bucket_max: 2}
        - {name: c, type: histogram, map: m, bucket_max: 1024}
        - {name: d, type: histogram, map: m, bucket_type: linear, bucket_max: 600}
        - {name: e, type: histogram, map: m, bucket_type: fixed, bucket_keys: [5, 5], bucket_max: 3}
        - {name: f, type: histogram, map: m, bucket_min: 600, bucket_max: 1000, bucket_multiplier: 1e300}
        - {name: g, type: histogram, map: m, bucket_max: 4, bucket_multiplier: 0, value_scale: 2}
        - {name: h, type: counter, map: m, bucket_max: 4}
        - name: i
          type: histogram
          map: m
          bucket_max: 4
          labels: [{name: comm, size: 16, decoders: [{name: string}]}]
)")),
            "t.yaml:9:11: field 'spec.programs[0].metrics[0].bucket_max': missing — add the highest bucket key the program writes, e.g. 'bucket_max: 26'\n"
            "t.yaml:10:73: field 'spec.programs[0].metrics[1].bucket_max': is below bucket_min (5) — bucket keys run from bucket_min to bucket_max\n"
            "t.yaml:11:58: field 'spec.programs[0].metrics[2].bucket_max': expected an integer from 0 to 1023, got '1024'\n"
            "t.yaml:12:79: field 'spec.programs[0].metrics[3].bucket_max': makes 601 buckets, more than the 512 a histogram may have\n"
            "t.yaml:13:83: field 'spec.programs[0].metrics[4].bucket_keys[1]': bucket keys must be in ascending order, each once\n"
            "t.yaml:13:99: field 'spec.programs[0].metrics[4].bucket_max': a fixed histogram lists its keys in 'bucket_keys' — remove this\n"
            "t.yaml:14:75: field 'spec.programs[0].metrics[5].bucket_max': with this bucket_multiplier the highest bucket bound is not a finite number — lower one of them\n"
            "t.yaml:15:80: field 'spec.programs[0].metrics[6].bucket_multiplier': must be greater than 0, e.g. 1e-6 (microseconds to seconds)\n"
            "t.yaml:15:96: field 'spec.programs[0].metrics[6].value_scale': a histogram scales its bucket keys with 'bucket_multiplier' — use that instead\n"
            "t.yaml:16:56: field 'spec.programs[0].metrics[7].bucket_max': 'bucket_max' is for histograms and this metric is a counter — remove it\n"
            "t.yaml:21:19: field 'spec.programs[0].metrics[8].labels': the last label of a histogram is its bucket key: make it an integer, e.g. '{name: bucket, size: 4, decoders: [{name: uint}]}'");
}

TEST(SpecMapMetrics, OnlyEbpfObjectProgramsHaveMetrics) {
  std::string errors = errors_of(R"(
kind: ebpfprogram
name: t
spec:
  programs:
    - name: bt
      type: bpftrace
      properties: {src: "BEGIN { exit(); }"}
      metrics: [{name: a, type: counter, map: m}]
)");
  EXPECT_EQ(errors,
            "t.yaml:8:16: field 'spec.programs[0].metrics': metrics are read from the BPF maps of ebpf_object programs, "
            "and this one is bpftrace — move them to the ebpf_object program that owns the maps");
}

TEST(SpecMapMetrics, HostileSizesStayBounded) {
  std::string labels;
  for (int i = 0; i < 33; ++i) labels += fmt::format("            - {{name: l{}, size: 4}}\n", i);
  std::string errors = errors_of(metrics_yaml("        - name: a\n          type: counter\n          map: m\n"
                                              "          labels:\n" + labels));
  EXPECT_THAT(errors, HasSubstr("has 33 entries, more than the 32 a spec may have"));

  std::string huge = errors_of(metrics_yaml(R"(        - name: a
          type: counter
          map: m
          labels:
            - {name: a, size: 1025, decoders: [{name: hex}]}
            - {name: f, size: 1024, decoders: [{name: hex}]}
            - {name: b, size: 1024, decoders: [{name: hex}]}
            - {name: c, size: 1024, decoders: [{name: hex}]}
            - {name: d, size: 1024, decoders: [{name: hex}]}
            - {name: e, size: 1024, decoders: [{name: hex}]}
)"));
  EXPECT_THAT(huge, HasSubstr("t.yaml:13:31: field 'spec.programs[0].metrics[0].labels[0].size': expected an integer "
                              "from 0 to 1024, got '1025'"));
  EXPECT_THAT(huge, HasSubstr("t.yaml:13:13: field 'spec.programs[0].metrics[0].labels': the labels take 5120 bytes "
                              "of key, more than the 4096 a map metric may read"));

  std::string regexp = errors_of(metrics_yaml(R"(        - name: a
          type: counter
          map: m
          labels:
            - {name: a, size: 4, decoders: [{name: uint}, {name: regexp, regexps: ["((a{10}){10}){11}"]}]}
)"));
  EXPECT_THAT(regexp, HasSubstr("its repetition counts multiply to more than 1000 — use + or * instead"));
}

}  // namespace
}  // namespace ea
