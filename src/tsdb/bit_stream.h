// Bit-level writer and reader for the chunk codec: most significant bit first, so a chunk's
// bytes read back in the order they were written.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ea::tsdb {

class BitWriter {
 public:
  // Appends the low `count` bits of `value` (count 0..64), high bit first.
  void write(uint64_t value, unsigned count) {
    if (count == 0) return;
    if (count < 64) value &= (uint64_t{1} << count) - 1;
    unsigned free_bits = 64 - pending_bits_;
    if (count <= free_bits) {
      pending_ = count == 64 ? value : (pending_ << count) | value;
      pending_bits_ += count;
    } else {
      unsigned rest = count - free_bits;  // bits that do not fit in the pending word
      pending_ = free_bits == 0 ? pending_ : (pending_ << free_bits) | (value >> rest);
      pending_bits_ = 64;
      spill();
      pending_ = value & ((uint64_t{1} << rest) - 1);
      pending_bits_ = rest;
    }
    if (pending_bits_ == 64) spill();
  }
  void write_bit(bool bit) { write(bit ? 1 : 0, 1); }

  size_t bit_count() const { return bytes_.size() * 8 + pending_bits_; }
  // Appends the stream (the last byte zero-padded) to `out`.
  void append_to(std::string& out) const;

 private:
  void spill() {
    for (int shift = 56; shift >= 0; shift -= 8) bytes_.push_back(static_cast<char>(pending_ >> shift));
    pending_ = 0;
    pending_bits_ = 0;
  }

  std::string bytes_;
  uint64_t pending_ = 0;        // the bits not yet in bytes_, right-aligned
  unsigned pending_bits_ = 0;
};

class BitReader {
 public:
  explicit BitReader(std::string_view bytes) : bytes_(bytes) {}
  // Reads `count` bits (0..64); false when the stream ends first.
  bool read(unsigned count, uint64_t& value);
  bool read_bit(bool& bit) {
    uint64_t value = 0;
    if (!read(1, value)) return false;
    bit = value != 0;
    return true;
  }
  // Counts leading 1 bits, stopping after a 0 or at `max` ones (the prefix codes of the codec).
  bool read_ones(unsigned max, unsigned& ones);

 private:
  std::string_view bytes_;
  size_t position_ = 0;  // in bits
};

}  // namespace ea::tsdb
