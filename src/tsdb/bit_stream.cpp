#include "tsdb/bit_stream.h"

namespace ea::tsdb {

void BitWriter::append_to(std::string& out) const {
  out.append(bytes_);
  if (pending_bits_ == 0) return;
  uint64_t aligned = pending_ << (64 - pending_bits_);
  for (unsigned written = 0; written < pending_bits_; written += 8) {
    out.push_back(static_cast<char>(aligned >> 56));
    aligned <<= 8;
  }
}

bool BitReader::read(unsigned count, uint64_t& value) {
  if (count == 0) {
    value = 0;
    return true;
  }
  if (position_ + count > bytes_.size() * 8) return false;
  uint64_t result = 0;
  unsigned left = count;
  while (left > 0) {
    size_t byte_index = position_ >> 3;
    unsigned bit_offset = position_ & 7;
    unsigned available = 8 - bit_offset;
    unsigned take = left < available ? left : available;
    auto byte = static_cast<uint8_t>(bytes_[byte_index]);
    uint64_t bits = (byte >> (available - take)) & ((1u << take) - 1);
    result = (result << take) | bits;
    left -= take;
    position_ += take;
  }
  value = result;
  return true;
}

bool BitReader::read_ones(unsigned max, unsigned& ones) {
  ones = 0;
  while (ones < max) {
    bool bit = false;
    if (!read_bit(bit)) return false;
    if (!bit) return true;
    ++ones;
  }
  return true;
}

}  // namespace ea::tsdb
