#include "loader/btf_types.h"

#include <bit>

#include <fmt/format.h>

namespace ea {

const btf_type* skip_btf_modifiers(const struct btf* btf, uint32_t type_id, uint32_t* resolved_id) {
  for (int depth = 0; depth < kMaxBtfDepth; ++depth) {
    if (type_id == 0) return nullptr;
    const btf_type* type = btf__type_by_id(btf, type_id);
    if (!type) return nullptr;
    switch (btf_kind(type)) {
      case BTF_KIND_TYPEDEF:
      case BTF_KIND_CONST:
      case BTF_KIND_VOLATILE:
      case BTF_KIND_RESTRICT:
      case BTF_KIND_TYPE_TAG:
        type_id = type->type;
        continue;
      default:
        if (resolved_id) *resolved_id = type_id;
        return type;
    }
  }
  return nullptr;
}

bool is_btf_byte(const btf_type* type) { return type && btf_is_int(type) && type->size == 1; }

bool is_btf_char(const struct btf* btf, const btf_type* type) {
  if (!is_btf_byte(type)) return false;
  if (btf_int_encoding(type) & BTF_INT_CHAR) return true;
  const char* name = btf__name_by_offset(btf, type->name_off);
  return name && std::string_view(name) == "char";
}

std::string btf_type_name(const struct btf* btf, uint32_t type_id) {
  std::string suffix;
  for (int depth = 0; depth < kMaxBtfDepth; ++depth) {
    if (type_id == 0) return "void" + suffix;
    const btf_type* type = btf__type_by_id(btf, type_id);
    if (!type) return "<invalid type>";
    const char* raw_name = btf__name_by_offset(btf, type->name_off);
    std::string name = raw_name && *raw_name ? raw_name : "";
    switch (btf_kind(type)) {
      case BTF_KIND_STRUCT: return (name.empty() ? "struct <anonymous>" : "struct " + name) + suffix;
      case BTF_KIND_UNION: return (name.empty() ? "union <anonymous>" : "union " + name) + suffix;
      case BTF_KIND_ENUM:
      case BTF_KIND_ENUM64: return (name.empty() ? "enum <anonymous>" : "enum " + name) + suffix;
      case BTF_KIND_ARRAY:
        suffix = fmt::format("[{}]", btf_array(type)->nelems) + suffix;
        type_id = btf_array(type)->type;
        continue;
      case BTF_KIND_PTR:
        suffix = " *" + suffix;
        type_id = type->type;
        continue;
      case BTF_KIND_CONST:
      case BTF_KIND_VOLATILE:
      case BTF_KIND_RESTRICT:
      case BTF_KIND_TYPE_TAG:
      case BTF_KIND_VAR:
        type_id = type->type;
        continue;
      default: return (name.empty() ? "<anonymous>" : name) + suffix;
    }
  }
  return "<too deeply nested type>";
}

const char* btf_member_name(const struct btf* btf, const btf_member& member) {
  const char* name = btf__name_by_offset(btf, member.name_off);
  return name ? name : "";
}

namespace {

// The bytes holding a bit-field as one integer, laid out so that the field is `shift` bits up.
struct BitWindow {
  size_t first_byte = 0;
  size_t byte_count = 0;
  uint32_t shift = 0;
};

bool bit_window(size_t total_bytes, uint32_t bit_offset, uint32_t bit_size, BitWindow& window) {
  if (bit_size == 0 || bit_size > 64) return false;
  window.first_byte = bit_offset / 8;
  uint32_t bit_in_byte = bit_offset % 8;
  window.byte_count = (bit_in_byte + bit_size + 7) / 8;
  if (window.first_byte + window.byte_count > total_bytes) return false;
  // Little-endian hosts number bit-fields from the least significant bit, big-endian ones from the most.
  window.shift = std::endian::native == std::endian::little
                     ? bit_in_byte
                     : static_cast<uint32_t>(window.byte_count * 8 - bit_in_byte - bit_size);
  return true;
}

unsigned __int128 load_window(std::span<const std::byte> bytes, const BitWindow& window) {
  unsigned __int128 word = 0;
  for (size_t i = 0; i < window.byte_count; ++i) {
    size_t position = std::endian::native == std::endian::little ? i : window.byte_count - 1 - i;
    word |= static_cast<unsigned __int128>(std::to_integer<uint8_t>(bytes[window.first_byte + i])) << (8 * position);
  }
  return word;
}

}  // namespace

bool read_btf_bits(std::span<const std::byte> bytes, uint32_t bit_offset, uint32_t bit_size, uint64_t& value) {
  BitWindow window;
  if (!bit_window(bytes.size(), bit_offset, bit_size, window)) return false;
  unsigned __int128 mask = (static_cast<unsigned __int128>(1) << bit_size) - 1;
  value = static_cast<uint64_t>((load_window(bytes, window) >> window.shift) & mask);
  return true;
}

bool write_btf_bits(std::span<std::byte> bytes, uint32_t bit_offset, uint32_t bit_size, uint64_t value) {
  BitWindow window;
  if (!bit_window(bytes.size(), bit_offset, bit_size, window)) return false;
  unsigned __int128 mask = ((static_cast<unsigned __int128>(1) << bit_size) - 1) << window.shift;
  unsigned __int128 word = load_window(bytes, window);
  word = (word & ~mask) | ((static_cast<unsigned __int128>(value) << window.shift) & mask);
  for (size_t i = 0; i < window.byte_count; ++i) {
    size_t position = std::endian::native == std::endian::little ? i : window.byte_count - 1 - i;
    bytes[window.first_byte + i] = static_cast<std::byte>(static_cast<uint8_t>(word >> (8 * position)));
  }
  return true;
}

}  // namespace ea
