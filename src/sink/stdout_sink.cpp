#include "sink/stdout_sink.h"

#include <cstdio>

namespace ea {

void StdoutSink::write(const RecordBatch& batch, std::string_view jsonl) {
  std::lock_guard lock(mutex_);
  if (fwrite(jsonl.data(), 1, jsonl.size(), stdout) != jsonl.size()) {
    counters_.failures.fetch_add(batch.records.size(), std::memory_order_relaxed);
    return;
  }
  fflush(stdout);  // a reader of the pipe sees records as they come
  counters_.records.fetch_add(batch.records.size(), std::memory_order_relaxed);
  counters_.bytes.fetch_add(jsonl.size(), std::memory_order_relaxed);
}

void StdoutSink::flush() {
  std::lock_guard lock(mutex_);
  fflush(stdout);
}

}  // namespace ea
