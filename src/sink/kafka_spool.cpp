#include "sink/kafka_spool.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "sink/kafka_spool_frame.h"

namespace ea {

namespace {

constexpr std::string_view kSegmentSuffix = ".seg";
constexpr size_t kSegmentNameDigits = 20;
constexpr std::string_view kCursorHeader = "ebpf-agent-spool-cursor 1";
constexpr size_t kReadChunk = 256 << 10;

std::optional<uint64_t> segment_id_from_name(std::string_view name) {
  if (name.size() != kSegmentNameDigits + kSegmentSuffix.size() || !name.ends_with(kSegmentSuffix)) return std::nullopt;
  uint64_t id = 0;
  auto [end, ec] = std::from_chars(name.data(), name.data() + kSegmentNameDigits, id);
  if (ec != std::errc() || end != name.data() + kSegmentNameDigits || id == 0) return std::nullopt;
  return id;
}

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// "ebpf-agent-spool-cursor 1 SEGMENT OFFSET\n"; anything else is not a cursor.
std::optional<SpoolPosition> parse_cursor(std::string_view text) {
  if (!text.starts_with(kCursorHeader)) return std::nullopt;
  text.remove_prefix(kCursorHeader.size());
  SpoolPosition position;
  auto number = [&](uint64_t& value) {
    if (text.empty() || text[0] != ' ') return false;
    text.remove_prefix(1);
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc()) return false;
    text.remove_prefix(static_cast<size_t>(end - text.data()));
    return true;
  };
  if (!number(position.segment) || !number(position.offset) || text != "\n") return std::nullopt;
  return position;
}

}  // namespace

KafkaSpool::KafkaSpool(KafkaSpoolOptions options) : options_(std::move(options)) {}

SpoolSyncPlan::~SpoolSyncPlan() {
  for (int fd : fds) close(fd);
}

KafkaSpool::~KafkaSpool() {
  close_tail();
  if (auto synced = sync(); !synced) spdlog::warn("{}", synced.error().message);
  if (read_fd_ >= 0) close(read_fd_);
  if (lock_fd_ >= 0) close(lock_fd_);  // releases the flock
}

Result<std::unique_ptr<KafkaSpool>> KafkaSpool::open(KafkaSpoolOptions options) {
  if (options.dir.empty()) return fail("kafka spool: empty directory (use spool=/run/ebpf-agent/kafka-spool)");
  if (options.max_bytes < 4096)
    return failf("kafka spool {}: spool_max_bytes {} is too small (at least 4K)", options.dir, options.max_bytes);
  if (options.segment_bytes == 0)
    options.segment_bytes = std::clamp<uint64_t>(options.max_bytes / 8, 4 << 10, 16 << 20);
  std::unique_ptr<KafkaSpool> spool(new KafkaSpool(std::move(options)));
  if (auto loaded = spool->load(); !loaded) return std::unexpected(loaded.error());
  return spool;
}

std::string KafkaSpool::segment_path(uint64_t id) const {
  return fmt::format("{}/{:0{}}{}", options_.dir, id, kSegmentNameDigits, kSegmentSuffix);
}

Result<void> KafkaSpool::load() {
  const std::string& dir = options_.dir;
  std::error_code ec;
  bool created = std::filesystem::create_directories(dir, ec);
  if (ec) return failf("kafka spool {}: cannot create the directory: {} (choose another with spool=DIR)", dir, ec.message());
  if (created) chmod(dir.c_str(), 0700);  // records may carry process names and arguments
  std::string lock_path = dir + "/lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) return failf("kafka spool {}: cannot open {}: {}", dir, lock_path, strerror(errno));
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0)
    return failf("kafka spool {}: the directory is in use by another process (give each kafka output its own spool=DIR)", dir);

  std::optional<SpoolPosition> cursor;
  std::string cursor_path = dir + "/cursor";
  if (int fd = ::open(cursor_path.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
    char text[128];
    ssize_t n = ::read(fd, text, sizeof(text));
    close(fd);
    cursor = parse_cursor(std::string_view(text, n > 0 ? static_cast<size_t>(n) : 0));
    if (!cursor) spdlog::warn("kafka spool {}: unreadable cursor file, replaying every segment (duplicates possible)", dir);
  }
  unlink((cursor_path + ".tmp").c_str());

  std::vector<uint64_t> ids;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (auto id = segment_id_from_name(entry.path().filename().string())) ids.push_back(*id);
  }
  if (ec) return failf("kafka spool {}: cannot list the directory: {}", dir, ec.message());
  std::sort(ids.begin(), ids.end());
  if (cursor) commit_ = *cursor;
  for (uint64_t id : ids) {
    if (id < commit_.segment) {  // delivered before the last stop
      unlink(segment_path(id).c_str());
      continue;
    }
    struct stat st {};
    if (::stat(segment_path(id).c_str(), &st) != 0) continue;
    segments_.push_back(Segment{.id = id, .size = static_cast<uint64_t>(st.st_size), .from_earlier_run = true});
    stats_.bytes += static_cast<uint64_t>(st.st_size);
    next_segment_id_ = id + 1;
  }
  next_segment_id_ = std::max(next_segment_id_, commit_.segment + 1);
  persisted_commit_ = commit_;

  // Count what an earlier run left (and find its damage once), then read it again from the start.
  read_ = commit_;
  counting_at_open_ = true;
  while (read_next()) ++stats_.records;
  counting_at_open_ = false;
  read_ = commit_;
  stats_.unread = stats_.records;
  stats_.earlier_run_records = stats_.records;
  stats_.segments = segments_.size();
  if (stats_.corrupt_bytes_skipped > 0)
    spdlog::warn("kafka spool {}: skipped {} damaged or torn bytes left by an earlier run", dir,
                 stats_.corrupt_bytes_skipped);
  if (stats_.unknown_kind_skipped > 0)
    spdlog::warn("kafka spool {}: skipped {} records of a data kind this version does not know", dir,
                 stats_.unknown_kind_skipped);
  return {};
}

KafkaSpool::Segment* KafkaSpool::segment_at_or_after(uint64_t id) {
  for (Segment& segment : segments_)
    if (segment.id >= id) return &segment;
  return nullptr;
}

bool KafkaSpool::is_open_tail(const Segment& segment) const {
  return tail_fd_ >= 0 && !segments_.empty() && &segment == &segments_.back();
}

Result<void> KafkaSpool::open_tail() {
  uint64_t id = next_segment_id_;
  std::string path = segment_path(id);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return failf("kafka spool: cannot create {}: {}", path, strerror(errno));
  next_segment_id_ = id + 1;
  tail_fd_ = fd;
  segments_.push_back(Segment{.id = id});
  stats_.segments = segments_.size();
  return {};
}

void KafkaSpool::close_tail() {
  if (tail_fd_ >= 0) {
    if (tail_unsynced_) {
      // Synced later by run_sync(), off the writers' path.
      int copy = fcntl(tail_fd_, F_DUPFD_CLOEXEC, 0);
      if (copy >= 0) unsynced_fds_.push_back(copy);
    }
    close(tail_fd_);
  }
  tail_fd_ = -1;
  tail_unsynced_ = false;
}

SpoolAppendOutcome KafkaSpool::append(std::span<const SpoolEntry> entries) {
  SpoolAppendOutcome outcome;
  pending_.clear();
  size_t pending_records = 0;
  for (const SpoolEntry& entry : entries) {
    size_t body = kSpoolBodyHeader + entry.key.size() + entry.value.size();
    if (body > kSpoolMaxBody) {
      ++outcome.failed;
      outcome.error = fmt::format("a record of {} bytes is larger than the spool's {} byte limit", body, kSpoolMaxBody);
      continue;
    }
    size_t size = spool_frame_size(entry.key.size(), entry.value.size());
    if (stats_.bytes + pending_.size() + size > options_.max_bytes) {
      ++outcome.over_bound;
      continue;
    }
    if (tail_fd_ >= 0) {
      uint64_t tail_size = segments_.back().size + pending_.size();
      if (tail_size > 0 && tail_size + size > options_.segment_bytes) {
        flush_pending(outcome, pending_records);
        pending_records = 0;
        close_tail();  // a full segment; the next record starts a new one
      }
    }
    if (tail_fd_ < 0) {
      if (auto opened = open_tail(); !opened) {
        ++outcome.failed;
        outcome.error = opened.error().message;
        continue;
      }
    }
    append_spool_frame(SpoolFrame{.kind = static_cast<uint8_t>(entry.kind),
                                  .flags = entry.flags,
                                  .time_ns = entry.time_ns,
                                  .key = entry.key,
                                  .value = entry.value},
                       pending_);
    ++pending_records;
  }
  flush_pending(outcome, pending_records);
  stats_.over_bound += outcome.over_bound;
  stats_.write_failures += outcome.failed;
  return outcome;
}

bool KafkaSpool::flush_pending(SpoolAppendOutcome& outcome, size_t records) {
  if (pending_.empty()) return true;
  Segment& tail = segments_.back();
  bool written = write_all(tail_fd_, pending_);
  if (!written) {
    // Leave no partial frame behind; the next append starts a fresh segment.
    outcome.error = fmt::format("kafka spool: cannot write {}: {}", segment_path(tail.id), strerror(errno));
    outcome.failed += records;
    // The reader stops at tail.size, so a partial frame left if this fails too is never read.
    (void)!ftruncate(tail_fd_, static_cast<off_t>(tail.size));
    close_tail();
  } else {
    tail.size += pending_.size();
    tail_unsynced_ = true;
    stats_.bytes += pending_.size();
    stats_.records += records;
    stats_.unread += records;
    stats_.appended += records;
    outcome.written += records;
  }
  pending_.clear();
  return written;
}

std::string_view KafkaSpool::load_bytes(const Segment& segment, uint64_t offset, size_t want) {
  uint64_t available = segment.size > offset ? segment.size - offset : 0;
  want = static_cast<size_t>(std::min<uint64_t>(want, available));
  if (buffer_segment_ == segment.id && offset >= buffer_offset_ && offset + want <= buffer_offset_ + buffer_.size())
    return std::string_view(buffer_).substr(offset - buffer_offset_, want);
  if (read_fd_ < 0 || read_fd_segment_ != segment.id) {
    if (read_fd_ >= 0) close(read_fd_);
    read_fd_ = ::open(segment_path(segment.id).c_str(), O_RDONLY | O_CLOEXEC);
    read_fd_segment_ = segment.id;
    if (read_fd_ < 0) {
      spdlog::warn("kafka spool: cannot read {}: {}", segment_path(segment.id), strerror(errno));
      buffer_.clear();
      return {};
    }
  }
  size_t chunk = static_cast<size_t>(std::min<uint64_t>(std::max(want, kReadChunk), available));
  buffer_.resize(chunk);
  size_t filled = 0;
  while (filled < chunk) {
    ssize_t n = pread(read_fd_, buffer_.data() + filled, chunk - filled, static_cast<off_t>(offset + filled));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    filled += static_cast<size_t>(n);
  }
  buffer_.resize(filled);
  buffer_segment_ = segment.id;
  buffer_offset_ = offset;
  return std::string_view(buffer_).substr(0, std::min(want, filled));
}

// The offset of the next frame magic after a damaged byte at `offset` (the segment end if none).
uint64_t KafkaSpool::resync(const Segment& segment, uint64_t offset) {
  uint64_t position = offset + 1;
  while (position < segment.size) {
    std::string_view bytes = load_bytes(segment, position, kReadChunk);
    if (bytes.empty()) break;
    size_t found = find_spool_magic(bytes, 0);
    if (found != std::string_view::npos) return position + found;
    if (position + bytes.size() >= segment.size) break;
    position += bytes.size() > 3 ? bytes.size() - 3 : 1;  // a magic may straddle two chunks
  }
  return segment.size;
}

std::optional<SpooledRecord> KafkaSpool::read_next() {
  while (true) {
    Segment* segment = segment_at_or_after(read_.segment);
    if (!segment) return std::nullopt;
    if (segment->id != read_.segment) read_ = SpoolPosition{segment->id, 0};
    if (read_.offset >= segment->size) {
      if (is_open_tail(*segment)) return std::nullopt;
      read_ = SpoolPosition{segment->id + 1, 0};
      continue;
    }
    bool count_damage = counting_at_open_ || !segment->from_earlier_run;
    std::string_view bytes = load_bytes(*segment, read_.offset, kSpoolFramePrefix);
    FrameParse parsed = parse_spool_frame(bytes);
    if (parsed.status == FrameStatus::incomplete && parsed.size > bytes.size()) {
      bytes = load_bytes(*segment, read_.offset, parsed.size);
      parsed = parse_spool_frame(bytes);
    }
    if (parsed.status != FrameStatus::ok) {  // damaged, or torn at the end of the segment
      uint64_t next = resync(*segment, read_.offset);
      if (count_damage) stats_.corrupt_bytes_skipped += next - read_.offset;
      read_.offset = next;
      continue;
    }
    SpoolPosition start = read_;
    read_.offset += parsed.size;
    auto kind = kafka_kind_from_byte(parsed.frame.kind);
    if (!kind) {
      if (count_damage) ++stats_.unknown_kind_skipped;
      continue;
    }
    if (!counting_at_open_ && stats_.unread > 0) --stats_.unread;
    return SpooledRecord{.kind = *kind,
                         .flags = parsed.frame.flags,
                         .time_ns = parsed.frame.time_ns,
                         .from_earlier_run = segment->from_earlier_run,
                         .key = parsed.frame.key,
                         .value = parsed.frame.value,
                         .start = start,
                         .end = read_};
  }
}

void KafkaSpool::unread(const SpooledRecord& record) {
  read_ = record.start;
  ++stats_.unread;
}

void KafkaSpool::rewind() {
  read_ = commit_;
  stats_.unread = stats_.records;
}

void KafkaSpool::commit(SpoolPosition end) {
  if (end <= commit_) return;
  commit_ = end;
  if (stats_.records > 0) --stats_.records;
  drop_committed_segments();
}

void KafkaSpool::remove_front_segment() {
  const Segment& front = segments_.front();
  if (is_open_tail(front)) close_tail();
  if (read_fd_ >= 0 && read_fd_segment_ == front.id) {
    close(read_fd_);
    read_fd_ = -1;
  }
  if (buffer_segment_ == front.id) buffer_.clear();
  unlink(segment_path(front.id).c_str());
  stats_.bytes -= std::min(stats_.bytes, front.size);
  segments_.pop_front();
  stats_.segments = segments_.size();
}

void KafkaSpool::drop_committed_segments() {
  while (!segments_.empty()) {
    const Segment& front = segments_.front();
    bool fully_committed = front.id < commit_.segment || (front.id == commit_.segment && commit_.offset >= front.size);
    if (!fully_committed) break;
    // The open tail goes too once everything in it is delivered: the next append starts afresh.
    remove_front_segment();
  }
}

SpoolSyncPlan KafkaSpool::plan_sync() {
  SpoolSyncPlan plan;
  plan.dir = options_.dir;
  plan.fds = std::move(unsynced_fds_);
  unsynced_fds_.clear();
  if (tail_fd_ >= 0 && tail_unsynced_) {
    int copy = fcntl(tail_fd_, F_DUPFD_CLOEXEC, 0);
    if (copy >= 0) plan.fds.push_back(copy);
    tail_unsynced_ = false;
  }
  if (commit_ != persisted_commit_) {
    plan.cursor = commit_;
    persisted_commit_ = commit_;
  }
  return plan;
}

Result<void> KafkaSpool::run_sync(SpoolSyncPlan& plan) {
  std::string failure;
  for (int fd : plan.fds)
    if (fdatasync(fd) != 0 && failure.empty())
      failure = fmt::format("kafka spool {}: cannot sync a segment: {}", plan.dir, strerror(errno));
  bool wrote = false;
  if (plan.cursor) {
    // Write-then-rename: a crash leaves either the old cursor or the new one, never half of one.
    std::string path = plan.dir + "/cursor";
    std::string tmp = path + ".tmp";
    std::string text = fmt::format("{} {} {}\n", kCursorHeader, plan.cursor->segment, plan.cursor->offset);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && write_all(fd, text) && fdatasync(fd) == 0;
    int saved = errno;
    if (fd >= 0) close(fd);
    if (ok && rename(tmp.c_str(), path.c_str()) != 0) {
      ok = false;
      saved = errno;
    }
    if (!ok) {
      unlink(tmp.c_str());
      if (failure.empty()) failure = fmt::format("kafka spool: cannot write {}: {}", path, strerror(saved));
    }
    wrote = ok;
  }
  if (wrote || !plan.fds.empty()) {
    // New segment names and the renamed cursor are durable once the directory is.
    int dir_fd = ::open(plan.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
      fsync(dir_fd);
      close(dir_fd);
    }
  }
  for (int fd : plan.fds) close(fd);
  plan.fds.clear();
  if (!failure.empty()) return fail(failure);
  return {};
}

Result<void> KafkaSpool::sync() {
  SpoolSyncPlan plan = plan_sync();
  return run_sync(plan);
}

}  // namespace ea
