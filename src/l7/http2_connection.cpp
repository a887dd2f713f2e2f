#include "l7/http2_connection.h"

namespace ea::l7 {
namespace {

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// Strips PADDED (and PRIORITY for HEADERS) fields. False if the lengths do not fit.
bool strip(const Http2Frame& frame, bool has_priority, std::span<const uint8_t>& body) {
  body = frame.payload;
  size_t pad = 0;
  if (frame.flags & http2_flags::kPadded) {
    if (body.empty()) return false;
    pad = body[0];
    body = body.subspan(1);
  }
  if (has_priority && (frame.flags & http2_flags::kPriority)) {
    if (body.size() < 5) return false;
    body = body.subspan(5);
  }
  if (pad > body.size()) return false;
  body = body.first(body.size() - pad);
  return true;
}

}  // namespace

Http2Connection::Http2Connection(bool seen_from_start, Http2StreamObserver& observer, HpackLimits limits)
    : observer_(observer),
      client_(seen_from_start ? Http2FrameReader::Start::ClientPreface : Http2FrameReader::Start::Unknown,
              seen_from_start, limits),
      server_(seen_from_start ? Http2FrameReader::Start::FrameBoundary : Http2FrameReader::Start::Unknown,
              seen_from_start, limits) {}

void Http2Connection::feed(Http2Direction dir, std::span<const uint8_t> bytes, uint64_t time_ns) {
  Side& s = side(dir);
  s.reader.feed(bytes, [&](const Http2Frame& frame) {
    // Frames may have been lost while out of sync: header blocks in them changed the table.
    if (s.reader.resyncs() != s.seen_resyncs || s.reader.sync_losses() != s.seen_losses) {
      s.seen_resyncs = s.reader.resyncs();
      s.seen_losses = s.reader.sync_losses();
      s.decoder.mark_table_unknown();
      s.in_block = false;
      s.block.clear();
    }
    on_frame(dir, frame, time_ns);
  });
}

void Http2Connection::note_gap(Http2Direction dir) {
  Side& s = side(dir);
  ++counters_.gaps;
  s.reader.note_gap();
  s.seen_resyncs = s.reader.resyncs();
  s.seen_losses = s.reader.sync_losses();
  s.decoder.mark_table_unknown();
  if (s.in_block) ++counters_.header_blocks_undecodable;  // its CONTINUATION may be in the gap
  s.in_block = false;
  s.block.clear();
}

Http2Counters Http2Connection::counters() const {
  Http2Counters c = counters_;
  c.bytes_skipped = client_.reader.bytes_skipped() + server_.reader.bytes_skipped();
  c.resyncs = client_.reader.resyncs() + server_.reader.resyncs();
  return c;
}

void Http2Connection::finish_block(Http2Direction dir, uint64_t time_ns) {
  Side& s = side(dir);
  s.in_block = false;
  ++counters_.header_blocks;
  HpackStatus status = s.decoder.decode(s.block, fields_);
  if (status == HpackStatus::Ok) {
    observer_.on_headers(dir, s.block_stream, fields_, s.block_end_stream, time_ns);
  } else {
    ++counters_.header_blocks_undecodable;
    observer_.on_undecodable_headers(dir, s.block_stream, s.block_end_stream, time_ns);
  }
  s.block.clear();
}

void Http2Connection::on_frame(Http2Direction dir, const Http2Frame& frame, uint64_t time_ns) {
  Side& s = side(dir);
  ++counters_.frames;
  auto type = static_cast<Http2FrameType>(frame.type);
  if (s.in_block && type != Http2FrameType::Continuation) {
    // RFC 9113 6.10: nothing may interleave a header block. The stream is corrupt or lost bytes.
    ++counters_.malformed_frames;
    ++counters_.header_blocks_undecodable;
    s.in_block = false;
    s.block.clear();
    s.decoder.mark_table_unknown();
  }
  std::span<const uint8_t> body;
  switch (type) {
    case Http2FrameType::Data:
      if (!strip(frame, false, body)) {
        ++counters_.malformed_frames;
        return;
      }
      observer_.on_data(dir, frame.stream_id, body, frame.flags & http2_flags::kEndStream, time_ns);
      return;
    case Http2FrameType::Headers:
      if (!strip(frame, true, body)) {
        ++counters_.malformed_frames;
        ++counters_.header_blocks_undecodable;
        s.decoder.mark_table_unknown();
        observer_.on_undecodable_headers(dir, frame.stream_id, frame.flags & http2_flags::kEndStream, time_ns);
        return;
      }
      s.block.assign(body.begin(), body.end());
      s.block_stream = frame.stream_id;
      s.block_end_stream = frame.flags & http2_flags::kEndStream;
      s.in_block = true;
      if (frame.flags & http2_flags::kEndHeaders) finish_block(dir, time_ns);
      return;
    case Http2FrameType::Continuation:
      if (!s.in_block || frame.stream_id != s.block_stream) {
        ++counters_.malformed_frames;
        return;
      }
      if (s.block.size() + frame.payload.size() > kMaxHeaderBlock) {
        ++counters_.header_blocks_too_large;
        ++counters_.header_blocks_undecodable;
        s.in_block = false;
        s.block.clear();
        s.decoder.mark_table_unknown();
        observer_.on_undecodable_headers(dir, s.block_stream, s.block_end_stream, time_ns);
        return;
      }
      s.block.insert(s.block.end(), frame.payload.begin(), frame.payload.end());
      if (frame.flags & http2_flags::kEndHeaders) finish_block(dir, time_ns);
      return;
    case Http2FrameType::RstStream:
      if (frame.payload.size() != 4) {
        ++counters_.malformed_frames;
        return;
      }
      observer_.on_reset(dir, frame.stream_id, be32(frame.payload.data()), time_ns);
      return;
    case Http2FrameType::Settings: {
      if ((frame.flags & http2_flags::kAck) || frame.payload.size() % 6 != 0) return;
      // Settings bound what the peer sends: its HPACK table (HEADER_TABLE_SIZE) and its frame
      // sizes (MAX_FRAME_SIZE) in the other direction.
      Http2Direction peer = dir == Http2Direction::ClientToServer ? Http2Direction::ServerToClient
                                                                  : Http2Direction::ClientToServer;
      for (size_t i = 0; i + 6 <= frame.payload.size(); i += 6) {
        const uint8_t* p = frame.payload.data() + i;
        uint16_t id = static_cast<uint16_t>((p[0] << 8) | p[1]);
        if (id == 1) side(peer).decoder.set_max_table_size_setting(be32(p + 2));
        if (id == 5) side(peer).reader.set_max_frame_size(be32(p + 2));
      }
      return;
    }
    case Http2FrameType::PushPromise:
      // The promised request's header block changes the table; we do not track pushes, so the
      // table can no longer be trusted.
      s.decoder.mark_table_unknown();
      ++counters_.header_blocks_undecodable;
      return;
    case Http2FrameType::GoAway:
      ++counters_.goaways;
      return;
    default:  // PRIORITY, PING, WINDOW_UPDATE, unknown extension types: nothing to track
      return;
  }
}

}  // namespace ea::l7
