// Event pipeline throughput on one CPU. A BPF program puts N small records in a ring buffer; they
// are drained (a) raw, with ring_buffer__consume and a trivial callback, and (b) through the
// agent's real pipeline: ring-buffer channel -> fan-out -> one worker shard -> processor ->
// JSON-lines file sink on tmpfs. Two workloads: 40-byte records decoded through BTF (the generic
// path, no user code) and tcp_connlat's 88-byte records through its built-in processor, without
// and with its connect-duration histogram. Rounds
// alternate (a) and (b) so both see the same machine noise; figures are medians, and (b) is also
// given as a ratio to (a) measured in the same round.
//
//   pipeline_bench [--records N] [--rounds R] [--cpu C] [--dir /dev/shm]
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench_events.skel.h"
#include "channel/ring_buffer_channel.h"
#include "metrics/registry.h"
#include "pipeline/btf_decoder.h"
#include "pipeline/fanout.h"
#include "pipeline/record_key.h"
#include "pipeline/shard_pool.h"
#include "sink/file_sink.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr auto kStallTimeout = std::chrono::seconds(10);
constexpr size_t kRingHeaderBytes = 8;  // each ring-buffer record carries an 8-byte header

[[noreturn]] void die(const std::string& message) {
  fmt::print(stderr, "pipeline_bench: {}\n", message);
  std::exit(1);
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

// Every thread made from here on (channel reader, shard, file flusher) inherits this affinity.
void pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) die(fmt::format("cannot pin to CPU {}: {}", cpu, strerror(errno)));
}

// CPU time of the whole process (all its threads share the one pinned CPU). On a machine others
// use too, records per CPU-second shows the pipeline's own cost apart from waiting for the CPU.
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Wall-clock and CPU time of one timed section.
class Stopwatch {
 public:
  Stopwatch() : wall_(Clock::now()), cpu_(process_cpu_seconds()) {}
  struct Rate {
    double wall = 0;  // records per second
    double cpu = 0;   // records per CPU-second
  };
  Rate rate(uint64_t records) const {
    double wall = std::chrono::duration<double>(Clock::now() - wall_).count();
    double cpu = process_cpu_seconds() - cpu_;
    return {static_cast<double>(records) / wall, static_cast<double>(records) / cpu};
  }

 private:
  Clock::time_point wall_;
  double cpu_;
};
using Rate = Stopwatch::Rate;

// One kind of record: the program that makes it, its ring buffer and the processor that decodes it.
struct Workload {
  std::string name;
  std::string record_struct;
  std::string sequence_field;  // the field of the processor's output holding the record's index
  bpf_program* fill = nullptr;
  bpf_map* ring = nullptr;
  const volatile uint64_t* dropped = nullptr;
  int record_type = 0;
  std::function<ea::Result<std::unique_ptr<ea::Processor>>()> make_processor;
};

class Generator {
 public:
  explicit Generator(uint64_t records) : records_(records) {
    skel_ = bench_events__open();
    if (!skel_) die(fmt::format("cannot open bench_events.bpf.o: {}", strerror(errno)));
    // Each ring buffer must hold every record at once.
    size_ring(skel_->maps.bench_events, 40);
    size_ring(skel_->maps.connlat_events, 88);
    if (int err = bench_events__load(skel_); err != 0)
      die(fmt::format("cannot load bench_events.bpf.o: {} (needs root and BPF_PROG_TYPE_SYSCALL)", strerror(-err)));
    btf_ = bpf_object__btf(skel_->obj);

    Workload btf_workload{"BTF decoder", "bench_event", "seq", skel_->progs.fill_bench_events,
                          skel_->maps.bench_events, counter(&skel_->bss->bench_events_dropped)};
    btf_workload.record_type = find_struct("bench_event");
    btf_workload.make_processor = [this, type = btf_workload.record_type] { return ea::make_btf_decoder(btf_, type); };
    workloads_.push_back(std::move(btf_workload));

    Workload connlat_workload{"tcp_connlat", "connlat_event", "latency_ns", skel_->progs.fill_connlat_events,
                              skel_->maps.connlat_events, counter(&skel_->bss->connlat_events_dropped)};
    connlat_workload.record_type = find_struct("connlat_event");
    const ea::ProcessorFactory* factory = ea::find_builtin_processor("tcp_connlat");
    if (!factory) die("the built-in tcp_connlat processor is not linked in");
    connlat_workload.make_processor = [factory] { return (*factory)(ea::ProcessorContext{}); };
    // The same with its connect-duration histogram on, as the agent runs it.
    Workload connlat_metric_workload = connlat_workload;
    connlat_metric_workload.name = "tcp_connlat + histogram";
    connlat_metric_workload.make_processor = [this, factory] {
      return (*factory)(ea::ProcessorContext{.spec = &connlat_spec_, .metrics = &metrics_});
    };
    workloads_.push_back(std::move(connlat_workload));
    workloads_.push_back(std::move(connlat_metric_workload));
  }
  ~Generator() { bench_events__destroy(skel_); }

  // Puts N records in the workload's ring buffer (BPF_PROG_TEST_RUN of its syscall program).
  void fill(const Workload& workload) {
    skel_->bss->fill_count = static_cast<uint32_t>(records_);
    uint64_t dropped_before = *workload.dropped;
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    if (bpf_prog_test_run_opts(bpf_program__fd(workload.fill), &opts) != 0)
      die(fmt::format("BPF_PROG_TEST_RUN failed: {}", strerror(errno)));
    if (opts.retval != records_ || *workload.dropped != dropped_before)
      die(fmt::format("{}: filled {} of {} records (ring buffer not drained?)", workload.name, opts.retval, records_));
  }

  const std::vector<Workload>& workloads() const { return workloads_; }
  const struct btf* btf() const { return btf_; }

 private:
  void size_ring(bpf_map* map, size_t record_bytes) {
    uint64_t bytes = std::bit_ceil(std::max<uint64_t>(records_ * (kRingHeaderBytes + record_bytes), 1 << 20));
    if (bpf_map__set_max_entries(map, static_cast<uint32_t>(bytes)) != 0) die("cannot size the ring buffers");
  }
  int find_struct(const char* name) const {
    int id = btf__find_by_name_kind(btf_, name, BTF_KIND_STRUCT);
    if (id <= 0) die(fmt::format("struct {} is missing from the object's BTF", name));
    return id;
  }
  static const volatile uint64_t* counter(const volatile __u64* global) {
    return reinterpret_cast<const volatile uint64_t*>(global);
  }

  uint64_t records_;
  ea::MetricRegistry metrics_;
  ea::Spec connlat_spec_{.name = "tcp_connlat"};
  bench_events* skel_ = nullptr;
  const struct btf* btf_ = nullptr;
  std::vector<Workload> workloads_;
};

// (a) The ceiling: libbpf's drain loop with a callback that only touches each record. One reader
// per workload for the whole run, warmed up once, so its mapping of the ring is faulted in as an
// agent's is in steady state. (The pipeline's channel maps the ring afresh each round, as an agent
// does when it starts a spec; its first-touch faults cost it a few percent.)
class RawDrain {
 public:
  RawDrain(Generator& generator, const Workload& workload, uint64_t records)
      : generator_(generator), workload_(workload), records_(records) {
    ring_ = ring_buffer__new(bpf_map__fd(workload.ring), on_sample, &count_, nullptr);
    if (!ring_) die(fmt::format("ring_buffer__new: {}", strerror(errno)));
    run();
  }
  ~RawDrain() { ring_buffer__free(ring_); }
  RawDrain(const RawDrain&) = delete;
  RawDrain& operator=(const RawDrain&) = delete;

  Rate run() {
    count_ = {};
    generator_.fill(workload_);
    Stopwatch stopwatch;
    int consumed = ring_buffer__consume(ring_);
    Rate rate = stopwatch.rate(records_);
    if (consumed < 0 || count_.records != records_)
      die(fmt::format("{}: raw drain consumed {} of {} records", workload_.name, count_.records, records_));
    return rate;
  }

 private:
  struct Count {
    uint64_t records = 0;
    uint64_t checksum = 0;
  };
  static int on_sample(void* context, void* data, size_t size) {
    auto* count = static_cast<Count*>(context);
    ++count->records;
    count->checksum += size + *static_cast<const uint64_t*>(data);
    return 0;
  }

  Generator& generator_;
  const Workload& workload_;
  uint64_t records_;
  ring_buffer* ring_ = nullptr;
  Count count_;
};

uint64_t handled(const ea::Route& route) {
  const auto& c = route.counters;
  return c.emitted.load() + c.skipped.load() + c.failed.load() + c.dropped.load();
}

// The file holds every record: the bytes the sink counted are on disk (across rotations), and
// the last line is the last record (one shard keeps order).
void verify_output(const std::string& path, const ea::Sink& sink, const Workload& workload, uint64_t records) {
  const auto& counters = sink.counters();
  uint64_t on_disk = 0;
  for (unsigned i = 0; i <= ea::FileSinkOptions{}.keep; ++i) {
    std::string file = i == 0 ? path : fmt::format("{}.{}", path, i);
    std::error_code ec;
    if (fs::exists(file, ec)) on_disk += fs::file_size(file, ec);
  }
  if (counters.records.load() != records || counters.failures.load() != 0 || on_disk != counters.bytes.load())
    die(fmt::format("{}: file sink wrote {} of {} records, {} failures, {} bytes on disk of {} counted", workload.name,
                    counters.records.load(), records, counters.failures.load(), on_disk, counters.bytes.load()));
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  std::streamoff size = in.tellg();
  std::streamoff tail = std::min<std::streamoff>(size, 4096);
  std::string last(static_cast<size_t>(tail), '\0');
  in.seekg(size - tail);
  in.read(last.data(), tail);
  if (!last.empty()) last.pop_back();  // the final newline
  last = last.substr(last.rfind('\n') + 1);
  auto line = nlohmann::json::parse(last, nullptr, false);
  if (line.is_discarded() || line["data"][workload.sequence_field] != records - 1 || line["comm"] != "bench-worker")
    die(fmt::format("{}: unexpected last record in {}: {}", workload.name, path, last));
}

// (b) The agent's pipeline, timed from starting the channel until the file sink has written
// (and flushed) the last record.
Rate pipeline_rate(Generator& generator, const Workload& workload, uint64_t records, const std::string& directory) {
  std::string path = directory + "/records.jsonl";
  auto opened = ea::FileSink::open({.path = path});
  if (!opened) die(opened.error().message);
  std::shared_ptr<ea::Sink> sink = std::move(*opened);

  auto route = std::make_shared<ea::Route>();
  route->origin = {"bench", "bench", bpf_map__name(workload.ring), "bench"};
  route->origin.processor = workload.name;
  route->strategy = ea::DispatchStrategy::Hash;
  route->key = ea::find_key_field(generator.btf(), workload.record_type, "");
  auto processor = workload.make_processor();
  if (!processor) die(processor.error().message);
  route->processors.push_back(std::move(*processor));
  route->sinks = std::make_shared<const ea::SinkSet>(ea::SinkSet{sink});

  ea::ShardPool pool(1);
  ea::ChannelFanout fanout(pool, {route});
  ea::RingBufferChannel channel(bpf_map__name(workload.ring), bpf_map__fd(workload.ring), workload.dropped);
  generator.fill(workload);

  Stopwatch stopwatch;
  auto started = channel.start([&](std::span<const std::byte> record) { fanout.on_record(record); },
                               [&] { fanout.flush(); });
  if (!started) die(started.error().message);
  uint64_t last_handled = 0;
  auto last_progress = Clock::now();
  while (handled(*route) < records) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    if (uint64_t now_handled = handled(*route); now_handled != last_handled) {
      last_handled = now_handled;
      last_progress = Clock::now();
    } else if (Clock::now() - last_progress > kStallTimeout) {
      die(fmt::format("{}: pipeline stalled at {} of {} records", workload.name, last_handled, records));
    }
  }
  sink->flush();
  Rate rate = stopwatch.rate(records);

  channel.stop();
  pool.stop();
  sink->stop();
  const auto& c = route->counters;
  if (c.emitted.load() != records)
    die(fmt::format("{}: pipeline emitted {} of {} records ({} failed: {}; {} dropped in the shard queue)", workload.name,
                    c.emitted.load(), records, c.failed.load(), route->processors[0]->error(), c.dropped.load()));
  verify_output(path, *sink, workload, records);
  fs::remove_all(directory);
  fs::create_directories(directory);
  return rate;
}

struct Figures {
  std::vector<double> raw, raw_cpu, pipeline, pipeline_cpu, ratio;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Event pipeline throughput on one CPU, beside the raw ring-buffer drain rate"};
  uint64_t records = 1'000'000;
  unsigned rounds = 5;
  int cpu = static_cast<int>(std::thread::hardware_concurrency()) - 1;
  std::string tmpfs = "/dev/shm";
  app.add_option("--records", records, "records per round and workload")->check(CLI::Range(1000, 4'000'000));
  app.add_option("--rounds", rounds, "alternating rounds of (a) and (b)")->check(CLI::Range(1, 100));
  app.add_option("--cpu", cpu, "the CPU every thread is pinned to (default: the last)");
  app.add_option("--dir", tmpfs, "tmpfs directory for the file sink");
  CLI11_PARSE(app, argc, argv);

  if (geteuid() != 0) {
    fmt::print("pipeline_bench: SKIPPED: needs root (loads BPF programs)\n");
    return 77;
  }
  pin_to_cpu(cpu);
  libbpf_set_print(nullptr);
  Generator generator(records);
  std::string directory = fmt::format("{}/ea-pipeline-bench-{}", tmpfs, getpid());
  fs::create_directories(directory);

  fmt::print("pipeline_bench: {} records per round, all threads on CPU {}, file sink in {}\n", records, cpu, tmpfs);
  std::vector<Figures> figures(generator.workloads().size());
  std::vector<std::unique_ptr<RawDrain>> raw_drains;
  for (const Workload& workload : generator.workloads())
    raw_drains.push_back(std::make_unique<RawDrain>(generator, workload, records));
  for (unsigned round = 1; round <= rounds; ++round) {
    for (size_t w = 0; w < generator.workloads().size(); ++w) {
      const Workload& workload = generator.workloads()[w];
      Rate a = raw_drains[w]->run();
      Rate b = pipeline_rate(generator, workload, records, directory);
      Figures& f = figures[w];
      f.raw.push_back(a.wall), f.raw_cpu.push_back(a.cpu);
      f.pipeline.push_back(b.wall), f.pipeline_cpu.push_back(b.cpu);
      f.ratio.push_back(b.wall / a.wall);
      fmt::print("  round {} {:<12} raw drain {:6.2f} M/s ({:6.2f} M/CPU-s)   pipeline {:5.3f} M/s "
                 "({:5.3f} M/CPU-s)   ratio {:.4f}\n",
                 round, workload.name, a.wall / 1e6, a.cpu / 1e6, b.wall / 1e6, b.cpu / 1e6, f.ratio.back());
    }
  }
  fs::remove_all(directory);

  bool target_met = true;
  for (size_t w = 0; w < generator.workloads().size(); ++w) {
    const Figures& f = figures[w];
    double pipeline = median(f.pipeline);
    target_met = target_met && pipeline >= 1e6;
    fmt::print("median {:<12} raw drain {:.2f} M events/s ({:.2f} M/CPU-s); pipeline to file {:.3f} M events/s "
               "({:.3f} M/CPU-s); ratio {:.4f}\n",
               generator.workloads()[w].name, median(f.raw) / 1e6, median(f.raw_cpu) / 1e6, pipeline / 1e6,
               median(f.pipeline_cpu) / 1e6, median(f.ratio));
  }
  fmt::print("target >= 1M events/s to the file sink: {}\n", target_met ? "met" : "NOT met");
  return 0;
}
