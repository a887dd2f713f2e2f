#include "l7/http2_connection_table.h"

#include <algorithm>
#include <cstring>
#include <string_view>

namespace ea::l7 {
namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr uint64_t kMaxSweepIntervalNs = 10'000'000'000;

// The capture's from-start mark is believed only when the bytes agree: the client preface, or
// the SETTINGS frame that must open the server's side (RFC 9113 3.4). A connection forgotten
// (evicted, expired) and met again keeps the kernel's mark but starts anywhere in the stream.
bool looks_like_connection_start(std::span<const uint8_t> data) {
  if (data.empty()) return false;
  size_t n = std::min(data.size(), kPreface.size());
  if (std::memcmp(data.data(), kPreface.data(), n) == 0) return true;
  if (data.size() < 9) return false;
  uint32_t length = (uint32_t{data[0]} << 16) | (uint32_t{data[1]} << 8) | data[2];
  bool stream_zero = (data[5] | data[6] | data[7] | data[8]) == 0;
  return data[3] == static_cast<uint8_t>(Http2FrameType::Settings) && data[4] == 0 && stream_zero &&
         length % 6 == 0;
}

// The whole client preface at the start of a chunk: a connection starts here, whatever came
// before under the same key (TLS without a known socket is keyed by the SSL object's address,
// which the allocator hands to the next connection).
bool starts_with_preface(std::span<const uint8_t> data) {
  return data.size() >= kPreface.size() && std::memcmp(data.data(), kPreface.data(), kPreface.size()) == 0;
}

Http2Direction direction_of(bool egress, CallSide side) {
  // What the process writes goes to its peer: a server writes responses, a client requests.
  bool client_to_server = egress == (side == CallSide::Client);
  return client_to_server ? Http2Direction::ClientToServer : Http2Direction::ServerToClient;
}

}  // namespace

size_t Http2ConnectionTable::KeyHash::operator()(const CaptureConnectionKey& k) const {
  uint64_t h = (uint64_t{k.tgid} << 32 | k.fd) * 0x9e3779b97f4a7c15ull;
  h ^= (k.conn_id + (k.tls ? 0x632be59bd9b4e019ull : 0)) * 0xff51afd7ed558ccdull;
  return static_cast<size_t>(h ^ (h >> 29));
}

Http2ConnectionTable::Http2ConnectionTable(Limits limits) : limits_(limits) {
  limits_.max_connections = std::max<size_t>(limits_.max_connections, 1);
}

Http2ConnectionTable::~Http2ConnectionTable() = default;

void Http2ConnectionTable::feed(const CaptureChunk& chunk, std::vector<CompletedCall>& calls) {
  now_ns_ = std::max(now_ns_, chunk.time_ns);
  auto found = entries_.find(chunk.key);
  if (found != entries_.end() && starts_with_preface(chunk.data)) {
    ++counters_.replaced;
    remove(found->second);
    found = entries_.end();
  }
  if (found == entries_.end() && chunk.data.empty()) {
    // A close (or an empty chunk) of a connection we do not track: nothing to start from.
    expire_idle(now_ns_);
    return;
  }
  Lru::iterator it = found != entries_.end() ? found->second : lru_.end();
  if (it == lru_.end()) {
    if (entries_.size() >= limits_.max_connections) {
      ++counters_.evicted;
      remove(std::prev(lru_.end()));
    }
    lru_.emplace_front();
    it = lru_.begin();
    it->key = chunk.key;
    it->from_start = starts_with_preface(chunk.data) || (chunk.from_start && looks_like_connection_start(chunk.data));
    entries_.emplace(chunk.key, it);
    ++counters_.opened;
    counters_.connections = entries_.size();
  } else if (it != lru_.begin()) {
    lru_.splice(lru_.begin(), lru_, it);
  }
  Entry& entry = *it;
  entry.last_ns = chunk.time_ns;
  if (chunk.gap_after) ++counters_.gaps;
  // The capture's role is sure only for a connection it saw open: mid-stream it guesses from
  // the first message it saw, which may be either side's. Then the bytes decide.
  if (!entry.side && chunk.side && entry.from_start) entry.side = chunk.side;

  if (!entry.side) {
    if (!entry.sniffer) entry.sniffer = std::make_unique<Http2RoleSniffer>();
    entry.side = entry.sniffer->feed(chunk.egress, chunk.data);
    if (chunk.gap_after) entry.sniffer->note_gap(chunk.egress);
    bool fits = entry.pending_bytes + chunk.data.size() <= limits_.max_pending_bytes;
    if (!entry.side && !fits && chunk.side) entry.side = chunk.side;  // no sign for too long: take the guess
    if (!entry.side) {
      hold_pending(entry, chunk);  // replayed in order once the role is known
    } else {
      start_decoder(entry, calls);
      feed_decoder(entry, chunk.egress, chunk.data, chunk.gap_after, chunk.time_ns, calls);
    }
  } else {
    if (!entry.decoder) start_decoder(entry, calls);
    feed_decoder(entry, chunk.egress, chunk.data, chunk.gap_after, chunk.time_ns, calls);
  }
  account(entry);
  if (chunk.closed) {
    ++counters_.closed;
    remove(it);
  }
  expire_idle(now_ns_);
}

void Http2ConnectionTable::hold_pending(Entry& entry, const CaptureChunk& chunk) {
  if (entry.pending_bytes + chunk.data.size() > limits_.max_pending_bytes) {
    // Too long without a sign of the role: give up what is held; decoding starts mid-stream.
    counters_.role_unknown_bytes += entry.pending_bytes;
    entry.pending.clear();
    entry.pending_bytes = 0;
    entry.pending_lost = true;
    if (chunk.data.size() > limits_.max_pending_bytes) {
      counters_.role_unknown_bytes += chunk.data.size();
      return;
    }
  }
  if (chunk.data.empty() && !chunk.gap_after) return;
  entry.pending.push_back(
      PendingChunk{chunk.egress, chunk.gap_after, chunk.time_ns, {chunk.data.begin(), chunk.data.end()}});
  entry.pending_bytes += chunk.data.size();
}

void Http2ConnectionTable::start_decoder(Entry& entry, std::vector<CompletedCall>& calls) {
  entry.decoder = std::make_unique<Decoder>(*entry.side, entry.from_start && !entry.pending_lost);
  entry.sniffer.reset();
  std::vector<PendingChunk> pending = std::move(entry.pending);
  entry.pending.clear();
  entry.pending_bytes = 0;
  for (const PendingChunk& p : pending) feed_decoder(entry, p.egress, p.bytes, p.gap_after, p.time_ns, calls);
}

void Http2ConnectionTable::feed_decoder(Entry& entry, bool egress, std::span<const uint8_t> bytes, bool gap_after,
                                        uint64_t time_ns, std::vector<CompletedCall>& calls) {
  Http2Direction dir = direction_of(egress, *entry.side);
  Decoder& d = *entry.decoder;
  if (!bytes.empty()) d.connection.feed(dir, bytes, time_ns);
  if (gap_after) d.connection.note_gap(dir);
  for (CompletedCall& call : d.tracker.take_completed()) calls.push_back(std::move(call));
}

void Http2ConnectionTable::account(Entry& entry) {
  if (!entry.decoder) return;
  Decoder& d = *entry.decoder;
  Http2Counters now = d.connection.counters();
  counters_.header_blocks_undecodable += now.header_blocks_undecodable - d.seen.header_blocks_undecodable;
  counters_.malformed_frames += now.malformed_frames - d.seen.malformed_frames;
  counters_.bytes_skipped += now.bytes_skipped - d.seen.bytes_skipped;
  counters_.resyncs += now.resyncs - d.seen.resyncs;
  d.seen = now;
  const GrpcTrackerCounters& tracker = d.tracker.counters();
  counters_.streams_untracked += tracker.streams_untracked - d.seen_tracker.streams_untracked;
  counters_.streams_dropped += tracker.streams_dropped - d.seen_tracker.streams_dropped;
  counters_.calls_completed += tracker.calls_completed - d.seen_tracker.calls_completed;
  d.seen_tracker = tracker;
}

void Http2ConnectionTable::remove(Lru::iterator it) {
  account(*it);
  if (it->decoder) counters_.calls_unfinished += it->decoder->tracker.open_streams();
  counters_.role_unknown_bytes += it->pending_bytes;  // never attributed to a side
  entries_.erase(it->key);
  lru_.erase(it);
  counters_.connections = entries_.size();
}

void Http2ConnectionTable::expire_idle(uint64_t now_ns) {
  uint64_t interval = std::min(limits_.idle_timeout_ns, kMaxSweepIntervalNs);
  if (now_ns - last_sweep_ns_ < interval) return;
  last_sweep_ns_ = now_ns;
  // The list is in feed order, so the idle ones are at its end.
  while (!lru_.empty() && now_ns - lru_.back().last_ns >= limits_.idle_timeout_ns) {
    ++counters_.expired;
    remove(std::prev(lru_.end()));
  }
}

}  // namespace ea::l7
