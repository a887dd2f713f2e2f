// Small BTF helpers shared by the encoder (spec values -> bytes) and the record decoder
// (bytes -> JSON): both walk untrusted BTF and must stay within bounds.
#pragma once
#include <bpf/btf.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace ea {

// Nested types deeper than this are refused (BTF from an untrusted object could loop).
inline constexpr int kMaxBtfDepth = 64;

// Skips typedef, const, volatile, restrict and type tags; null for void or a broken chain.
const btf_type* skip_btf_modifiers(const struct btf* btf, uint32_t type_id, uint32_t* resolved_id = nullptr);

// A one-byte integer spelled `char` (or marked as a character): arrays of it are text.
bool is_btf_char(const struct btf* btf, const btf_type* type);

// A one-byte integer of any name (char, unsigned char, __u8, ...).
bool is_btf_byte(const btf_type* type);

// How the type is spelled in C, for messages: "__u16", "struct key", "char[16]", "enum color".
std::string btf_type_name(const struct btf* btf, uint32_t type_id);

// The member's name, "" for anonymous members.
const char* btf_member_name(const struct btf* btf, const btf_member& member);

// Bit-field access: `bit_offset` counts from the start of `bytes` as the compiler lays bit-fields
// out for this host's byte order; at most 64 bits. False when the bits fall outside `bytes`.
bool read_btf_bits(std::span<const std::byte> bytes, uint32_t bit_offset, uint32_t bit_size, uint64_t& value);
bool write_btf_bits(std::span<std::byte> bytes, uint32_t bit_offset, uint32_t bit_size, uint64_t value);

}  // namespace ea
