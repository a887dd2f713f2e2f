#include "tsdb/schema.h"

#include <fmt/format.h>

namespace ea::tsdb {

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS metrics(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, unit TEXT NOT NULL,
  help TEXT NOT NULL, spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series(
  id INTEGER PRIMARY KEY, metric_id INTEGER NOT NULL, suffix TEXT NOT NULL, labels TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS series_by_metric ON series(metric_id);
CREATE TABLE IF NOT EXISTS chunks(
  series_id INTEGER NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL,
  samples INTEGER NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_by_series ON chunks(series_id, start_ms);
CREATE INDEX IF NOT EXISTS chunks_by_end ON chunks(end_ms);
CREATE TABLE IF NOT EXISTS open_chunks(group_id INTEGER PRIMARY KEY, log_seq INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS sample_log(seq INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS event_blocks(
  id INTEGER PRIMARY KEY, spec TEXT NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
  records INTEGER NOT NULL, raw_bytes INTEGER NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS event_blocks_by_spec ON event_blocks(spec, start_ns);
CREATE INDEX IF NOT EXISTS event_blocks_by_end ON event_blocks(end_ns);
)sql";

Result<void> check_format(Database& db) {
  auto statement = db.prepare("SELECT value FROM meta WHERE key = 'format'");
  if (!statement) return std::unexpected(statement.error());
  auto row = statement->step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return failf("{} is not an ebpf-agent store (no format version)", db.path());
  std::string version(statement->column_text(0));
  if (version != std::to_string(kFormatVersion))
    return failf("{} has store format {}, this agent reads format {}: use the matching agent version or another directory",
                 db.path(), version, kFormatVersion);
  return {};
}

}  // namespace

Result<Database> open_store_for_writing(const std::string& path) {
  auto db = Database::open(path, Database::Mode::ReadWrite);
  if (!db) return db;
  sqlite3_busy_timeout(db->handle(), 5000);
  // auto_vacuum and page_size only take effect before the first table exists; later they are
  // no-ops. 16 KiB pages pack chunk rows (up to 4 KiB) with less slack than the default 4 KiB.
  for (const char* pragma : {"PRAGMA page_size = 16384", "PRAGMA auto_vacuum = INCREMENTAL", "PRAGMA journal_mode = WAL",
                             "PRAGMA synchronous = NORMAL", "PRAGMA journal_size_limit = 16777216",
                             "PRAGMA cache_size = -16384", "PRAGMA temp_store = MEMORY"}) {
    if (auto done = db->exec(pragma); !done) return std::unexpected(done.error());
  }
  auto journal = db->prepare("PRAGMA journal_mode");
  if (!journal) return std::unexpected(journal.error());
  if (auto row = journal->step(); !row || !*row || journal->column_text(0) != "wal")
    return failf("{}: cannot switch to WAL mode (is it on a filesystem without shared memory support?)", path);
  journal->reset();
  if (auto created = db->exec(std::string("BEGIN;") + kSchema +
                              fmt::format("INSERT OR IGNORE INTO meta VALUES('format', '{}'); COMMIT;", kFormatVersion));
      !created) {
    (void)db->exec("ROLLBACK");
    return std::unexpected(created.error());
  }
  if (auto checked = check_format(*db); !checked) return std::unexpected(checked.error());
  return db;
}

Result<Database> open_store_for_reading(const std::string& path) {
  auto db = Database::open(path, Database::Mode::ReadOnly);
  if (!db) return db;
  sqlite3_busy_timeout(db->handle(), 5000);
  if (auto checked = check_format(*db); !checked) return std::unexpected(checked.error());
  return db;
}

}  // namespace ea::tsdb
