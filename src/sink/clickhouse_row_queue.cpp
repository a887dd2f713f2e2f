#include "sink/clickhouse_row_queue.h"

#include <algorithm>
#include <cstring>

namespace ea {

RowQueue::RowQueue(uint64_t max_rows, uint64_t max_bytes, uint64_t rows_per_chunk)
    : max_rows_(max_rows), max_bytes_(max_bytes), rows_per_chunk_(std::max<uint64_t>(rows_per_chunk, 1)) {}

uint64_t RowQueue::push(std::string_view text, uint64_t rows, Clock::time_point now) {
  uint64_t accepted = 0;
  size_t position = 0;
  bool full = false;
  while (!full && position < text.size() && used_rows_ < max_rows_) {
    if (chunks_.empty() || chunks_.back().rows >= rows_per_chunk_) chunks_.push_back(RowChunk{.first_row_at = now});
    RowChunk& back = chunks_.back();
    uint64_t room = std::min(rows_per_chunk_ - back.rows, max_rows_ - used_rows_);
    size_t end = position;
    uint64_t taken = 0;
    while (taken < room && end < text.size()) {
      const void* newline = std::memchr(text.data() + end, '\n', text.size() - end);
      size_t next = newline ? static_cast<size_t>(static_cast<const char*>(newline) - text.data()) + 1 : text.size();
      if (used_bytes_ + (next - position) > max_bytes_) {
        full = true;
        break;
      }
      end = next;
      ++taken;
    }
    if (taken == 0) {
      if (back.rows == 0) chunks_.pop_back();
      break;
    }
    back.text.append(text.substr(position, end - position));
    back.rows += taken;
    used_rows_ += taken;
    used_bytes_ += end - position;
    accepted += taken;
    position = end;
  }
  return rows > accepted ? rows - accepted : 0;
}

std::vector<RowChunk> RowQueue::take(uint64_t max_rows) {
  std::vector<RowChunk> taken;
  uint64_t rows = 0;
  while (!chunks_.empty() && (taken.empty() || rows + chunks_.front().rows <= max_rows)) {
    rows += chunks_.front().rows;
    taken.push_back(std::move(chunks_.front()));
    chunks_.pop_front();
  }
  taken_rows_ += rows;
  return taken;
}

void RowQueue::commit(const std::vector<RowChunk>& taken) {
  for (const RowChunk& chunk : taken) {
    used_rows_ -= chunk.rows;
    used_bytes_ -= chunk.text.size();
    taken_rows_ -= chunk.rows;
  }
}

void RowQueue::restore(std::vector<RowChunk> taken) {
  for (auto it = taken.rbegin(); it != taken.rend(); ++it) {
    taken_rows_ -= it->rows;
    chunks_.push_front(std::move(*it));
  }
}

uint64_t RowQueue::clear() {
  uint64_t rows = used_rows_;
  chunks_.clear();
  used_rows_ = used_bytes_ = taken_rows_ = 0;
  return rows;
}

RowQueue::Clock::time_point RowQueue::due_at(uint64_t batch_rows, Clock::duration flush) const {
  if (chunks_.empty()) return Clock::time_point::max();
  if (waiting_rows() >= batch_rows) return Clock::time_point::min();
  return chunks_.front().first_row_at + flush;
}

}  // namespace ea
