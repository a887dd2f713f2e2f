// The store's SQLite schema and connection settings, for the writer and for readers.
//
//   meta(key, value)                   format version
//   metrics(id, name, kind, unit, help, spec)          one row per metric family
//   series(id, metric_id, suffix, labels)              suffix: '' | bucket | sum | count;
//                                                      labels: canonical JSON object, keys sorted
//   chunks(series_id, start_ms, end_ms, samples, data) closed chunks, append-only (rowid order)
//   open_chunks(series_id PK, start_ms, end_ms, samples, data)  each series' chunk being filled,
//                                                      rewritten at every flush
//   event_blocks(id, spec, start_ns, end_ns, records, raw_bytes, data)  zstd blocks of JSON lines;
//                                                      the newest block of a spec is rewritten at
//                                                      every flush until it is full
#pragma once
#include <string>

#include "core/result.h"
#include "tsdb/sqlite.h"

namespace ea::tsdb {

inline constexpr int kFormatVersion = 1;

// Opens (creating when missing) the store for writing: WAL, synchronous=NORMAL, incremental
// auto-vacuum, schema created or checked.
Result<Database> open_store_for_writing(const std::string& path);
// Opens an existing store read-only (a second process while the agent writes); checks the format.
Result<Database> open_store_for_reading(const std::string& path);

}  // namespace ea::tsdb
