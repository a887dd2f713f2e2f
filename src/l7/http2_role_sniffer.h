// Which end of an HTTP/2 connection the observed process is, read from the bytes themselves, for
// captures that could not tell (a TLS session whose socket was never seen connecting or
// accepting). Only certain signs count: the client connection preface, or the pseudo-header that
// leads a HEADERS block (RFC 9113 8.3: pseudo-headers come first), named by the static table
// or as a literal — :authority/:method/:path/:scheme start requests, :status starts responses.
#pragma once
#include <cstdint>
#include <optional>
#include <span>

#include "l7/grpc_calls.h"
#include "l7/http2_frame_reader.h"

namespace ea::l7 {

class Http2RoleSniffer {
 public:
  Http2RoleSniffer();

  // Bytes the process wrote (egress) or read. Returns the process's side once a sign was seen
  // (and from then on).
  std::optional<CallSide> feed(bool egress, std::span<const uint8_t> bytes);
  // Bytes of that direction were lost: hunt for the next frame boundary.
  void note_gap(bool egress);

  std::optional<CallSide> side() const { return side_; }

  // What the first field of a header block says: +1 request, -1 response, 0 cannot tell.
  static int classify_header_block(std::span<const uint8_t> block);

 private:
  struct Direction {
    Http2FrameReader reader{Http2FrameReader::Start::Unknown};
    bool seen_bytes = false;
  };
  void decide(bool egress, bool carries_requests);

  Direction directions_[2];  // [0] ingress, [1] egress
  std::optional<CallSide> side_;
};

}  // namespace ea::l7
