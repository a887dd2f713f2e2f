// The HTTP/2 connections of a payload capture (bpf/l7.bpf.c's `l7_payload` channel): one
// Http2Connection and GrpcCallTracker per connection, fed chunk by chunk in capture order.
// Bounded: a connection cap (least recently fed evicted first), an idle timeout on the
// capture's clock, and a cap on bytes held while a connection's role is still unknown.
#pragma once
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "l7/grpc_calls.h"
#include "l7/http2_connection.h"
#include "l7/http2_role_sniffer.h"

namespace ea::l7 {

// Identifies a connection: the fd alone is reused, conn_id tells generations apart; TLS
// plaintext and the socket's own bytes are separate streams.
struct CaptureConnectionKey {
  uint32_t tgid = 0;
  uint32_t fd = 0;
  bool tls = false;
  uint64_t conn_id = 0;
  bool operator==(const CaptureConnectionKey&) const = default;
};

// One captured chunk of one direction.
struct CaptureChunk {
  CaptureConnectionKey key;
  uint64_t time_ns = 0;            // when the syscall returned (monotonic)
  bool egress = false;             // the process wrote these bytes
  // The process's end of the connection, if the capture says. Believed for connections seen from
  // their start; otherwise a guess the bytes overrule (see Http2RoleSniffer).
  std::optional<CallSide> side;
  bool from_start = false;         // the capture has the connection's first bytes
  bool gap_after = false;          // bytes of this direction were lost after these
  bool closed = false;             // the process closed the connection (after these bytes)
  std::span<const uint8_t> data;
};

// Cumulative since the table was made (except `connections`).
struct CaptureTableCounters {
  uint64_t connections = 0;        // tracked now
  uint64_t opened = 0;
  uint64_t closed = 0;
  uint64_t evicted = 0;            // over the connection cap
  uint64_t expired = 0;            // idle past the timeout
  uint64_t replaced = 0;           // a new connection (client preface) under a tracked key
  uint64_t calls_unfinished = 0;   // open calls of connections closed, evicted or expired
  uint64_t role_unknown_bytes = 0; // dropped: no role past the pending cap, nor a guess
  uint64_t gaps = 0;
  // Sums over connections (Http2Counters, GrpcTrackerCounters).
  uint64_t header_blocks_undecodable = 0;
  uint64_t malformed_frames = 0;
  uint64_t bytes_skipped = 0;
  uint64_t resyncs = 0;
  uint64_t streams_untracked = 0;
  uint64_t streams_dropped = 0;
  uint64_t calls_completed = 0;
};

class Http2ConnectionTable {
 public:
  struct Limits {
    size_t max_connections = 4096;
    uint64_t idle_timeout_ns = 600'000'000'000;  // 10 min: gRPC channels idle long between calls
    size_t max_pending_bytes = 64 * 1024;        // per connection, while its role is unknown
                                                 // (past it: the capture's guess, else dropped)
  };

  explicit Http2ConnectionTable(Limits limits);
  Http2ConnectionTable() : Http2ConnectionTable(Limits{}) {}
  ~Http2ConnectionTable();
  Http2ConnectionTable(const Http2ConnectionTable&) = delete;
  Http2ConnectionTable& operator=(const Http2ConnectionTable&) = delete;

  // Appends the calls this chunk completed to `calls`.
  void feed(const CaptureChunk& chunk, std::vector<CompletedCall>& calls);

  const CaptureTableCounters& counters() const { return counters_; }
  size_t size() const { return entries_.size(); }

 private:
  struct KeyHash {
    size_t operator()(const CaptureConnectionKey& k) const;
  };
  // A connection whose role is known: the tracker observes the connection (declared first).
  struct Decoder {
    Decoder(CallSide side, bool from_start) : tracker(side), connection(from_start, tracker) {}
    GrpcCallTracker tracker;
    Http2Connection connection;
    Http2Counters seen;                // counters already added to the table's
    GrpcTrackerCounters seen_tracker;
  };
  struct PendingChunk {
    bool egress;
    bool gap_after;
    uint64_t time_ns;
    std::vector<uint8_t> bytes;
  };
  struct Entry {
    CaptureConnectionKey key;
    uint64_t last_ns = 0;
    bool from_start = false;       // the first chunk had the capture's from-start mark
    bool pending_lost = false;     // pending bytes were dropped: no longer from the start
    std::optional<CallSide> side;
    std::unique_ptr<Decoder> decoder;           // once the side is known
    std::unique_ptr<Http2RoleSniffer> sniffer;  // until then, if the capture did not say
    std::vector<PendingChunk> pending;
    size_t pending_bytes = 0;
  };
  using Lru = std::list<Entry>;  // most recently fed first

  void start_decoder(Entry& entry, std::vector<CompletedCall>& calls);
  void feed_decoder(Entry& entry, bool egress, std::span<const uint8_t> bytes, bool gap_after, uint64_t time_ns,
                    std::vector<CompletedCall>& calls);
  void hold_pending(Entry& entry, const CaptureChunk& chunk);
  void account(Entry& entry);
  void remove(Lru::iterator it);
  void expire_idle(uint64_t now_ns);

  Limits limits_;
  Lru lru_;
  std::unordered_map<CaptureConnectionKey, Lru::iterator, KeyHash> entries_;
  CaptureTableCounters counters_;
  uint64_t now_ns_ = 0;         // latest chunk time seen
  uint64_t last_sweep_ns_ = 0;
};

}  // namespace ea::l7
