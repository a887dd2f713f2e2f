// The store's SQLite schema and connection settings, for the writer and for readers.
//
//   meta(key, value)                   format version
//   metrics(id, name, kind, unit, help, spec)          one row per metric family
//   series(id, metric_id, suffix, labels)              suffix: '' | bucket | sum | count;
//                                                      labels: canonical text (label_text.h)
//   chunks(series_id, start_ms, end_ms, samples, data) closed chunks, append-only (rowid order)
//   open_chunks(group_id, log_seq, data)               checkpoints of the chunks being filled,
//                                                      64 series a row (head_format.h)
//   sample_log(seq, data)                              the samples of each commit since the
//                                                      last full checkpoint (head_format.h)
//   event_blocks(id, spec, start_ns, end_ns, records, raw_bytes, data)  zstd blocks of JSON lines;
//                                                      the newest block of a spec is rewritten at
//                                                      each flush until it is finished
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
