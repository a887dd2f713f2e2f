#include "l7/http2_role_sniffer.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>

#include "l7/hpack_huffman.h"

namespace ea::l7 {
namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
// Enough of the preface that no other protocol's first bytes look like it.
constexpr size_t kPrefaceEvidence = 14;  // "PRI * HTTP/2.0"

// The header block of a HEADERS frame without its padding and priority fields.
std::span<const uint8_t> header_block(const Http2Frame& frame) {
  std::span<const uint8_t> body = frame.payload;
  size_t pad = 0;
  if (frame.flags & http2_flags::kPadded) {
    if (body.empty()) return {};
    pad = body[0];
    body = body.subspan(1);
  }
  if (frame.flags & http2_flags::kPriority) {
    if (body.size() < 5) return {};
    body = body.subspan(5);
  }
  if (pad > body.size()) return {};
  return body.first(body.size() - pad);
}

}  // namespace

Http2RoleSniffer::Http2RoleSniffer() = default;

int Http2RoleSniffer::classify_header_block(std::span<const uint8_t> block) {
  size_t i = 0;
  // Dynamic table size updates (001xxxxx, RFC 7541 6.3) may precede the first field.
  while (i < block.size() && (block[i] & 0xe0) == 0x20) {
    if ((block[i] & 0x1f) == 0x1f) {  // multi-byte integer: skip its continuation bytes
      ++i;
      while (i < block.size() && (block[i] & 0x80)) ++i;
    }
    ++i;
  }
  if (i >= block.size()) return 0;
  uint8_t b = block[i++];
  // The static index of the field or of its name. A prefix full of ones means a longer integer,
  // so past the pseudo-headers (indices 1..14) either way.
  uint32_t index;
  if (b & 0x80) index = b & 0x7f;       // indexed field
  else if (b & 0x40) index = b & 0x3f;  // literal with incremental indexing
  else index = b & 0x0f;                // literal without indexing or never indexed (000xxxxx)
  if (index >= 1 && index <= 7) return 1;   // :authority, :method, :path, :scheme
  if (index >= 8 && index <= 14) return -1;  // :status
  if (index != 0 || (b & 0x80)) return 0;    // the dynamic table or a regular header: no sign
  // A literal name (grpcio sends ":path" so): read it, plain or Huffman-coded, if short.
  if (i >= block.size()) return 0;
  bool huffman = block[i] & 0x80;
  size_t length = block[i++] & 0x7f;
  if (length == 0 || length > 16 || block.size() - i < length) return 0;
  std::span<const uint8_t> raw = block.subspan(i, length);
  std::string name;
  if (huffman) {
    if (huffman_decode(raw, name, 16) != HuffmanStatus::Ok) return 0;
  } else {
    name.assign(raw.begin(), raw.end());
  }
  if (name == ":authority" || name == ":method" || name == ":path" || name == ":scheme") return 1;
  if (name == ":status") return -1;
  return 0;
}

void Http2RoleSniffer::decide(bool egress, bool carries_requests) {
  if (side_) return;
  // The process writing requests is the client.
  side_ = egress == carries_requests ? CallSide::Client : CallSide::Server;
}

std::optional<CallSide> Http2RoleSniffer::feed(bool egress, std::span<const uint8_t> bytes) {
  if (side_ || bytes.empty()) return side_;
  Direction& d = directions_[egress ? 1 : 0];
  if (!d.seen_bytes) {
    d.seen_bytes = true;
    size_t n = std::min(bytes.size(), kPreface.size());
    if (n >= kPrefaceEvidence && std::memcmp(bytes.data(), kPreface.data(), n) == 0) {
      decide(egress, true);
      return side_;
    }
  }
  d.reader.feed(bytes, [&](const Http2Frame& frame) {
    if (side_ || frame.type != static_cast<uint8_t>(Http2FrameType::Headers)) return;
    int sign = classify_header_block(header_block(frame));
    if (sign != 0) decide(egress, sign > 0);
  });
  return side_;
}

void Http2RoleSniffer::note_gap(bool egress) { directions_[egress ? 1 : 0].reader.note_gap(); }

}  // namespace ea::l7
