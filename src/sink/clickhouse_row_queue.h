// Rows waiting for ClickHouse, oldest first, bounded in rows and bytes. Rows are JSONEachRow
// lines; they are kept in chunks of at most one INSERT's worth so the writer sends whole chunks.
#pragma once
#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace ea {

struct RowChunk {
  std::string text;  // newline-terminated rows
  uint64_t rows = 0;
  std::chrono::steady_clock::time_point first_row_at;  // when its oldest row was queued
};

class RowQueue {
 public:
  using Clock = std::chrono::steady_clock;
  RowQueue(uint64_t max_rows, uint64_t max_bytes, uint64_t rows_per_chunk);

  // Queues the leading rows of `text` (`rows` newline-terminated lines) that fit in the bound;
  // returns how many rows did not fit and were refused.
  uint64_t push(std::string_view text, uint64_t rows, Clock::time_point now);
  // Moves whole chunks out, oldest first, up to `max_rows` rows (at least one chunk). They keep
  // their room in the bound until commit() or restore().
  std::vector<RowChunk> take(uint64_t max_rows);
  void commit(const std::vector<RowChunk>& taken);  // written, or given up for good
  void restore(std::vector<RowChunk> taken);        // not written: back to the front, in order
  // Drops everything waiting (call with nothing taken) and returns how many rows that was.
  uint64_t clear();

  bool has_waiting() const { return !chunks_.empty(); }
  uint64_t waiting_rows() const { return used_rows_ - taken_rows_; }
  uint64_t rows() const { return used_rows_; }  // waiting + taken
  uint64_t bytes() const { return used_bytes_; }
  // When the writer should send: at once with a full INSERT waiting, else when the oldest row has
  // waited `flush`; Clock::time_point::max() when nothing waits.
  Clock::time_point due_at(uint64_t batch_rows, Clock::duration flush) const;

 private:
  uint64_t max_rows_;
  uint64_t max_bytes_;
  uint64_t rows_per_chunk_;
  std::deque<RowChunk> chunks_;
  uint64_t used_rows_ = 0;
  uint64_t used_bytes_ = 0;
  uint64_t taken_rows_ = 0;
};

}  // namespace ea
