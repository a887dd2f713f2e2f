#include "loader/btf_encode.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "loader/btf_types.h"

namespace ea {
namespace {

using u128 = unsigned __int128;

struct Integer {
  bool negative = false;
  u128 magnitude = 0;
};

std::string u128_text(u128 value) {
  if (value == 0) return "0";
  std::string digits;
  while (value != 0) {
    digits.push_back(static_cast<char>('0' + static_cast<int>(value % 10)));
    value /= 10;
  }
  std::ranges::reverse(digits);
  return digits;
}

std::string json_kind(const Value& value) {
  switch (value.type()) {
    case Value::value_t::null: return "nothing";
    case Value::value_t::boolean: return "a bool";
    case Value::value_t::string: return fmt::format("the string \"{}\"", value.get_ref<const std::string&>());
    case Value::value_t::array: return "a list";
    case Value::value_t::object: return "a map";
    case Value::value_t::number_float: return fmt::format("the number {}", value.get<double>());
    default: return fmt::format("the number {}", value.dump());
  }
}

int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 99;
}

// "123", "-5", "0x7f000001", "0o755", "0b1010" (YAML 1.2 spellings); false when not an integer
// or beyond 128 bits.
bool parse_integer_text(std::string_view text, Integer& out) {
  out = {};
  if (text.starts_with('-')) {
    out.negative = true;
    text.remove_prefix(1);
  } else if (text.starts_with('+')) {
    text.remove_prefix(1);
  }
  unsigned base = 10;
  if (text.size() > 2 && text[0] == '0') {
    char prefix = static_cast<char>(std::tolower(static_cast<unsigned char>(text[1])));
    base = prefix == 'x' ? 16 : prefix == 'o' ? 8 : prefix == 'b' ? 2 : 10;
    if (base != 10) text.remove_prefix(2);
  }
  if (text.empty()) return false;
  for (char c : text) {
    int digit = digit_value(c);
    if (digit >= static_cast<int>(base)) return false;
    u128 next = out.magnitude * base + static_cast<unsigned>(digit);
    if ((next - static_cast<unsigned>(digit)) / base != out.magnitude) return false;  // overflow
    out.magnitude = next;
  }
  return true;
}

Result<Integer> to_integer(const Value& value, std::string_view path) {
  Integer result;
  switch (value.type()) {
    case Value::value_t::number_unsigned: result.magnitude = value.get<uint64_t>(); return result;
    case Value::value_t::number_integer: {
      int64_t number = value.get<int64_t>();
      result.negative = number < 0;
      result.magnitude = number < 0 ? static_cast<u128>(-static_cast<__int128>(number)) : static_cast<u128>(number);
      return result;
    }
    case Value::value_t::number_float: {
      double number = value.get<double>();
      if (!std::isfinite(number) || std::trunc(number) != number || std::fabs(number) >= 0x1p64) {
        return failf("{}: expected an integer, got {}", path, json_kind(value));
      }
      result.negative = number < 0;
      result.magnitude = static_cast<u128>(static_cast<uint64_t>(std::fabs(number)));
      return result;
    }
    case Value::value_t::boolean: result.magnitude = value.get<bool>() ? 1 : 0; return result;
    case Value::value_t::string:
      if (parse_integer_text(value.get_ref<const std::string&>(), result)) return result;
      [[fallthrough]];
    default: return failf("{}: expected an integer, got {}", path, json_kind(value));
  }
}

// Two's complement of `number` in `bits` bits, or an error naming the range of the type.
Result<u128> fit_integer(const Integer& number, uint32_t bits, bool is_signed, std::string_view path,
                         std::string_view type_name) {
  if (bits == 0 || bits > 128) return failf("{}: {} has an unsupported width of {} bits", path, type_name, bits);
  u128 unsigned_max = bits == 128 ? ~static_cast<u128>(0) : (static_cast<u128>(1) << bits) - 1;
  u128 signed_max = unsigned_max >> 1;
  bool fits = is_signed ? (number.negative ? number.magnitude <= signed_max + 1 : number.magnitude <= signed_max)
                        : (!number.negative || number.magnitude == 0) && number.magnitude <= unsigned_max;
  if (!fits) {
    std::string range = is_signed ? fmt::format("-{}..{}", u128_text(signed_max + 1), u128_text(signed_max))
                                  : fmt::format("0..{}", u128_text(unsigned_max));
    return failf("{}: {}{} does not fit in {} ({})", path, number.negative ? "-" : "", u128_text(number.magnitude),
                 type_name, range);
  }
  u128 bits_value = number.negative ? ~number.magnitude + 1 : number.magnitude;
  return bits_value & unsigned_max;
}

void store_bytes(u128 value, std::span<std::byte> out) {
  for (size_t i = 0; i < out.size() && i < sizeof(u128); ++i) {
    size_t position = std::endian::native == std::endian::little ? i : out.size() - 1 - i;
    out[position] = static_cast<std::byte>(static_cast<uint8_t>(value >> (8 * i)));
  }
}

bool parse_hex_bytes(std::string_view text, std::vector<std::byte>& bytes) {
  if (!text.starts_with("0x") && !text.starts_with("0X")) return false;
  text.remove_prefix(2);
  if (text.empty() || text.size() % 2 != 0) return false;
  bytes.clear();
  for (size_t i = 0; i < text.size(); i += 2) {
    int high = digit_value(text[i]);
    int low = digit_value(text[i + 1]);
    if (high > 15 || low > 15) return false;
    bytes.push_back(static_cast<std::byte>(high * 16 + low));
  }
  return true;
}

Result<void> encode_byte_list(const Value& list, std::span<std::byte> out, std::string_view path) {
  if (list.size() > out.size()) {
    return failf("{}: {} values given, it holds {} bytes", path, list.size(), out.size());
  }
  std::ranges::fill(out, std::byte{0});
  for (size_t i = 0; i < list.size(); ++i) {
    std::string element_path = fmt::format("{}[{}]", path, i);
    auto number = to_integer(list[i], element_path);
    if (!number) return std::unexpected(number.error());
    bool is_signed = number->negative;
    auto byte = fit_integer(*number, 8, is_signed, element_path, is_signed ? "a signed byte" : "a byte");
    if (!byte) return std::unexpected(byte.error());
    out[i] = static_cast<std::byte>(static_cast<uint8_t>(*byte));
  }
  return {};
}

class Encoder {
 public:
  explicit Encoder(const struct btf* btf) : btf_(btf) {}

  Result<void> encode(uint32_t type_id, const Value& value, std::span<std::byte> out, const std::string& path,
                      int depth) {
    if (depth > kMaxBtfDepth) return failf("{}: type nested too deeply", path);
    // Messages name the type as declared (`__u16`, not `unsigned short`); the encoding uses what it resolves to.
    const btf_type* type = skip_btf_modifiers(btf_, type_id);
    if (!type) return failf("{}: has no type information (void or broken BTF)", path);
    if (value.is_null()) return failf("{}: no value given for {}", path, btf_type_name(btf_, type_id));
    switch (btf_kind(type)) {
      case BTF_KIND_INT: return encode_int(type_id, type, value, out, path);
      case BTF_KIND_ENUM:
      case BTF_KIND_ENUM64: return encode_enum(type_id, type, value, out, path);
      case BTF_KIND_PTR: {
        auto number = to_integer(value, path);
        if (!number) return std::unexpected(number.error());
        auto bits = fit_integer(*number, static_cast<uint32_t>(out.size() * 8), false, path, "a pointer");
        if (!bits) return std::unexpected(bits.error());
        store_bytes(*bits, out);
        return {};
      }
      case BTF_KIND_FLOAT: return encode_float(type, value, out, path);
      case BTF_KIND_ARRAY: return encode_array(type_id, type, value, out, path, depth);
      case BTF_KIND_STRUCT:
      case BTF_KIND_UNION: return encode_composite(type_id, type, value, out, path, depth);
      case BTF_KIND_VAR: return encode(type->type, value, out, path, depth + 1);
      default:
        return failf("{}: values of type {} cannot be given in a spec", path, btf_type_name(btf_, type_id));
    }
  }

 private:
  Result<void> encode_int(uint32_t type_id, const btf_type* type, const Value& value, std::span<std::byte> out,
                          const std::string& path) {
    uint32_t encoding = btf_int_encoding(type);
    std::string type_name = btf_type_name(btf_, type_id);
    if (encoding & BTF_INT_BOOL) {
      if (!value.is_boolean() && !(value.is_number_integer() && (value == 0 || value == 1))) {
        return failf("{}: expected true or false, got {}", path, json_kind(value));
      }
      std::ranges::fill(out, std::byte{0});
      out[0] = std::byte{static_cast<uint8_t>(value.is_boolean() ? value.get<bool>() : value.get<int>())};
      return {};
    }
    Integer number;
    if (value.is_string() && is_btf_char(btf_, type) && value.get_ref<const std::string&>().size() == 1) {
      number.magnitude = static_cast<unsigned char>(value.get_ref<const std::string&>()[0]);
    } else {
      auto parsed = to_integer(value, path);
      if (!parsed) return std::unexpected(parsed.error());
      number = *parsed;
    }
    uint32_t bits = btf_int_bits(type);
    auto fitted = fit_integer(number, bits, encoding & BTF_INT_SIGNED, path, type_name);
    if (!fitted) return std::unexpected(fitted.error());
    uint32_t bit_offset = btf_int_offset(type);
    if (bit_offset == 0 && bits == out.size() * 8) {
      store_bytes(*fitted, out);
      return {};
    }
    if (bits > 64 || !write_btf_bits(out, bit_offset, bits, static_cast<uint64_t>(*fitted))) {
      return failf("{}: {} has a layout this agent cannot write ({} bits at bit {})", path, type_name, bits,
                   bit_offset);
    }
    return {};
  }

  // The value of enumerator `name` of enum `type`; false when it has none of that name.
  bool enumerator_value(const btf_type* type, std::string_view name, Integer& number) const {
    for (uint16_t i = 0; i < btf_vlen(type); ++i) {
      uint32_t name_off = btf_is_enum64(type) ? btf_enum64(type)[i].name_off : btf_enum(type)[i].name_off;
      const char* enumerator = btf__name_by_offset(btf_, name_off);
      if (!enumerator || name != enumerator) continue;
      // Values are stored as raw bits; the kind flag says whether they are signed.
      uint64_t raw = btf_is_enum64(type) ? btf_enum64_value(btf_enum64(type) + i)
                                         : static_cast<uint32_t>(btf_enum(type)[i].val);
      int64_t as_signed = btf_is_enum64(type) ? static_cast<int64_t>(raw) : btf_enum(type)[i].val;
      number.negative = btf_kflag(type) && as_signed < 0;
      number.magnitude = number.negative ? static_cast<u128>(-static_cast<__int128>(as_signed)) : raw;
      return true;
    }
    return false;
  }

  std::vector<std::string> enumerator_names(const btf_type* type) const {
    std::vector<std::string> names;
    for (uint16_t i = 0; i < btf_vlen(type); ++i) {
      uint32_t name_off = btf_is_enum64(type) ? btf_enum64(type)[i].name_off : btf_enum(type)[i].name_off;
      if (const char* name = btf__name_by_offset(btf_, name_off)) names.emplace_back(name);
    }
    return names;
  }

  // An enum value given by enumerator name or number.
  Result<Integer> enum_number(uint32_t type_id, const btf_type* type, const Value& value, const std::string& path) {
    Integer number;
    if (value.is_string() && !parse_integer_text(value.get_ref<const std::string&>(), number)) {
      const std::string& wanted = value.get_ref<const std::string&>();
      if (enumerator_value(type, wanted, number)) return number;
      return failf("{}: '{}' is not a value of {}; its values: {}", path, wanted, btf_type_name(btf_, type_id),
                   fmt::join(enumerator_names(type), ", "));
    }
    auto parsed = to_integer(value, path);
    if (!parsed) {
      return failf("{}: expected an enumerator name or a number for {}, got {}", path, btf_type_name(btf_, type_id),
                   json_kind(value));
    }
    return *parsed;
  }

  Result<void> encode_enum(uint32_t type_id, const btf_type* type, const Value& value, std::span<std::byte> out,
                           const std::string& path) {
    auto number = enum_number(type_id, type, value, path);
    if (!number) return std::unexpected(number.error());
    auto fitted = fit_integer(*number, static_cast<uint32_t>(out.size() * 8), btf_kflag(type), path,
                              btf_type_name(btf_, type_id));
    if (!fitted) return std::unexpected(fitted.error());
    store_bytes(*fitted, out);
    return {};
  }

  Result<void> encode_float(const btf_type* type, const Value& value, std::span<std::byte> out,
                            const std::string& path) {
    if (!value.is_number()) return failf("{}: expected a number, got {}", path, json_kind(value));
    double number = value.get<double>();
    if (type->size == sizeof(float)) {
      float narrow = static_cast<float>(number);
      std::memcpy(out.data(), &narrow, sizeof(narrow));
    } else if (type->size == sizeof(double)) {
      std::memcpy(out.data(), &number, sizeof(number));
    } else {
      return failf("{}: {}-byte floating point values are not supported", path, type->size);
    }
    return {};
  }

  Result<void> encode_array(uint32_t type_id, const btf_type* type, const Value& value, std::span<std::byte> out,
                            const std::string& path, int depth) {
    const struct btf_array* array = btf_array(type);
    const btf_type* element = skip_btf_modifiers(btf_, array->type);
    __s64 element_size = btf__resolve_size(btf_, array->type);
    if (!element || element_size <= 0 || static_cast<uint64_t>(element_size) * array->nelems > out.size()) {
      return failf("{}: the BTF layout of {} is inconsistent", path, btf_type_name(btf_, type_id));
    }
    if (value.is_string() && is_btf_byte(element)) {
      const std::string& text = value.get_ref<const std::string&>();
      std::vector<std::byte> bytes;
      if (!is_btf_char(btf_, element) && parse_hex_bytes(text, bytes)) {
        if (bytes.size() > array->nelems) {
          return failf("{}: {} bytes given, {} holds {}", path, bytes.size(), btf_type_name(btf_, type_id),
                       array->nelems);
        }
        std::ranges::fill(out, std::byte{0});
        std::ranges::copy(bytes, out.begin());
        return {};
      }
      if (text.size() >= array->nelems) {
        return failf("{}: \"{}\" is {} characters; {} holds at most {} plus the terminating NUL", path, text,
                     text.size(), btf_type_name(btf_, type_id), array->nelems == 0 ? 0 : array->nelems - 1);
      }
      std::ranges::fill(out, std::byte{0});
      std::memcpy(out.data(), text.data(), text.size());
      return {};
    }
    if (!value.is_array()) {
      return failf("{}: expected a list{} for {}, got {}", path, is_btf_byte(element) ? " or a string" : "",
                   btf_type_name(btf_, type_id), json_kind(value));
    }
    if (value.size() > array->nelems) {
      return failf("{}: {} values given, {} holds {}", path, value.size(), btf_type_name(btf_, type_id),
                   array->nelems);
    }
    std::ranges::fill(out, std::byte{0});
    for (size_t i = 0; i < value.size(); ++i) {
      auto slot = out.subspan(i * static_cast<size_t>(element_size), static_cast<size_t>(element_size));
      auto written = encode(array->type, value[i], slot, fmt::format("{}[{}]", path, i), depth + 1);
      if (!written) return written;
    }
    return {};
  }

  // A member found by name, possibly inside anonymous struct/union members.
  struct FoundMember {
    const btf_member* member = nullptr;
    uint32_t bit_offset = 0;  // from the start of the outer struct
    uint32_t bitfield_size = 0;
  };

  bool find_member(const btf_type* type, std::string_view name, uint32_t base_bits, FoundMember& found, int depth) {
    if (depth > kMaxBtfDepth) return false;
    const btf_member* members = btf_members(type);
    for (uint16_t i = 0; i < btf_vlen(type); ++i) {
      uint32_t offset = base_bits + btf_member_bit_offset(type, i);
      const char* member_name = btf_member_name(btf_, members[i]);
      if (*member_name) {
        if (name == member_name) {
          found = {&members[i], offset, btf_member_bitfield_size(type, i)};
          return true;
        }
        continue;
      }
      const btf_type* inner = skip_btf_modifiers(btf_, members[i].type);
      if (inner && btf_is_composite(inner) && find_member(inner, name, offset, found, depth + 1)) return true;
    }
    return false;
  }

  void collect_member_names(const btf_type* type, std::vector<std::string>& names, int depth) {
    if (depth > kMaxBtfDepth) return;
    const btf_member* members = btf_members(type);
    for (uint16_t i = 0; i < btf_vlen(type); ++i) {
      const char* member_name = btf_member_name(btf_, members[i]);
      if (*member_name) {
        names.emplace_back(member_name);
        continue;
      }
      const btf_type* inner = skip_btf_modifiers(btf_, members[i].type);
      if (inner && btf_is_composite(inner)) collect_member_names(inner, names, depth + 1);
    }
  }

  Result<void> encode_composite(uint32_t type_id, const btf_type* type, const Value& value, std::span<std::byte> out,
                                const std::string& path, int depth) {
    if (!value.is_object()) {
      return failf("{}: expected a map of field names for {}, got {}", path, btf_type_name(btf_, type_id),
                   json_kind(value));
    }
    for (const auto& [name, field_value] : value.items()) {
      std::string field_path = path.empty() ? name : fmt::format("{}.{}", path, name);
      FoundMember found;
      if (!find_member(type, name, 0, found, depth)) {
        std::vector<std::string> names;
        collect_member_names(type, names, depth);
        return failf("{}: {} has no field '{}'; its fields: {}", field_path, btf_type_name(btf_, type_id), name,
                     fmt::join(names, ", "));
      }
      if (found.bitfield_size > 0) {
        auto written = encode_bitfield(found, field_value, out, field_path);
        if (!written) return written;
        continue;
      }
      __s64 member_size = btf__resolve_size(btf_, found.member->type);
      if (found.bit_offset % 8 != 0 || member_size < 0 ||
          found.bit_offset / 8 + static_cast<uint64_t>(member_size) > out.size()) {
        return failf("{}: the BTF layout of {} is inconsistent", field_path, btf_type_name(btf_, type_id));
      }
      auto slot = out.subspan(found.bit_offset / 8, static_cast<size_t>(member_size));
      auto written = encode(found.member->type, field_value, slot, field_path, depth + 1);
      if (!written) return written;
    }
    return {};
  }

  Result<void> encode_bitfield(const FoundMember& found, const Value& value, std::span<std::byte> out,
                               const std::string& path) {
    const btf_type* type = skip_btf_modifiers(btf_, found.member->type);
    std::string type_name = fmt::format("{}:{}", btf_type_name(btf_, found.member->type), found.bitfield_size);
    bool is_signed = type && ((btf_is_int(type) && (btf_int_encoding(type) & BTF_INT_SIGNED)) ||
                              (btf_is_any_enum(type) && btf_kflag(type)));
    auto number = type && btf_is_any_enum(type) ? enum_number(found.member->type, type, value, path)
                                                : to_integer(value, path);
    if (!number) return std::unexpected(number.error());
    auto fitted = fit_integer(*number, found.bitfield_size, is_signed, path, type_name);
    if (!fitted) return std::unexpected(fitted.error());
    if (!write_btf_bits(out, found.bit_offset, found.bitfield_size, static_cast<uint64_t>(*fitted))) {
      return failf("{}: bit-field {} lies outside its struct", path, type_name);
    }
    return {};
  }

  const struct btf* btf_;
};

}  // namespace

Result<void> btf_encode(const struct btf* btf, uint32_t type_id, const Value& value, std::span<std::byte> out,
                        std::string_view path) {
  if (!btf) return failf("{}: the object has no BTF to type the value with", path);
  __s64 size = btf__resolve_size(btf, type_id);
  if (size < 0 || static_cast<size_t>(size) != out.size()) {
    return failf("{}: {} is {} bytes, the storage given is {}", path, btf_type_name(btf, type_id), size, out.size());
  }
  return Encoder(btf).encode(type_id, value, out, std::string(path), 0);
}

Result<void> encode_untyped(const Value& value, std::span<std::byte> out, std::string_view path) {
  std::vector<std::byte> bytes;
  if (value.is_string() && parse_hex_bytes(value.get_ref<const std::string&>(), bytes)) {
    if (bytes.size() > out.size()) return failf("{}: {} bytes given, it holds {}", path, bytes.size(), out.size());
    std::ranges::fill(out, std::byte{0});
    std::ranges::copy(bytes, out.begin());
    return {};
  }
  if (value.is_array()) return encode_byte_list(value, out, path);
  if (out.size() > sizeof(u128)) {
    return failf("{}: without BTF a {}-byte value must be a \"0x...\" hex string or a list of bytes", path,
                 out.size());
  }
  auto number = to_integer(value, path);
  if (!number) {
    return failf("{}: without BTF the value must be an integer, a \"0x...\" hex string or a list of bytes, got {}",
                 path, json_kind(value));
  }
  auto fitted = fit_integer(*number, static_cast<uint32_t>(out.size() * 8), number->negative, path,
                            fmt::format("{} bytes", out.size()));
  if (!fitted) return std::unexpected(fitted.error());
  store_bytes(*fitted, out);
  return {};
}

}  // namespace ea
