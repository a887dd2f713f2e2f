// Map metrics against the kernel (root): the fixture map_metrics_syscalls.bpf.o counts getppid()
// per process name and times nanosleep() into exp2 histograms (one with a sum key, one with
// {count, sum} values); the test makes the calls from a thread with a unique name and reads the
// metrics the way the agent does. Also, without the kernel: which histogram values are accepted.
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/bpf.h>

#include <algorithm>
#include <set>
#include <thread>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "agent/runtime.h"
#include "loader/ebpf_object.h"
#include "loader/fetch.h"
#include "metrics/bpf_map_metrics.h"
#include "metrics/prometheus_text.h"
#include "spec/parser.h"

namespace ea {
namespace {

#define REQUIRE_ROOT() \
  if (geteuid() != 0) GTEST_SKIP() << "needs root: loads BPF programs into the kernel"

constexpr const char* kSpec = R"(kind: ebpfprogram
name: mm
spec:
  programs:
    - name: syscalls
      type: ebpf_object
      path: map_metrics_syscalls.bpf.o
      metrics:
        - name: getppid_calls
          help: getppid() calls by process
          type: counter
          map: getppid_calls
          labels:
            - {name: comm, size: 16, decoders: [{name: string}]}
            - {name: version, size: 1}
            - {padding: 3}
            - name: kind
              size: 4
              decoders: [{name: uint}, {name: static_map, static_map: {1: getppid, 2: other}}]
            - {name: uid, size: 4}
        - name: getppid_calls_inferred
          type: counter
          map: getppid_calls
        - name: getppid_all
          type: gauge
          map: getppid_total
        - name: sleep_duration_seconds
          type: histogram
          unit: seconds
          map: sleep_latency
          bucket_type: exp2
          bucket_multiplier: 1e-6
          bucket_max: 26
        - name: sleep_counted_seconds
          type: histogram
          unit: seconds
          map: sleep_latency_sum
          bucket_type: exp2
          bucket_multiplier: 1e-6
          bucket_max: 26
)";

struct Loaded {
  Spec spec;
  std::unique_ptr<EbpfObject> object;
};

Result<Loaded> load_fixture(std::string_view yaml) {
  auto specs = parse_specs(yaml, "mm.yaml", EA_BUILD_DIR "/tests/bpf");
  if (!specs) return std::unexpected(specs.error());
  Loaded loaded{.spec = std::move(specs->front())};
  const ProgramSpec& program = loaded.spec.programs.front();
  auto file = fetch_program_file(EA_BUILD_DIR "/tests/bpf/map_metrics_syscalls.bpf.o", "", "", program.pos);
  if (!file) return std::unexpected(file.error());
  auto object = EbpfObject::open(program, std::move(*file));
  if (!object) return std::unexpected(object.error());
  if (auto ok = (*object)->load(); !ok) return std::unexpected(ok.error());
  loaded.object = std::move(*object);
  return loaded;
}

Result<std::shared_ptr<BpfMapMetrics>> bind(Loaded& loaded) {
  return BpfMapMetrics::bind(loaded.spec, [&](std::string_view) { return loaded.object->object(); });
}

// Makes the calls from a thread whose name (comm) no other process has.
std::string run_calls(int getppid_calls, int sleeps, std::chrono::microseconds sleep) {
  std::string name = fmt::format("eamm{}", getpid() % 100000);
  std::thread([&] {
    prctl(PR_SET_NAME, name.c_str());
    for (int i = 0; i < getppid_calls; ++i) syscall(SYS_getppid);
    timespec pause{0, static_cast<long>(sleep.count() * 1000)};
    for (int i = 0; i < sleeps; ++i) syscall(SYS_nanosleep, &pause, nullptr);
  }).join();
  return name;
}

const MetricFamily* family(const std::vector<MetricFamily>& families, std::string_view name) {
  auto it = std::ranges::find(families, name, &MetricFamily::name);
  return it == families.end() ? nullptr : &*it;
}

const MetricSeries* series_with(const MetricFamily& family, std::string_view label, std::string_view value) {
  for (const MetricSeries& series : family.series)
    for (const auto& [n, v] : series.labels)
      if (n == label && v == value) return &series;
  return nullptr;
}

// Three sleeps of 3 ms by `comm`, in an exp2 histogram of microseconds with buckets 0..26.
void expect_three_3ms_sleeps(const MetricFamily* sleeps, const std::string& comm) {
  ASSERT_NE(sleeps, nullptr);
  SCOPED_TRACE(sleeps->name);
  EXPECT_EQ(sleeps->kind, MetricKind::Histogram);
  EXPECT_EQ(sleeps->unit, "seconds");
  const MetricSeries* slept = series_with(*sleeps, "comm", comm);
  ASSERT_NE(slept, nullptr);
  const HistogramData& h = slept->histogram;
  ASSERT_EQ(h.bounds.size(), 27u);
  EXPECT_DOUBLE_EQ(h.bounds[0], 1e-6);
  EXPECT_DOUBLE_EQ(h.bounds[12], 4096e-6);
  EXPECT_EQ(h.count, 3u);
  EXPECT_GE(h.sum, 0.009);
  EXPECT_LT(h.sum, 3.0);
  // Each 3 ms sleep is counted in a bucket whose bound is at least 3 ms and no bucket below 2 ms.
  uint64_t at_least_3ms = 0;
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    if (h.bounds[i] >= 0.003) at_least_3ms += h.counts[i];
    if (h.bounds[i] < 0.002) {
      EXPECT_EQ(h.counts[i], 0u) << "bucket " << h.bounds[i];
    }
  }
  EXPECT_EQ(at_least_3ms + h.counts.back(), 3u);
}

TEST(BpfMapMetricsKernel, CountersGaugesAndHistogramsFromTheFixtureMaps) {
  REQUIRE_ROOT();
  auto loaded = load_fixture(kSpec);
  ASSERT_TRUE(loaded) << loaded.error().message;
  ASSERT_TRUE(loaded->object->attach());
  auto metrics = bind(*loaded);
  ASSERT_TRUE(metrics) << metrics.error().message;

  std::string comm = run_calls(37, 3, std::chrono::microseconds(3000));
  std::vector<MetricFamily> families;
  (*metrics)->collect(families);

  const MetricFamily* declared = family(families, "getppid_calls");
  ASSERT_NE(declared, nullptr);
  EXPECT_EQ(declared->help, "getppid() calls by process");
  EXPECT_EQ(declared->spec, "mm");
  const MetricSeries* ours = series_with(*declared, "comm", comm);
  ASSERT_NE(ours, nullptr) << comm << " not among " << declared->series.size() << " series";
  EXPECT_EQ(ours->labels, (LabelSet{{"comm", comm}, {"kind", "getppid"}, {"uid", fmt::format("{}", getuid())},
                                     {"version", "1"}}));
  EXPECT_EQ(ours->value, 37);

  // Labels from the key's BTF: the char array as a string, the enum by its enumerator's name,
  // integers as numbers, the hole skipped.
  const MetricFamily* inferred = family(families, "getppid_calls_inferred");
  ASSERT_NE(inferred, nullptr);
  const MetricSeries* inferred_ours = series_with(*inferred, "comm", comm);
  ASSERT_NE(inferred_ours, nullptr);
  EXPECT_EQ(inferred_ours->labels, (LabelSet{{"comm", comm}, {"kind", "CALL_GETPPID"},
                                              {"uid", fmt::format("{}", getuid())}, {"version", "1"}}));
  EXPECT_EQ(inferred_ours->value, 37);

  const MetricFamily* total = family(families, "getppid_all");
  ASSERT_NE(total, nullptr);
  ASSERT_EQ(total->series.size(), 1u);
  EXPECT_EQ(total->series[0].labels, (LabelSet{{"key", "0"}}));
  EXPECT_GE(total->series[0].value, 37);

  expect_three_3ms_sleeps(family(families, "sleep_duration_seconds"), comm);
  // The same sleeps through one {count, sum} entry per bucket: the same histogram.
  expect_three_3ms_sleeps(family(families, "sleep_counted_seconds"), comm);
  ASSERT_FALSE(HasFatalFailure());
  const MetricSeries* with_sum_key = series_with(*family(families, "sleep_duration_seconds"), "comm", comm);
  const MetricSeries* counted = series_with(*family(families, "sleep_counted_seconds"), "comm", comm);
  ASSERT_TRUE(with_sum_key && counted);
  EXPECT_EQ(with_sum_key->histogram.counts, counted->histogram.counts);
  EXPECT_DOUBLE_EQ(with_sum_key->histogram.sum, counted->histogram.sum);

  // The counts keep growing between collections; the rendered text carries them.
  run_calls(5, 0, {});
  families.clear();
  (*metrics)->collect(families);
  ASSERT_NE(family(families, "getppid_calls"), nullptr);
  ours = series_with(*family(families, "getppid_calls"), "comm", comm);
  ASSERT_NE(ours, nullptr);
  EXPECT_EQ(ours->value, 42);
  MetricsSnapshot snapshot{.time_ns = 1, .families = families};
  std::string text = render_prometheus_text(snapshot);
  EXPECT_NE(text.find(fmt::format("getppid_calls_total{{comm=\"{}\",kind=\"getppid\",uid=\"{}\",version=\"1\"}} 42", comm, getuid())),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE sleep_duration_seconds histogram"), std::string::npos);
}

// The runtime registers a spec's map metrics when it starts, and a replaced or removed version's
// maps are no longer read.
TEST(BpfMapMetricsKernel, RuntimeReadsOnlyTheRunningVersionsMaps) {
  REQUIRE_ROOT();
  RuntimeOptions options;
  options.workers = 1;
  options.outputs = {"stdout"};
  auto runtime = Runtime::create(options);
  ASSERT_TRUE(runtime) << runtime.error().message;
  std::string yaml = std::string(kSpec);
  yaml.replace(yaml.find("path: map_metrics_syscalls.bpf.o"), std::string("path: map_metrics_syscalls.bpf.o").size(),
               "path: file://" EA_BUILD_DIR "/tests/bpf/map_metrics_syscalls.bpf.o");
  auto apply = [&] {
    auto specs = parse_specs(yaml, "mm.yaml", "/");
    ASSERT_TRUE(specs) << specs.error().message;
    auto applied = (*runtime)->apply(std::move(specs->front()));
    ASSERT_TRUE(applied) << applied.error().message;
  };
  auto ours = [&](const std::string& comm) -> std::optional<double> {
    MetricsSnapshot snapshot = (*runtime)->metrics().collect();
    const MetricFamily* calls = family(snapshot.families, "getppid_calls");
    if (!calls) return std::nullopt;
    size_t matching = 0;
    double value = 0;
    for (const MetricSeries& series : calls->series)
      if (std::ranges::find(series.labels, std::pair<std::string, std::string>("comm", comm)) != series.labels.end()) {
        ++matching;
        value = series.value;
      }
    EXPECT_LE(matching, 1u) << "a series read from two versions' maps";
    return matching ? std::optional(value) : std::optional(0.0);
  };
  apply();
  std::string comm = run_calls(11, 0, {});
  EXPECT_EQ(ours(comm), 11);
  apply();  // a new version: new maps, and the old ones are no longer read
  EXPECT_EQ(ours(comm), 0);
  run_calls(4, 0, {});
  EXPECT_EQ(ours(comm), 4);
  ASSERT_TRUE((*runtime)->remove("mm"));
  EXPECT_EQ(ours(comm), std::nullopt);
}

TEST(BpfMapMetricsKernel, BatchedAndKeyByKeyReadsAgree) {
  REQUIRE_ROOT();
  int cpus = libbpf_num_possible_cpus();
  ASSERT_GT(cpus, 0);
  MapShape shape{.type = BPF_MAP_TYPE_PERCPU_HASH, .key_size = 4, .value_size = 8, .max_entries = 5000,
                 .cpus = static_cast<uint32_t>(cpus)};
  int fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_HASH, "ea_mm_test", 4, 8, shape.max_entries, nullptr);
  ASSERT_GE(fd, 0) << strerror(errno);
  std::vector<uint64_t> value(static_cast<size_t>(cpus));
  for (uint32_t key = 0; key < 4500; ++key) {  // more than one batch
    std::ranges::fill(value, key);
    ASSERT_EQ(bpf_map_update_elem(fd, &key, value.data(), BPF_ANY), 0);
  }
  MapReader reader(fd, shape);
  MapEntries batched, by_key;
  ASSERT_TRUE(reader.read(batched));
  EXPECT_TRUE(reader.batching()) << "this kernel has batched lookups for per-CPU hash maps (5.6+)";
  ASSERT_TRUE(reader.read_by_key(by_key));
  close(fd);
  auto keys = [&](const MapEntries& entries) {
    std::set<std::pair<uint32_t, uint64_t>> out;
    for (size_t i = 0; i < entries.count; ++i) {
      uint32_t key;
      uint64_t last_cpu;
      std::memcpy(&key, entries.key(shape, i).data(), 4);
      std::memcpy(&last_cpu, entries.value(shape, i).data() + (cpus - 1) * 8, 8);
      out.emplace(key, last_cpu);
    }
    return out;
  };
  EXPECT_EQ(batched.count, 4500u);
  EXPECT_EQ(by_key.count, 4500u);
  EXPECT_EQ(keys(batched), keys(by_key));
  EXPECT_EQ(keys(batched).begin()->second, 0u);
  EXPECT_EQ(keys(batched).rbegin()->second, 4499u);
}

TEST(BpfMapMetricsKernel, ErrorsNameTheMetricTheMapAndTheFix) {
  REQUIRE_ROOT();
  auto typo = load_fixture(R"(kind: ebpfprogram
name: mm
spec:
  programs:
    - name: syscalls
      type: ebpf_object
      path: map_metrics_syscalls.bpf.o
      metrics:
        - {name: calls, type: counter, map: getppid_call}
)");
  ASSERT_TRUE(typo) << typo.error().message;
  auto missing = bind(*typo);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message,
            "mm.yaml:9:11: metric 'calls': program 'syscalls' has no map 'getppid_call' — use one of: getppid_calls, "
            "getppid_total, sleep_latency, sleep_latency_sum, sleep_start (did you mean 'getppid_calls'?)");

  auto sizes = load_fixture(R"(kind: ebpfprogram
name: mm
spec:
  programs:
    - name: syscalls
      type: ebpf_object
      path: map_metrics_syscalls.bpf.o
      metrics:
        - name: calls
          type: counter
          map: getppid_calls
          labels:
            - {name: comm, size: 16, decoders: [{name: string}]}
            - {name: uid, size: 4}
)");
  ASSERT_TRUE(sizes) << sizes.error().message;
  auto mismatch = bind(*sizes);
  ASSERT_FALSE(mismatch);
  EXPECT_EQ(mismatch.error().message,
            "mm.yaml:9:11: metric 'calls': map 'getppid_calls' of program 'syscalls': the labels at mm.yaml:13:13 "
            "take 20 bytes and the key is struct call_key (28 bytes) — make the sizes add up to the key's (mind "
            "alignment holes: skip them with '{padding: N}')");

}

// Histogram values described by BTF built here, bound to a synthetic map (no kernel needed).
class MapMetricHistogramValue : public ::testing::Test {
 protected:
  struct Member {
    const char* name;
    int type;
    uint32_t bit_offset;
  };
  void SetUp() override {
    ASSERT_NE(btf_, nullptr);
    u64_ = btf__add_typedef(btf_, "__u64", btf__add_int(btf_, "unsigned long long", 8, 0));
    s64_ = btf__add_typedef(btf_, "__s64", btf__add_int(btf_, "long long", 8, BTF_INT_SIGNED));
    u32_ = btf__add_typedef(btf_, "__u32", btf__add_int(btf_, "unsigned int", 4, 0));
    ASSERT_GT(u64_, 0);
    ASSERT_GT(s64_, 0);
    ASSERT_GT(u32_, 0);
  }
  void TearDown() override {
    btf__free(btf_);
    if (null_ >= 0) close(null_);
  }
  uint32_t add_struct(const char* name, uint32_t size, std::initializer_list<Member> members) {
    int id = btf__add_struct(btf_, name, size);
    EXPECT_GT(id, 0);
    for (const Member& m : members) EXPECT_EQ(btf__add_field(btf_, m.name, m.type, m.bit_offset, 0), 0);
    return static_cast<uint32_t>(id);
  }
  static MapMetricSpec histogram(MetricKind kind = MetricKind::Histogram) {
    MapMetricSpec spec;
    spec.name = "lat_seconds";
    spec.kind = kind;
    spec.map = "lat";
    spec.pos = {"t.yaml", 9, 11};
    spec.bucket_type = BucketType::Exp2;
    spec.bucket_min = 0;
    spec.bucket_max = 3;
    spec.bucket_multiplier = 1e-6;
    auto uint_label = [](std::string name) {
      return MapMetricLabel{std::move(name), 4, {LabelDecoder{.kind = LabelDecoderKind::Uint}}, {}};
    };
    spec.labels = std::vector<MapMetricLabel>{uint_label("op"), uint_label("bucket")};
    return spec;
  }
  Result<std::unique_ptr<MapMetric>> bind(uint32_t value_type_id, uint32_t value_size, uint32_t map_type,
                                          uint32_t cpus, MetricKind kind = MetricKind::Histogram,
                                          bool with_btf = true) {
    MetricMapInfo info{.program = "obj", .fd = null_};
    info.shape = MapShape{.type = map_type, .key_size = 8, .value_size = value_size, .max_entries = 64, .cpus = cpus};
    if (with_btf) {
      info.btf = btf_;
      info.value_type_id = value_type_id;
    }
    return MapMetric::bind(histogram(kind), info, "s");
  }
  std::string refusal(uint32_t value_type_id, uint32_t value_size, MetricKind kind = MetricKind::Histogram,
                      bool with_btf = true) {
    auto metric = bind(value_type_id, value_size, BPF_MAP_TYPE_HASH, 1, kind, with_btf);
    return metric ? "accepted" : metric.error().message;
  }
  uint32_t count_sum() {
    return add_struct("hist", 16, {{"count", u64_, 0}, {"sum", u64_, 64}});
  }

  struct btf* btf_ = btf__new_empty();
  int u64_ = 0, s64_ = 0, u32_ = 0;
  int null_ = open("/dev/null", O_RDONLY | O_CLOEXEC);  // a descriptor for bind to duplicate
};

void add_count_sum_entry(MapEntries& entries, uint32_t op, uint32_t bucket,
                         std::initializer_list<std::pair<uint64_t, uint64_t>> per_cpu) {
  std::byte key[8];
  std::memcpy(key, &op, 4);
  std::memcpy(key + 4, &bucket, 4);
  entries.keys.insert(entries.keys.end(), key, key + 8);
  for (auto [count, sum] : per_cpu) {
    std::byte value[16];
    std::memcpy(value, &count, 8);
    std::memcpy(value + 8, &sum, 8);
    entries.values.insert(entries.values.end(), value, value + 16);
  }
  ++entries.count;
}

TEST_F(MapMetricHistogramValue, CountAndSumStructIsTheHistogramsValue) {
  uint32_t id = count_sum();
  auto value = map_value_type(btf_, id, 16, MetricKind::Histogram);
  ASSERT_TRUE(value) << value.error().message;
  EXPECT_TRUE(value->count_and_sum);
  EXPECT_EQ(value->size, 16u);
  // Behind a typedef and const, and whatever the struct is called.
  uint32_t anonymous = add_struct(nullptr, 16, {{"count", u64_, 0}, {"sum", u64_, 64}});
  int aliased = btf__add_const(btf_, btf__add_typedef(btf_, "hist_t", static_cast<int>(anonymous)));
  ASSERT_GT(aliased, 0);
  auto through = map_value_type(btf_, static_cast<uint32_t>(aliased), 16, MetricKind::Histogram);
  ASSERT_TRUE(through) << through.error().message;
  EXPECT_TRUE(through->count_and_sum);
  // An integer value keeps its meaning.
  auto integer = map_value_type(btf_, static_cast<uint32_t>(u64_), 8, MetricKind::Histogram);
  ASSERT_TRUE(integer) << integer.error().message;
  EXPECT_FALSE(integer->count_and_sum);
}

TEST_F(MapMetricHistogramValue, CountsGoToTheirBucketsAndSumsAddUpOverCpus) {
  auto metric = bind(count_sum(), 16, BPF_MAP_TYPE_PERCPU_HASH, 2);
  ASSERT_TRUE(metric) << metric.error().message;
  MapEntries entries;
  add_count_sum_entry(entries, 1, 0, {{2, 1}, {1, 0}});     // 3 values of at most 1 us, summing 1 us
  add_count_sum_entry(entries, 1, 3, {{0, 0}, {4, 30}});    // 4 values of at most 8 us
  add_count_sum_entry(entries, 1, 4, {{1, 100}, {0, 0}});   // bucket_max + 1: a bucket past the last, +Inf
  add_count_sum_entry(entries, 1, 9, {{1, 600}, {1, 700}});  // above: +Inf
  add_count_sum_entry(entries, 2, 1, {{5, 9}, {0, 0}});
  MetricFamily family = (*metric)->build(entries);
  ASSERT_EQ(family.series.size(), 2u);
  EXPECT_EQ(family.series[0].labels, (LabelSet{{"op", "1"}}));
  const HistogramData& one = family.series[0].histogram;
  EXPECT_EQ(one.bounds, (std::vector<double>{1e-6, 2e-6, 4e-6, 8e-6}));
  EXPECT_EQ(one.counts, (std::vector<uint64_t>{3, 0, 0, 4, 3}));
  EXPECT_EQ(one.count, 10u);
  EXPECT_DOUBLE_EQ(one.sum, 1431e-6);
  const HistogramData& two = family.series[1].histogram;
  EXPECT_EQ(two.counts, (std::vector<uint64_t>{0, 5, 0, 0, 0}));
  EXPECT_EQ(two.count, 5u);
  EXPECT_DOUBLE_EQ(two.sum, 9e-6);
}

TEST_F(MapMetricHistogramValue, ArrayEntriesWithNeitherCountNorSumAreLeftOut) {
  auto metric = bind(count_sum(), 16, BPF_MAP_TYPE_PERCPU_ARRAY, 1);
  ASSERT_TRUE(metric) << metric.error().message;
  MapEntries entries;
  add_count_sum_entry(entries, 1, 1, {{0, 0}});
  add_count_sum_entry(entries, 2, 1, {{1, 2}});
  MetricFamily family = (*metric)->build(entries);
  ASSERT_EQ(family.series.size(), 1u);
  EXPECT_EQ(family.series[0].labels, (LabelSet{{"op", "2"}}));
}

TEST_F(MapMetricHistogramValue, OtherStructsAreRefusedNamingTheExpectedForm) {
  const std::string prefix = "t.yaml:9:11: metric 'lat_seconds': map 'lat' of program 'obj': the map's value is ";
  const std::string form =
      "a histogram reads one unsigned integer per key (e.g. __u64) or struct { __u64 count; __u64 sum; }";
  EXPECT_EQ(refusal(add_struct("other", 16, {{"count", u64_, 0}, {"other", u64_, 64}}), 16),
            prefix + "struct other (16 bytes); " + form + " (member 2 is 'other', not 'sum')");
  EXPECT_EQ(refusal(add_struct("swapped", 16, {{"sum", u64_, 0}, {"count", u64_, 64}}), 16),
            prefix + "struct swapped (16 bytes); " + form + " (member 1 is 'sum', not 'count')");
  EXPECT_EQ(refusal(add_struct("signed_sum", 16, {{"count", u64_, 0}, {"sum", s64_, 64}}), 16),
            prefix + "struct signed_sum (16 bytes); " + form + " ('sum' is __s64 at byte 8)");
  EXPECT_EQ(refusal(add_struct("narrow", 8, {{"count", u32_, 0}, {"sum", u32_, 32}}), 8),
            prefix + "struct narrow (8 bytes); " + form + " (it has 2 members in 8 bytes)");
  EXPECT_EQ(refusal(add_struct("three", 24, {{"count", u64_, 0}, {"sum", u64_, 64}, {"max", u64_, 128}}), 24),
            prefix + "struct three (24 bytes); " + form + " (it has 3 members in 24 bytes)");
  int both = btf__add_union(btf_, "both", 16);
  ASSERT_GT(both, 0);
  ASSERT_EQ(btf__add_field(btf_, "count", u64_, 0, 0), 0);
  ASSERT_EQ(btf__add_field(btf_, "sum", u64_, 0, 0), 0);
  EXPECT_EQ(refusal(static_cast<uint32_t>(both), 16),
            prefix + "union both (16 bytes); " + form + " (it is not a struct)");
  // A bit-field member at the right place is still not an 8-byte integer.
  uint32_t bits = static_cast<uint32_t>(btf__add_struct(btf_, "bits", 16));
  ASSERT_EQ(btf__add_field(btf_, "count", u64_, 0, 0), 0);
  ASSERT_EQ(btf__add_field(btf_, "sum", u64_, 64, 63), 0);
  EXPECT_EQ(refusal(bits, 16), prefix + "struct bits (16 bytes); " + form + " ('sum' is __u64 at byte 8)");
}

TEST_F(MapMetricHistogramValue, TheStructIsOnlyAHistogramsAndOnlyKnownByBtf) {
  const std::string prefix = "t.yaml:9:11: metric 'lat_seconds': map 'lat' of program 'obj': the map's value is ";
  EXPECT_EQ(refusal(count_sum(), 16, MetricKind::Counter),
            prefix + "struct hist (16 bytes); a map metric reads one integer per key (e.g. __u64)");
  EXPECT_EQ(refusal(count_sum(), 16, MetricKind::Histogram, false),
            prefix + "16 bytes; a map metric reads one integer of 1, 2, 4 or 8 bytes per key (a histogram's struct "
                     "{ __u64 count; __u64 sum; } is known by the map's BTF, which it lacks)");
  int bytes = btf__add_array(btf_, u32_, u32_, 4);
  ASSERT_GT(bytes, 0);
  EXPECT_EQ(refusal(static_cast<uint32_t>(bytes), 16),
            prefix + "__u32[4] (16 bytes); a map metric reads one integer per key (e.g. __u64) or, for a "
                     "histogram, struct { __u64 count; __u64 sum; }");
}

}  // namespace
}  // namespace ea
