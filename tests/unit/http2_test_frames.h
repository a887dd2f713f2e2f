// Builds HTTP/2 frames for tests (RFC 9113 §4.1: 24-bit length, type, flags, 31-bit stream id).
#pragma once
#include <cstdint>
#include <vector>

namespace ea::l7::test_frames {

using Bytes = std::vector<uint8_t>;

inline Bytes frame(uint8_t type, uint8_t flags, uint32_t stream, const Bytes& payload) {
  Bytes out{static_cast<uint8_t>(payload.size() >> 16), static_cast<uint8_t>(payload.size() >> 8),
            static_cast<uint8_t>(payload.size()), type, flags,
            static_cast<uint8_t>(stream >> 24), static_cast<uint8_t>(stream >> 16),
            static_cast<uint8_t>(stream >> 8), static_cast<uint8_t>(stream)};
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

}  // namespace ea::l7::test_frames
