// TsdbWriter's retention: by age, by size, and giving space back.
#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "tsdb/tsdb_writer.h"

namespace ea::tsdb {

namespace {

// Bytes a row costs beyond its blob (record, rowid, index entries): for the size estimate.
constexpr int64_t kChunkRowOverhead = 64;
constexpr int64_t kBlockRowOverhead = 96;
// Size retention deletes down to this share of max_size, so it does not run at every flush.
constexpr double kSizeLowWater = 0.9;
constexpr int kMaxSizeRounds = 32;
constexpr int64_t kCandidateBatch = 1024;

class Transaction {
 public:
  explicit Transaction(Database& db) : db_(db) {}
  Result<void> begin() {
    auto begun = db_.exec("BEGIN IMMEDIATE");
    open_ = begun.has_value();
    return begun;
  }
  Result<void> commit() {
    open_ = false;
    return db_.exec("COMMIT");
  }
  ~Transaction() {
    if (open_) (void)db_.exec("ROLLBACK");
  }

 private:
  Database& db_;
  bool open_ = false;
};

}  // namespace

Result<int64_t> TsdbWriter::used_bytes() {
  auto pages = db_.query_int("PRAGMA page_count");
  auto free_pages = db_.query_int("PRAGMA freelist_count");
  auto page_size = db_.query_int("PRAGMA page_size");
  if (!pages || !free_pages || !page_size) return std::unexpected(db_.error("reading the page counts"));
  return (*pages - *free_pages) * *page_size;
}

// Open event blocks are rewritten at the next flush: never deleted under the writer's feet.
static std::string open_block_ids(const auto& open_blocks) {
  std::string ids = "-1";
  for (const auto& [spec, block] : open_blocks) ids += fmt::format(",{}", block.id);
  return ids;
}

Result<void> TsdbWriter::delete_by_age(int64_t now_ms, RetentionResult& result) {
  int64_t cutoff_ms = now_ms - options_.retention.count();
  // An open chunk of a series silent for longer than the retention is simply dropped; the next
  // commit rewrites its checkpoint without it.
  for (auto& [id, series] : series_) {
    if (series.open && series.open->last_time() < cutoff_ms) {
      series.open.reset();
      series.checkpoint->must_rewrite = true;
    }
  }
  Transaction transaction(db_);
  if (auto begun = transaction.begin(); !begun) return begun;
  auto chunks = db_.prepare("DELETE FROM chunks WHERE end_ms < ?1");
  if (!chunks) return std::unexpected(chunks.error());
  if (auto done = chunks->bind(1, cutoff_ms).run(); !done) return done;
  result.chunks_deleted += static_cast<uint64_t>(sqlite3_changes(db_.handle()));
  auto blocks = db_.prepare(
      fmt::format("DELETE FROM event_blocks WHERE end_ns < ?1 AND id NOT IN ({})", open_block_ids(open_blocks_)));
  if (!blocks) return std::unexpected(blocks.error());
  if (auto done = blocks->bind(1, cutoff_ms * 1'000'000).run(); !done) return done;
  result.blocks_deleted += static_cast<uint64_t>(sqlite3_changes(db_.handle()));
  return transaction.commit();
}

Result<void> TsdbWriter::delete_by_size(RetentionResult& result) {
  auto chunk_candidates = db_.prepare("SELECT rowid, end_ms, length(data) FROM chunks ORDER BY end_ms LIMIT ?1");
  auto block_candidates = db_.prepare(fmt::format(
      "SELECT id, end_ns / 1000000, length(data) FROM event_blocks WHERE id NOT IN ({}) ORDER BY end_ns LIMIT ?1",
      open_block_ids(open_blocks_)));
  auto delete_chunk = db_.prepare("DELETE FROM chunks WHERE rowid = ?1");
  auto delete_block = db_.prepare("DELETE FROM event_blocks WHERE id = ?1");
  for (auto* statement : {&chunk_candidates, &block_candidates, &delete_chunk, &delete_block})
    if (!*statement) return std::unexpected(statement->error());
  struct Candidate {
    int64_t end_ms, id, bytes;
    bool chunk;
  };
  for (int round = 0; round < kMaxSizeRounds; ++round) {
    auto used = used_bytes();
    if (!used) return std::unexpected(used.error());
    if (*used <= static_cast<int64_t>(options_.max_size)) return {};
    auto target = *used - static_cast<int64_t>(static_cast<double>(options_.max_size) * kSizeLowWater);
    // The oldest rows of both tables, merged by end time, until their sizes add up to the target.
    std::vector<Candidate> candidates;
    for (auto [statement, is_chunk, overhead] :
         {std::tuple{&*chunk_candidates, true, kChunkRowOverhead}, std::tuple{&*block_candidates, false, kBlockRowOverhead}}) {
      statement->bind(1, kCandidateBatch);
      while (true) {
        auto row = statement->step();
        if (!row) {
          statement->reset();
          return std::unexpected(row.error());
        }
        if (!*row) break;
        candidates.push_back({statement->column_int(1), statement->column_int(0), statement->column_int(2) + overhead, is_chunk});
      }
      statement->reset();
    }
    if (candidates.empty()) {
      result.over_size = true;
      return {};
    }
    std::sort(candidates.begin(), candidates.end(), [](const auto& a, const auto& b) { return a.end_ms < b.end_ms; });
    Transaction transaction(db_);
    if (auto begun = transaction.begin(); !begun) return begun;
    int64_t freed = 0;
    for (const Candidate& candidate : candidates) {
      if (freed >= target) break;
      auto& statement = candidate.chunk ? *delete_chunk : *delete_block;
      if (auto done = statement.bind(1, candidate.id).run(); !done) return done;
      freed += candidate.bytes;
      ++(candidate.chunk ? result.chunks_deleted : result.blocks_deleted);
    }
    if (auto committed = transaction.commit(); !committed) return committed;
  }
  return {};
}

Result<void> TsdbWriter::delete_orphans(RetentionResult& result) {
  // Series with no closed chunk on disk and no open one in memory, then metrics with no series.
  // Only between commits: a chunk or series row waiting for the next commit would be missed.
  if (!closed_chunks_.empty() || !new_series_rows_.empty()) return {};
  auto orphans = db_.prepare("SELECT id FROM series s WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.series_id = s.id)");
  if (!orphans) return std::unexpected(orphans.error());
  std::vector<int64_t> ids;
  while (true) {
    auto row = orphans->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    int64_t id = orphans->column_int(0);
    auto it = series_.find(id);
    if (it != series_.end() && it->second.open) continue;
    ids.push_back(id);
  }
  orphans->reset();
  if (ids.empty()) return {};
  Transaction transaction(db_);
  if (auto begun = transaction.begin(); !begun) return begun;
  auto delete_series = db_.prepare("DELETE FROM series WHERE id = ?1");
  if (!delete_series) return std::unexpected(delete_series.error());
  for (int64_t id : ids)
    if (auto done = delete_series->bind(1, id).run(); !done) return done;
  auto dead_metrics = db_.prepare("SELECT id FROM metrics m WHERE NOT EXISTS (SELECT 1 FROM series s WHERE s.metric_id = m.id)");
  if (!dead_metrics) return std::unexpected(dead_metrics.error());
  std::vector<int64_t> metric_ids;
  while (true) {
    auto row = dead_metrics->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    metric_ids.push_back(dead_metrics->column_int(0));
  }
  dead_metrics->reset();
  for (int64_t id : metric_ids)
    if (auto done = db_.exec(fmt::format("DELETE FROM metrics WHERE id = {}", id)); !done) return done;
  if (auto committed = transaction.commit(); !committed) return committed;
  // The same in memory: groups point at series states, so they are rebuilt on the next snapshot.
  std::sort(ids.begin(), ids.end());
  for (int64_t id : ids) series_.erase(id);
  std::erase_if(series_ids_, [&](const auto& entry) { return std::binary_search(ids.begin(), ids.end(), entry.second); });
  std::erase_if(metrics_, [&](const auto& entry) {
    return std::find(metric_ids.begin(), metric_ids.end(), entry.second.id) != metric_ids.end();
  });
  groups_.clear();
  result.series_deleted += ids.size();
  return {};
}

Result<void> TsdbWriter::release_free_pages(RetentionResult& result) {
  auto pages = db_.query_int("PRAGMA page_count");
  auto free_pages = db_.query_int("PRAGMA freelist_count");
  auto page_size = db_.query_int("PRAGMA page_size");
  if (!pages || !free_pages || !page_size) return std::unexpected(db_.error("reading the page counts"));
  if (*free_pages == 0) return {};
  bool over_size = options_.max_size > 0 && *pages * *page_size > static_cast<int64_t>(options_.max_size);
  // Free pages are reused by new data, so they are kept unless the file is past its bound or
  // mostly empty (after a large deletion).
  if (!over_size && *free_pages * 2 <= *pages) return {};
  int64_t release = over_size ? *free_pages : *free_pages - *pages / 8;
  if (release <= 0) return {};
  if (auto done = db_.exec(fmt::format("PRAGMA incremental_vacuum({})", release)); !done) return done;
  (void)db_.exec("PRAGMA wal_checkpoint(PASSIVE)");
  result.pages_released += static_cast<uint64_t>(release);
  return {};
}

Result<RetentionResult> TsdbWriter::enforce_retention(int64_t now_ms) {
  RetentionResult result;
  if (options_.retention.count() > 0)
    if (auto done = delete_by_age(now_ms, result); !done) return std::unexpected(done.error());
  if (options_.max_size > 0)
    if (auto done = delete_by_size(result); !done) return std::unexpected(done.error());
  if (result.chunks_deleted > 0)
    if (auto done = delete_orphans(result); !done) return std::unexpected(done.error());
  if (auto done = release_free_pages(result); !done) return std::unexpected(done.error());
  return result;
}

}  // namespace ea::tsdb
