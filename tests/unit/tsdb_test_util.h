// Helpers shared by the tsdb unit tests: temporary store directories and metric snapshots.
#pragma once
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>

#include "metrics/metric.h"

namespace ea::tsdb::testing {

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = (std::filesystem::temp_directory_path() /
             ("ea-tsdb-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++)))
                .string();
    std::filesystem::remove_all(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline MetricFamily counter(std::string name, std::vector<std::pair<LabelSet, double>> series, std::string spec = "") {
  MetricFamily family{std::move(name), "help text", "", MetricKind::Counter, std::move(spec), {}};
  for (auto& [labels, value] : series) family.series.push_back({std::move(labels), value, {}});
  return family;
}

inline MetricFamily gauge(std::string name, std::vector<std::pair<LabelSet, double>> series) {
  MetricFamily family = counter(std::move(name), std::move(series));
  family.kind = MetricKind::Gauge;
  family.unit = "bytes";
  return family;
}

inline MetricFamily histogram(std::string name, LabelSet labels, std::vector<double> bounds, std::vector<uint64_t> counts,
                              double sum) {
  MetricFamily family{std::move(name), "latency", "seconds", MetricKind::Histogram, "", {}};
  uint64_t count = 0;
  for (uint64_t c : counts) count += c;
  family.series.push_back({std::move(labels), 0, HistogramData{std::move(bounds), std::move(counts), sum, count}});
  return family;
}

inline MetricsSnapshot snapshot(uint64_t time_ms, std::vector<MetricFamily> families) {
  return MetricsSnapshot{time_ms * 1'000'000, std::move(families)};
}

}  // namespace ea::tsdb::testing
