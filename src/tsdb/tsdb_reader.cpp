#include "tsdb/tsdb_reader.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <unordered_map>

#include <fmt/format.h>

#include "tsdb/event_block.h"
#include "tsdb/head_format.h"
#include "tsdb/label_text.h"
#include "tsdb/schema.h"
#include "tsdb/tsdb_defaults.h"

namespace ea::tsdb {

namespace {

// Runs `body` inside one read transaction, so several SELECTs see the same commit.
template <class Body>
auto in_read_transaction(Database& db, Body body) -> decltype(body()) {
  if (auto begun = db.exec("BEGIN"); !begun) return std::unexpected(begun.error());
  auto result = body();
  (void)db.exec(result ? "COMMIT" : "ROLLBACK");
  return result;
}

template <class RowFn>
Result<void> for_each_row(Statement& statement, RowFn row_fn) {
  while (true) {
    auto row = statement.step();
    if (!row) {
      statement.reset();
      return std::unexpected(row.error());
    }
    if (!*row) break;
    if (auto handled = row_fn(statement); !handled) {
      statement.reset();
      return handled;
    }
  }
  statement.reset();
  return {};
}

using Head = std::unordered_map<int64_t, std::vector<Sample>>;

// The samples of the chunks still being filled: their checkpoints, plus what the sample log
// holds after each checkpoint.
Result<Head> read_head(Database& db) {
  Head head;
  std::unordered_map<int64_t, int64_t> checkpoint_seq;  // by group
  auto checkpoints = db.prepare("SELECT group_id, log_seq, data FROM open_chunks");
  if (!checkpoints) return std::unexpected(checkpoints.error());
  auto loaded = for_each_row(*checkpoints, [&](Statement& row) -> Result<void> {
    checkpoint_seq[row.column_int(0)] = row.column_int(1);
    auto entries = decode_checkpoint(row.column_blob(2));
    if (!entries) return std::unexpected(entries.error());
    for (const CheckpointEntry& entry : *entries) {
      auto samples = decode_chunk(entry.chunk);
      if (!samples) return std::unexpected(Error{fmt::format("open chunk of series {}: {}", entry.series_id, samples.error().message)});
      head[entry.series_id] = std::move(*samples);
    }
    return {};
  });
  if (!loaded) return std::unexpected(loaded.error());
  auto log = db.prepare("SELECT seq, data FROM sample_log ORDER BY seq");
  if (!log) return std::unexpected(log.error());
  auto replayed = for_each_row(*log, [&](Statement& row) -> Result<void> {
    int64_t seq = row.column_int(0);
    auto samples = decode_sample_log(row.column_blob(1));
    if (!samples) return std::unexpected(samples.error());
    for (const LoggedSample& sample : *samples) {
      auto checkpoint = checkpoint_seq.find(checkpoint_group(sample.series_id));
      if (checkpoint != checkpoint_seq.end() && seq <= checkpoint->second) continue;
      head[sample.series_id].push_back({sample.time_ms, sample.value});
    }
    return {};
  });
  if (!replayed) return std::unexpected(replayed.error());
  return head;
}

}  // namespace

MetricKind parse_kind(std::string_view kind) {
  return kind == "gauge" ? MetricKind::Gauge : kind == "histogram" ? MetricKind::Histogram : MetricKind::Counter;
}

std::string series_name(std::string_view family, MetricKind kind, std::string_view suffix) {
  if (!suffix.empty()) return fmt::format("{}_{}", family, suffix);
  if (kind == MetricKind::Counter && !family.ends_with("_total")) return fmt::format("{}_total", family);
  return std::string(family);
}

Result<TsdbReader> TsdbReader::open(const std::string& dir) {
  std::string path = dir + "/" + kDatabaseFileName;
  std::error_code ec;
  bool exists = std::filesystem::exists(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory)
    return failf("cannot read the store in {}: {} (the agent's store is root's by default: run query as root)", dir,
                 ec.message());
  if (!exists)
    return failf("no embedded store in {} (no {}): the agent writes one with --output tsdb[:DIR] (by default in {}); "
                 "point query at it with --db DIR",
                 dir, kDatabaseFileName, kDefaultTsdbDir);
  auto db = open_store_for_reading(path);
  if (!db) return std::unexpected(db.error());
  return TsdbReader(std::move(*db));
}

Result<std::vector<MetricInfo>> TsdbReader::metrics() {
  return in_read_transaction(db_, [&]() -> Result<std::vector<MetricInfo>> {
    std::map<int64_t, MetricInfo> by_id;
    auto metrics = db_.prepare("SELECT id, name, kind, unit, help, spec FROM metrics");
    if (!metrics) return std::unexpected(metrics.error());
    auto listed = for_each_row(*metrics, [&](Statement& row) -> Result<void> {
      MetricInfo& info = by_id[row.column_int(0)];
      info.name = row.column_text(1);
      info.kind = parse_kind(row.column_text(2));
      info.unit = row.column_text(3);
      info.help = row.column_text(4);
      info.spec = row.column_text(5);
      return {};
    });
    if (!listed) return std::unexpected(listed.error());
    auto series = db_.prepare("SELECT metric_id, count(*) FROM series GROUP BY metric_id");
    if (!series) return std::unexpected(series.error());
    auto counted = for_each_row(*series, [&](Statement& row) -> Result<void> {
      if (auto it = by_id.find(row.column_int(0)); it != by_id.end()) it->second.series = static_cast<uint64_t>(row.column_int(1));
      return {};
    });
    if (!counted) return std::unexpected(counted.error());
    auto add = [&](int64_t metric_id, uint64_t samples, int64_t min_time, int64_t max_time) {
      auto it = by_id.find(metric_id);
      if (it == by_id.end() || samples == 0) return;
      MetricInfo& info = it->second;
      info.min_time_ms = info.samples == 0 ? min_time : std::min(info.min_time_ms, min_time);
      info.max_time_ms = info.samples == 0 ? max_time : std::max(info.max_time_ms, max_time);
      info.samples += samples;
    };
    auto closed = db_.prepare(
        "SELECT s.metric_id, sum(c.samples), min(c.start_ms), max(c.end_ms) FROM chunks c JOIN series s ON s.id = c.series_id "
        "GROUP BY s.metric_id");
    if (!closed) return std::unexpected(closed.error());
    auto summed = for_each_row(*closed, [&](Statement& row) -> Result<void> {
      add(row.column_int(0), static_cast<uint64_t>(row.column_int(1)), row.column_int(2), row.column_int(3));
      return {};
    });
    if (!summed) return std::unexpected(summed.error());
    auto head = read_head(db_);
    if (!head) return std::unexpected(head.error());
    auto metric_of = db_.prepare("SELECT metric_id FROM series WHERE id = ?1");
    if (!metric_of) return std::unexpected(metric_of.error());
    for (const auto& [series_id, samples] : *head) {
      if (samples.empty()) continue;
      metric_of->bind(1, series_id);
      auto row = metric_of->step();
      if (row && *row) {
        auto [min, max] = std::minmax_element(samples.begin(), samples.end(),
                                              [](const Sample& a, const Sample& b) { return a.time_ms < b.time_ms; });
        add(metric_of->column_int(0), samples.size(), min->time_ms, max->time_ms);
      }
      metric_of->reset();
    }
    std::vector<MetricInfo> out;
    for (auto& [id, info] : by_id) out.push_back(std::move(info));
    std::sort(out.begin(), out.end(), [](const MetricInfo& a, const MetricInfo& b) { return a.name < b.name; });
    return out;
  });
}

Result<std::vector<EventSpecInfo>> TsdbReader::event_specs() {
  return in_read_transaction(db_, [&]() -> Result<std::vector<EventSpecInfo>> {
    auto specs = db_.prepare(
        "SELECT spec, count(*), sum(records), sum(raw_bytes), sum(length(data)), min(start_ns), max(end_ns) "
        "FROM event_blocks GROUP BY spec ORDER BY spec");
    if (!specs) return std::unexpected(specs.error());
    std::vector<EventSpecInfo> out;
    auto listed = for_each_row(*specs, [&](Statement& row) -> Result<void> {
      out.push_back({std::string(row.column_text(0)), static_cast<uint64_t>(row.column_int(2)),
                     static_cast<uint64_t>(row.column_int(1)), static_cast<uint64_t>(row.column_int(3)),
                     static_cast<uint64_t>(row.column_int(4)), row.column_int(5), row.column_int(6)});
      return {};
    });
    if (!listed) return std::unexpected(listed.error());
    return out;
  });
}

Result<std::vector<SeriesSamples>> TsdbReader::select(const Selector& selector, int64_t from_ms, int64_t to_ms) {
  return in_read_transaction(db_, [&]() -> Result<std::vector<SeriesSamples>> {
    struct Family {
      std::string name, unit;
      MetricKind kind;
    };
    std::map<int64_t, Family> families;
    auto metrics = db_.prepare("SELECT id, name, kind, unit FROM metrics");
    if (!metrics) return std::unexpected(metrics.error());
    auto listed = for_each_row(*metrics, [&](Statement& row) -> Result<void> {
      families[row.column_int(0)] = {std::string(row.column_text(1)), std::string(row.column_text(3)), parse_kind(row.column_text(2))};
      return {};
    });
    if (!listed) return std::unexpected(listed.error());

    auto head = read_head(db_);
    if (!head) return std::unexpected(head.error());
    auto series = db_.prepare("SELECT id, suffix, labels FROM series WHERE metric_id = ?1");
    auto chunks = db_.prepare("SELECT data FROM chunks WHERE series_id = ?1 AND start_ms <= ?3 AND end_ms >= ?2");
    if (!series) return std::unexpected(series.error());
    if (!chunks) return std::unexpected(chunks.error());
    std::vector<SeriesSamples> out;
    for (const auto& [metric_id, family] : families) {
      // Cheap check first: could any of this family's series names match?
      bool possible = false;
      for (std::string_view suffix : family.kind == MetricKind::Histogram ? std::vector<std::string_view>{"bucket", "sum", "count"}
                                                                           : std::vector<std::string_view>{""})
        possible |= selector.matches_name(series_name(family.name, family.kind, suffix), family.name);
      if (!possible) continue;
      series->bind(1, metric_id);
      auto matched = for_each_row(*series, [&](Statement& row) -> Result<void> {
        std::string name = series_name(family.name, family.kind, row.column_text(1));
        if (!selector.matches_name(name, family.name)) return {};
        auto labels = parse_canonical_labels(row.column_text(2));
        if (!labels) return std::unexpected(labels.error());
        if (!selector.matches_labels(*labels)) return {};
        SeriesSamples result{std::move(name), family.name, family.kind, family.unit, std::move(*labels), {}};
        chunks->bind(1, row.column_int(0)).bind(2, from_ms).bind(3, to_ms);
        auto read = for_each_row(*chunks, [&](Statement& chunk) -> Result<void> {
          auto samples = decode_chunk(chunk.column_blob(0));
          if (!samples) return std::unexpected(Error{fmt::format("series {}{}: {}", result.name, canonical_labels(result.labels), samples.error().message)});
          for (const Sample& sample : *samples)
            if (sample.time_ms >= from_ms && sample.time_ms <= to_ms) result.samples.push_back(sample);
          return {};
        });
        if (!read) return read;
        if (auto open = head->find(row.column_int(0)); open != head->end())
          for (const Sample& sample : open->second)
            if (sample.time_ms >= from_ms && sample.time_ms <= to_ms) result.samples.push_back(sample);
        // Chunks may overlap after a clock step back: time order, one sample per time.
        std::stable_sort(result.samples.begin(), result.samples.end(), [](const Sample& a, const Sample& b) { return a.time_ms < b.time_ms; });
        result.samples.erase(std::unique(result.samples.begin(), result.samples.end(),
                                         [](const Sample& a, const Sample& b) { return a.time_ms == b.time_ms; }),
                             result.samples.end());
        if (!result.samples.empty()) out.push_back(std::move(result));
        return {};
      });
      if (!matched) return std::unexpected(matched.error());
    }
    std::sort(out.begin(), out.end(), [](const SeriesSamples& a, const SeriesSamples& b) {
      return std::tie(a.name, a.labels) < std::tie(b.name, b.labels);
    });
    return out;
  });
}

Result<EventResult> TsdbReader::events(const EventQuery& query) {
  return in_read_transaction(db_, [&]() -> Result<EventResult> {
    std::string sql = "SELECT spec, start_ns, data FROM event_blocks WHERE end_ns >= ?1 AND start_ns <= ?2";
    if (query.spec) sql += " AND spec = ?3";
    sql += " ORDER BY start_ns, id";
    auto blocks = db_.prepare(sql);
    if (!blocks) return std::unexpected(blocks.error());
    blocks->bind(1, query.from_ns).bind(2, query.to_ns);
    if (query.spec) blocks->bind(3, *query.spec);
    EventResult result;
    // With a limit, blocks are read until the next one starts after the limit-th earliest time
    // collected so far: nothing later can make the cut.
    int64_t cut_time = INT64_MAX;
    auto read = for_each_row(*blocks, [&](Statement& row) -> Result<void> {
      if (query.limit > 0 && result.records.size() >= query.limit && row.column_int(1) > cut_time) {
        result.truncated = true;
        return {};
      }
      auto block = decode_event_block(row.column_blob(2));
      if (!block) return std::unexpected(block.error());
      std::string spec(row.column_text(0));
      for (const StoredEvent& event : block->events) {
        auto time = static_cast<int64_t>(event.time_ns);
        if (time < query.from_ns || time > query.to_ns) continue;
        result.records.push_back({time, spec, std::string(block->line(event))});
      }
      if (query.limit > 0 && result.records.size() >= query.limit) {
        std::stable_sort(result.records.begin(), result.records.end(),
                         [](const StoredRecord& a, const StoredRecord& b) { return a.time_ns < b.time_ns; });
        if (result.records.size() > query.limit) {
          result.records.resize(query.limit);
          result.truncated = true;
        }
        cut_time = result.records.back().time_ns;
      }
      return {};
    });
    if (!read) return std::unexpected(read.error());
    std::stable_sort(result.records.begin(), result.records.end(),
                     [](const StoredRecord& a, const StoredRecord& b) { return a.time_ns < b.time_ns; });
    return result;
  });
}

}  // namespace ea::tsdb
