// Embedded store (tsdb output): ingest rate and bytes per sample on realistic agent series.
//
// Series (defaults): 2000 counters, 500 gauges and 100 histograms of 12 bounds (+Inf, _sum and
// _count make 15 samples each): 4000 samples per snapshot, one snapshot every 10 s of simulated
// time, 6 simulated hours (8.64 M samples). Samples are counted as Prometheus counts them.
//   counters:   30% idle (error/drop counters that stay put), 40% low rate (Poisson, mean 0.1-5
//               per interval), 30% busy (Poisson, mean 10-100000 per interval)
//   gauges:     40% constant, 30% integer random walks (memory in 4 KiB pages), 30% float noise
//               (ratios with a full mantissa)
//   histograms: Poisson(0-500) observations per interval, spread over log-scale buckets; _sum is
//               a float that grows by the observed latencies
// The values are generated before the clock starts, so only the store is timed.
//
// (a) bulk ingest: snapshots handed to the real TsdbSink (write_metrics) as fast as it takes
//     them, with its normal flush interval, until the last one is committed (flush()).
// (b) one commit per snapshot, as in production (the metrics interval is longer than the flush
//     interval): write_metrics + flush() for each snapshot, over the first simulated hour.
// Bytes per sample: the database file plus its WAL after the store is closed (checkpointed),
// divided by the samples, beside the chunk bytes alone (the codec without SQLite).
// Baseline, same data and machine: plain SQLite rows (series_id, time, value) in WAL mode, one
// transaction per snapshot, over the first 10 simulated minutes. Targets: >= 1 M samples/s ingest,
// <= 2 bytes/sample (Prometheus publishes ~1.3 bytes/sample for its TSDB).
//
//   tsdb_bench [--hours 6] [--counters 2000] [--gauges 500] [--histograms 100] [--buckets 12]
//              [--jitter-ms 0] [--dir /var/tmp]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/record.h"
#include "tsdb/schema.h"
#include "tsdb/sqlite.h"
#include "tsdb/tsdb_defaults.h"
#include "tsdb/tsdb_sink.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;
using namespace ea;
using namespace ea::tsdb;

constexpr double kTargetSamplesPerSecond = 1e6;
constexpr double kTargetBytesPerSample = 2.0;
constexpr double kPrometheusBytesPerSample = 1.3;

[[noreturn]] void die(const std::string& message) {
  fmt::print(stderr, "tsdb_bench: {}\n", message);
  std::exit(1);
}

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

struct Shape {
  unsigned counters = 2000, gauges = 500, histograms = 100, buckets = 12;
  unsigned steps = 2160;
  int64_t interval_ms = 10'000;
  int64_t jitter_ms = 0;
};

// A snapshot whose structure (families, label sets, bounds) is built once; each step only its
// values change, from a table computed before timing.
class Workload {
 public:
  explicit Workload(const Shape& shape) : shape_(shape) {
    build_structure();
    generate_values();
  }
  unsigned steps() const { return shape_.steps; }
  uint64_t samples_per_snapshot() const { return shape_.counters + shape_.gauges + shape_.histograms * (shape_.buckets + 3); }
  int64_t start_ms() const { return start_ms_; }

  const MetricsSnapshot& at(unsigned step) {
    const double* values = &values_[static_cast<size_t>(step) * values_per_step_];
    for (MetricFamily& family : snapshot_.families) {
      for (MetricSeries& series : family.series) {
        if (family.kind != MetricKind::Histogram) {
          series.value = *values++;
          continue;
        }
        for (uint64_t& count : series.histogram.counts) count = static_cast<uint64_t>(*values++);
        series.histogram.sum = *values++;
        series.histogram.count = static_cast<uint64_t>(*values++);
      }
    }
    snapshot_.time_ns = static_cast<uint64_t>(times_[step]) * 1'000'000;
    return snapshot_;
  }

 private:
  void add_families(const char* prefix, MetricKind kind, unsigned series_count, unsigned per_family, const char* unit) {
    static const char* kStatus[] = {"ok", "error", "timeout", "dropped"};
    for (unsigned first = 0; first < series_count; first += per_family) {
      MetricFamily family;
      family.name = fmt::format("{}_{}", prefix, first / per_family);
      family.help = fmt::format("synthetic {} {}", to_string(kind), first / per_family);
      family.unit = unit;
      family.kind = kind;
      family.spec = fmt::format("spec_{}", first / per_family % 7);
      for (unsigned i = first; i < std::min(series_count, first + per_family); ++i) {
        MetricSeries series;
        series.labels = {{"channel", fmt::format("events_{}", i % 13)},
                         {"comm", fmt::format("worker-{}", i % 17)},
                         {"status", kStatus[i % 4]},
                         {"instance", fmt::format("{}", i)}};
        std::sort(series.labels.begin(), series.labels.end());
        if (kind == MetricKind::Histogram) {
          for (unsigned b = 0; b < shape_.buckets; ++b) series.histogram.bounds.push_back(0.001 * std::pow(2.0, b));
          series.histogram.counts.assign(shape_.buckets + 1, 0);
        }
        family.series.push_back(std::move(series));
      }
      snapshot_.families.push_back(std::move(family));
    }
  }

  void build_structure() {
    add_families("bench_records", MetricKind::Counter, shape_.counters, 100, "");
    add_families("bench_memory", MetricKind::Gauge, shape_.gauges, 100, "bytes");
    add_families("bench_latency_seconds", MetricKind::Histogram, shape_.histograms, 50, "seconds");
    values_per_step_ = shape_.counters + shape_.gauges + shape_.histograms * (shape_.buckets + 1 + 2);
    start_ms_ = static_cast<int64_t>(ea::wall_clock_ns() / 1'000'000) - static_cast<int64_t>(shape_.steps) * shape_.interval_ms;
  }

  void generate_values() {
    std::mt19937_64 random(20240501);
    std::uniform_real_distribution<double> unit(0, 1);
    std::normal_distribution<double> normal(0, 1);
    values_.resize(static_cast<size_t>(shape_.steps) * values_per_step_);
    times_.resize(shape_.steps);
    // Per-series models.
    std::vector<double> counter_rate(shape_.counters), counter_value(shape_.counters);
    for (unsigned i = 0; i < shape_.counters; ++i) {
      double pick = unit(random);
      counter_rate[i] = pick < 0.3 ? 0 : pick < 0.7 ? 0.1 + 4.9 * unit(random) : std::pow(10, 1 + 4 * unit(random));
      counter_value[i] = counter_rate[i] == 0 ? std::floor(unit(random) * 5) : std::floor(unit(random) * 1e6);
    }
    std::vector<int> gauge_model(shape_.gauges);
    std::vector<double> gauge_value(shape_.gauges);
    for (unsigned i = 0; i < shape_.gauges; ++i) {
      double pick = unit(random);
      gauge_model[i] = pick < 0.4 ? 0 : pick < 0.7 ? 1 : 2;
      gauge_value[i] = gauge_model[i] == 0 ? std::floor(unit(random) * 65536)
                       : gauge_model[i] == 1 ? 4096.0 * std::floor(1e4 + unit(random) * 1e5)
                                             : unit(random);
    }
    unsigned bucket_count = shape_.buckets + 1;
    std::vector<double> histogram_rate(shape_.histograms);
    std::vector<std::vector<uint64_t>> histogram_counts(shape_.histograms, std::vector<uint64_t>(bucket_count, 0));
    std::vector<double> histogram_sum(shape_.histograms, 0);
    std::vector<uint64_t> histogram_total(shape_.histograms, 0);
    for (double& rate : histogram_rate) rate = 500 * unit(random);
    // Latencies: log-normal around 8 ms; bucket probabilities from the bounds.
    std::lognormal_distribution<double> latency(std::log(0.008), 1.0);

    for (unsigned step = 0; step < shape_.steps; ++step) {
      // A steady cadence (as the agent's metrics pump keeps) with wake-up jitter around it.
      int64_t time = start_ms_ + (step + 1) * shape_.interval_ms;
      if (shape_.jitter_ms > 0) time += static_cast<int64_t>(random() % (2 * shape_.jitter_ms + 1)) - shape_.jitter_ms;
      times_[step] = time;
      double* out = &values_[static_cast<size_t>(step) * values_per_step_];
      for (unsigned i = 0; i < shape_.counters; ++i) {
        if (counter_rate[i] > 0) counter_value[i] += std::poisson_distribution<int64_t>(counter_rate[i])(random);
        *out++ = counter_value[i];
      }
      for (unsigned i = 0; i < shape_.gauges; ++i) {
        if (gauge_model[i] == 1) gauge_value[i] = std::max(4096.0, gauge_value[i] + 4096.0 * std::round(50 * normal(random)));
        if (gauge_model[i] == 2) gauge_value[i] = std::clamp(gauge_value[i] + 0.01 * normal(random), 0.0, 1.0);
        *out++ = gauge_value[i];
      }
      for (unsigned h = 0; h < shape_.histograms; ++h) {
        int64_t observations = std::poisson_distribution<int64_t>(std::max(histogram_rate[h], 1e-9))(random);
        // Up to 64 latencies drawn one by one; more are spread in proportion to the first 64.
        int64_t drawn = std::min<int64_t>(observations, 64);
        std::vector<uint64_t> in_bucket(bucket_count, 0);
        double drawn_sum = 0;
        for (int64_t o = 0; o < drawn; ++o) {
          double value = latency(random);
          drawn_sum += value;
          unsigned b = 0;
          while (b < shape_.buckets && value > 0.001 * std::pow(2.0, b)) ++b;
          ++in_bucket[b];
        }
        double scale = drawn > 0 ? static_cast<double>(observations) / static_cast<double>(drawn) : 0;
        uint64_t added = 0;
        for (unsigned b = 0; b < bucket_count; ++b) {
          auto share = static_cast<uint64_t>(std::llround(static_cast<double>(in_bucket[b]) * scale));
          histogram_counts[h][b] += share;
          added += share;
        }
        histogram_total[h] += added;
        histogram_sum[h] += drawn_sum * scale;
        for (unsigned b = 0; b < bucket_count; ++b) *out++ = static_cast<double>(histogram_counts[h][b]);
        *out++ = histogram_sum[h];
        *out++ = static_cast<double>(histogram_total[h]);
      }
    }
  }

  Shape shape_;
  MetricsSnapshot snapshot_;
  size_t values_per_step_ = 0;
  std::vector<double> values_;
  std::vector<int64_t> times_;
  int64_t start_ms_ = 0;
};

uint64_t store_bytes(const std::string& dir) {
  uint64_t bytes = 0;
  for (const char* suffix : {"", "-wal"}) {
    std::error_code ec;
    auto size = fs::file_size(dir + "/" + kDatabaseFileName + suffix, ec);
    if (!ec) bytes += size;
  }
  return bytes;
}

std::unique_ptr<TsdbSink> open_sink(const std::string& dir) {
  TsdbSinkOptions options;
  options.writer.dir = dir;
  options.writer.retention = kDefaultRetention;
  options.writer.max_size = 0;  // the whole run is measured
  options.flush_interval = kDefaultFlushInterval;
  options.queue_bytes = kDefaultQueueBytes;
  auto sink = TsdbSink::open(options);
  if (!sink) die(sink.error().message);
  return std::move(*sink);
}

struct IngestFigures {
  uint64_t samples = 0;
  double seconds = 0;
  uint64_t file_bytes = 0;
  double rate() const { return static_cast<double>(samples) / seconds; }
  double bytes_per_sample() const { return static_cast<double>(file_bytes) / static_cast<double>(samples); }
};

// (a) and (b): through TsdbSink, the output the agent uses.
IngestFigures ingest(Workload& workload, const std::string& dir, unsigned steps, bool commit_each) {
  fs::remove_all(dir);
  auto sink = open_sink(dir);
  const uint64_t backlog_limit = 8 * workload.samples_per_snapshot();
  auto start = Clock::now();
  for (unsigned step = 0; step < steps; ++step) {
    // write_metrics never blocks and drops what does not fit: keep the backlog short instead.
    while (sink->queued() > backlog_limit) std::this_thread::sleep_for(std::chrono::microseconds(50));
    sink->write_metrics(workload.at(step));
    if (commit_each) sink->flush();
  }
  sink->flush();
  IngestFigures figures;
  figures.seconds = seconds_since(start);
  figures.samples = sink->counters().metric_samples.load();
  uint64_t failures = sink->counters().metric_failures.load();
  sink->stop();
  if (failures > 0 || figures.samples != workload.samples_per_snapshot() * steps)
    die(fmt::format("{} samples written, {} failed, {} expected", figures.samples, failures,
                    workload.samples_per_snapshot() * steps));
  figures.file_bytes = store_bytes(dir);
  return figures;
}

struct ChunkBreakdown {
  std::string kind;
  uint64_t samples = 0, bytes = 0;
};

std::vector<ChunkBreakdown> chunk_bytes_by_kind(const std::string& dir) {
  auto db = open_store_for_reading(dir + "/" + kDatabaseFileName);
  if (!db) die(db.error().message);
  auto statement = db->prepare(
      "SELECT m.kind, sum(c.samples), sum(length(c.data)) FROM chunks c JOIN series s ON s.id = c.series_id "
      "JOIN metrics m ON m.id = s.metric_id GROUP BY m.kind ORDER BY m.kind");
  if (!statement) die(statement.error().message);
  std::vector<ChunkBreakdown> out;
  while (true) {
    auto row = statement->step();
    if (!row) die(row.error().message);
    if (!*row) break;
    out.push_back({std::string(statement->column_text(0)), static_cast<uint64_t>(statement->column_int(1)),
                   static_cast<uint64_t>(statement->column_int(2))});
  }
  return out;
}

// Baseline: one SQLite row per sample, one transaction per snapshot, same pragmas as the store.
IngestFigures plain_rows(Workload& workload, const std::string& dir, unsigned steps) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto db = Database::open(dir + "/rows.db", Database::Mode::ReadWrite);
  if (!db) die(db.error().message);
  for (const char* sql : {"PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL",
                          "CREATE TABLE samples(series_id INTEGER, time_ms INTEGER, value REAL, PRIMARY KEY(series_id, time_ms)) "
                          "WITHOUT ROWID"})
    if (auto done = db->exec(sql); !done) die(done.error().message);
  auto insert = db->prepare("INSERT INTO samples VALUES(?1, ?2, ?3)");
  if (!insert) die(insert.error().message);
  IngestFigures figures;
  auto start = Clock::now();
  for (unsigned step = 0; step < steps; ++step) {
    const MetricsSnapshot& snapshot = workload.at(step);
    auto time_ms = static_cast<int64_t>(snapshot.time_ns / 1'000'000);
    (void)db->exec("BEGIN");
    int64_t series_id = 0;
    auto add = [&](double value) {
      if (auto done = insert->bind(1, series_id++).bind(2, time_ms).bind(3, value).run(); !done) die(done.error().message);
      ++figures.samples;
    };
    for (const MetricFamily& family : snapshot.families)
      for (const MetricSeries& series : family.series) {
        if (family.kind != MetricKind::Histogram) {
          add(series.value);
          continue;
        }
        uint64_t cumulative = 0;
        for (uint64_t count : series.histogram.counts) add(static_cast<double>(cumulative += count));
        add(series.histogram.sum);
        add(static_cast<double>(series.histogram.count));
      }
    if (auto done = db->exec("COMMIT"); !done) die(done.error().message);
  }
  figures.seconds = seconds_since(start);
  insert = Statement();
  *db = Database();  // closing checkpoints the WAL
  std::error_code ec;
  figures.file_bytes = fs::file_size(dir + "/rows.db", ec) + (fs::exists(dir + "/rows.db-wal") ? fs::file_size(dir + "/rows.db-wal", ec) : 0);
  return figures;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Embedded store: ingest samples/s and bytes/sample on realistic series"};
  app.allow_extras();  // bench/run.sh hands every benchmark the same extra arguments
  Shape shape;
  double hours = 6;
  std::string base = "/var/tmp";
  bool keep = false;
  app.add_option("--hours", hours, "simulated hours at a 10 s interval")->check(CLI::Range(0.5, 48.0));
  app.add_option("--counters", shape.counters, "counter series")->check(CLI::Range(1, 1'000'000));
  app.add_option("--gauges", shape.gauges, "gauge series")->check(CLI::Range(1, 1'000'000));
  app.add_option("--histograms", shape.histograms, "histogram series")->check(CLI::Range(1, 100'000));
  app.add_option("--buckets", shape.buckets, "bucket bounds per histogram (+Inf comes on top)")->check(CLI::Range(1, 64));
  app.add_option("--jitter-ms", shape.jitter_ms, "random jitter of snapshot times around the cadence, +/- ms")->check(CLI::Range(0, 1000));
  app.add_option("--dir", base, "directory for the stores (a disk, as in production)");
  app.add_flag("--keep", keep, "keep the stores for a look afterwards");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  shape.steps = static_cast<unsigned>(hours * 3600 * 1000 / static_cast<double>(shape.interval_ms));
  unsigned hour_steps = std::min(shape.steps, static_cast<unsigned>(3'600'000 / shape.interval_ms));
  unsigned baseline_steps = std::min(shape.steps, static_cast<unsigned>(600'000 / shape.interval_ms));

  auto generate_start = Clock::now();
  Workload workload(shape);
  fmt::print("tsdb_bench: {} counters, {} gauges, {} histograms x ({} buckets + _sum + _count) = {} samples per snapshot, "
             "every {} s for {} h ({} snapshots, {:.2f} M samples; values generated in {:.1f} s, not timed), stores in {}\n",
             shape.counters, shape.gauges, shape.histograms, shape.buckets + 1, workload.samples_per_snapshot(),
             shape.interval_ms / 1000, hours, shape.steps, static_cast<double>(workload.samples_per_snapshot() * shape.steps) / 1e6,
             seconds_since(generate_start), base);
  std::string dir = fmt::format("{}/ea-tsdb-bench-{}", base, getpid());

  IngestFigures bulk = ingest(workload, dir + "/bulk", shape.steps, false);
  auto breakdown = chunk_bytes_by_kind(dir + "/bulk");
  IngestFigures per_snapshot = ingest(workload, dir + "/per-snapshot", hour_steps, true);
  IngestFigures rows = plain_rows(workload, dir + "/rows", baseline_steps);
  if (keep)
    fmt::print("  stores kept in {}\n", dir);
  else
    fs::remove_all(dir);

  fmt::print("  (a) bulk ingest, flush every {} s:      {:>7.3f} M samples/s  ({:.2f} M samples in {:.2f} s)  = {:.2f}x the 1 M/s target\n",
             kDefaultFlushInterval.count() / 1000, bulk.rate() / 1e6, static_cast<double>(bulk.samples) / 1e6, bulk.seconds,
             bulk.rate() / kTargetSamplesPerSecond);
  fmt::print("  (b) one commit per snapshot (1 h):      {:>7.3f} M samples/s  ({} commits of {} samples in {:.2f} s) = {:.2f}x the target\n",
             per_snapshot.rate() / 1e6, hour_steps, workload.samples_per_snapshot(), per_snapshot.seconds,
             per_snapshot.rate() / kTargetSamplesPerSecond);
  fmt::print("      baseline, plain SQLite rows (10 min): {:>5.3f} M samples/s  -> store (b) / rows = {:.2f}x\n", rows.rate() / 1e6,
             per_snapshot.rate() / rows.rate());
  fmt::print("  bytes per sample on disk (file + WAL after close, {} h): {:.3f}  = {:.2f}x the 2 B target, {:.2f}x Prometheus's ~1.3\n",
             hours, bulk.bytes_per_sample(), bulk.bytes_per_sample() / kTargetBytesPerSample,
             bulk.bytes_per_sample() / kPrometheusBytesPerSample);
  fmt::print("      baseline, plain SQLite rows (10 min): {:.2f} bytes/sample -> store / rows = {:.3f}x\n", rows.bytes_per_sample(),
             bulk.bytes_per_sample() / rows.bytes_per_sample());
  uint64_t chunk_bytes = 0, chunk_samples = 0;
  for (const ChunkBreakdown& kind : breakdown) {
    chunk_bytes += kind.bytes;
    chunk_samples += kind.samples;
    fmt::print("      closed chunks, {:<10} {:.3f} bytes/sample ({:.2f} M samples)\n", kind.kind + ":",
               static_cast<double>(kind.bytes) / static_cast<double>(kind.samples), static_cast<double>(kind.samples) / 1e6);
  }
  fmt::print("      closed chunks, all:       {:.3f} bytes/sample (chunk bytes only); the rest is SQLite rows, indexes, "
             "series, open chunks and free pages: {:.3f}\n",
             static_cast<double>(chunk_bytes) / static_cast<double>(chunk_samples),
             bulk.bytes_per_sample() - static_cast<double>(chunk_bytes) / static_cast<double>(chunk_samples));
  bool met = bulk.rate() >= kTargetSamplesPerSecond && bulk.bytes_per_sample() <= kTargetBytesPerSample;
  fmt::print("  targets (>= 1 M samples/s bulk, <= 2 bytes/sample): {}\n", met ? "met" : "NOT met");
  return 0;
}
