// One HTTP/2 connection seen from outside: a frame reader and an HPACK decoder per direction,
// header blocks reassembled across CONTINUATION, stream events handed to an observer. Counts what
// it could not decode instead of guessing.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "l7/hpack_decoder.h"
#include "l7/http2_frame_reader.h"

namespace ea::l7 {

enum class Http2Direction { ClientToServer = 0, ServerToClient = 1 };

class Http2StreamObserver {
 public:
  virtual ~Http2StreamObserver() = default;
  virtual void on_headers(Http2Direction dir, uint32_t stream, const std::vector<HeaderField>& fields,
                          bool end_stream, uint64_t time_ns) = 0;
  // A header block that could not be decoded (unknown table state, corrupt block).
  virtual void on_undecodable_headers(Http2Direction dir, uint32_t stream, bool end_stream,
                                      uint64_t time_ns) = 0;
  virtual void on_data(Http2Direction dir, uint32_t stream, std::span<const uint8_t> data,
                       bool end_stream, uint64_t time_ns) = 0;
  virtual void on_reset(Http2Direction dir, uint32_t stream, uint32_t error_code, uint64_t time_ns) = 0;
};

struct Http2Counters {
  uint64_t frames = 0;
  uint64_t header_blocks = 0;
  uint64_t header_blocks_undecodable = 0;  // skipped: table unknown or block corrupt
  uint64_t header_blocks_too_large = 0;    // reassembly over the cap
  uint64_t malformed_frames = 0;           // bad padding, short RST_STREAM, stray CONTINUATION...
  uint64_t bytes_skipped = 0;              // while hunting for a frame boundary
  uint64_t resyncs = 0;                    // boundaries found after hunting
  uint64_t goaways = 0;
  uint64_t gaps = 0;                       // note_gap() calls: capture lost bytes
};

class Http2Connection {
 public:
  // seen_from_start: the capture has the connection's first bytes (client preface, server's
  // first frame); otherwise both directions hunt for a boundary and the HPACK tables are unknown.
  Http2Connection(bool seen_from_start, Http2StreamObserver& observer, HpackLimits limits = {});

  void feed(Http2Direction dir, std::span<const uint8_t> bytes, uint64_t time_ns);
  // The capture lost bytes of `dir` after what was fed: frames there may have changed the peer's
  // HPACK table, and the next byte may be anywhere in a frame. That direction hunts for a
  // boundary and its table becomes unknown; streams stay open (their end may still be seen).
  void note_gap(Http2Direction dir);

  Http2Counters counters() const;
  bool decoder_reliable(Http2Direction dir) const { return side(dir).decoder.reliable(); }

  static constexpr size_t kMaxHeaderBlock = 256 * 1024;

 private:
  struct Side {
    Side(Http2FrameReader::Start start, bool table_known, HpackLimits limits)
        : reader(start), decoder(table_known, limits) {}
    Http2FrameReader reader;
    HpackDecoder decoder;
    std::vector<uint8_t> block;  // header block being reassembled
    uint32_t block_stream = 0;
    bool block_end_stream = false;
    bool in_block = false;
    uint64_t seen_resyncs = 0;
    uint64_t seen_losses = 0;
  };

  Side& side(Http2Direction dir) { return dir == Http2Direction::ClientToServer ? client_ : server_; }
  const Side& side(Http2Direction dir) const {
    return dir == Http2Direction::ClientToServer ? client_ : server_;
  }
  void on_frame(Http2Direction dir, const Http2Frame& frame, uint64_t time_ns);
  void finish_block(Http2Direction dir, uint64_t time_ns);

  Http2StreamObserver& observer_;
  Side client_;
  Side server_;
  Http2Counters counters_;
  std::vector<HeaderField> fields_;
};

}  // namespace ea::l7
