// HPACK Huffman code (RFC 7541 Appendix B) and a decoder that rejects invalid padding and EOS.
#pragma once
#include <cstdint>
#include <span>
#include <string>

namespace ea::l7 {

struct HuffmanCode {
  uint32_t code;  // right-aligned
  uint8_t bits;
};

// Index = symbol (0..255), 256 = EOS.
extern const HuffmanCode kHpackHuffmanCodes[257];

enum class HuffmanStatus { Ok, BadPadding, EosInString, TooLong };

// Appends the decoded bytes to `out`; stops with TooLong past `max_output` bytes.
HuffmanStatus huffman_decode(std::span<const uint8_t> input, std::string& out, size_t max_output);

}  // namespace ea::l7
