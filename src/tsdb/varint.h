// LEB128 varints and zigzag for the store's byte formats (chunks, event blocks).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace ea::tsdb {

inline uint64_t zigzag(int64_t value) { return (static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63); }
inline int64_t unzigzag(uint64_t value) { return static_cast<int64_t>(value >> 1) ^ -static_cast<int64_t>(value & 1); }

inline void put_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>(value | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

// Reads one varint from the front of `in` and consumes it; false when truncated or too long.
inline bool get_varint(std::string_view& in, uint64_t& value) {
  value = 0;
  for (unsigned shift = 0, i = 0; i < in.size() && shift < 64; ++i, shift += 7) {
    auto byte = static_cast<uint8_t>(in[i]);
    value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      in.remove_prefix(i + 1);
      return true;
    }
  }
  return false;
}

}  // namespace ea::tsdb
