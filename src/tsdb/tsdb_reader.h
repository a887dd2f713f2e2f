// The store's read side: what `ebpf-agent query` shows, reusable by anything that reads a store
// (also while the agent writes it: every query runs in one read transaction, so it sees one
// committed state).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "metrics/metric.h"
#include "tsdb/chunk_codec.h"
#include "tsdb/selector.h"
#include "tsdb/sqlite.h"

namespace ea::tsdb {

struct MetricInfo {
  std::string name;  // the family name (counters without _total)
  MetricKind kind = MetricKind::Counter;
  std::string unit, help, spec;
  uint64_t series = 0;   // stored series: a histogram has one per bucket, plus _sum and _count
  uint64_t samples = 0;  // stored samples, counted as Prometheus does (each bucket, _sum, _count)
  int64_t min_time_ms = 0, max_time_ms = 0;  // 0 when no samples
};

struct EventSpecInfo {
  std::string spec;
  uint64_t records = 0, blocks = 0;
  uint64_t raw_bytes = 0, stored_bytes = 0;
  int64_t min_time_ns = 0, max_time_ns = 0;
};

struct SeriesSamples {
  std::string name;    // as Prometheus shows it: NAME_total, NAME, NAME_bucket/_sum/_count
  std::string family;  // MetricInfo::name
  MetricKind kind = MetricKind::Counter;
  std::string unit;
  LabelSet labels;
  std::vector<Sample> samples;  // time order, within the range asked for
};

struct EventQuery {
  std::optional<std::string> spec;
  int64_t from_ns = 0, to_ns = INT64_MAX;  // inclusive
  size_t limit = 0;  // 0 = all
};

struct StoredRecord {
  int64_t time_ns = 0;
  std::string spec;
  std::string line;  // the JSON envelope, as the agent wrote it
};

struct EventResult {
  std::vector<StoredRecord> records;  // time order (arrival order for equal times)
  bool truncated = false;             // more records matched than `limit`
};

class TsdbReader {
 public:
  // Fails with how to point at a store when DIR holds none.
  static Result<TsdbReader> open(const std::string& dir);

  Result<std::vector<MetricInfo>> metrics();
  Result<std::vector<EventSpecInfo>> event_specs();
  Result<std::vector<SeriesSamples>> select(const Selector& selector, int64_t from_ms, int64_t to_ms);
  Result<EventResult> events(const EventQuery& query);
  const std::string& database_path() const { return db_.path(); }

 private:
  explicit TsdbReader(Database db) : db_(std::move(db)) {}
  Database db_;
};

// The name Prometheus shows for a stored series of a family.
std::string series_name(std::string_view family, MetricKind kind, std::string_view suffix);
MetricKind parse_kind(std::string_view kind);

}  // namespace ea::tsdb
