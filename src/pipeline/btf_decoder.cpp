#include "pipeline/btf_decoder.h"

#include <bpf/btf.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "loader/btf_types.h"

namespace ea {
namespace {

using u128 = unsigned __int128;

// Flexible array members (`char data[]`) take what follows the struct, up to this many elements.
constexpr size_t kMaxFlexibleElements = 4096;

void append_u128(u128 value, std::string& out) {
  if (value <= UINT64_MAX) {
    fmt::format_to(std::back_inserter(out), "{}", static_cast<uint64_t>(value));
    return;
  }
  char digits[40];
  size_t count = 0;
  while (value != 0) {
    digits[count++] = static_cast<char>('0' + static_cast<int>(value % 10));
    value /= 10;
  }
  while (count > 0) out += digits[--count];
}

void append_integer(u128 raw, uint32_t bits, bool is_signed, std::string& out) {
  bool negative = is_signed && bits > 0 && bits <= 128 && ((raw >> (bits - 1)) & 1);
  if (!negative) {
    append_u128(raw, out);
    return;
  }
  u128 mask = bits == 128 ? ~static_cast<u128>(0) : (static_cast<u128>(1) << bits) - 1;
  out += '-';
  append_u128(((~raw) & mask) + 1, out);
}

u128 load_integer(std::span<const std::byte> bytes) {
  u128 value = 0;
  for (size_t i = 0; i < bytes.size() && i < sizeof(u128); ++i) {
    size_t position = std::endian::native == std::endian::little ? i : bytes.size() - 1 - i;
    value |= static_cast<u128>(std::to_integer<uint8_t>(bytes[position])) << (8 * i);
  }
  return value;
}

// Length of the valid UTF-8 sequence at the start of `text`, 0 when it is not one.
size_t utf8_sequence_length(std::string_view text) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  size_t length = lead >= 0xf0 && lead <= 0xf4 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc2 && lead < 0xe0 ? 2 : 0;
  if (length == 0 || length > 4 || text.size() < length) return 0;
  for (size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xc0) != 0x80) return 0;
  }
  if (length == 3 && ((lead == 0xe0 && byte(1) < 0xa0) || (lead == 0xed && byte(1) >= 0xa0))) return 0;  // overlong, surrogate
  if (length == 4 && ((lead == 0xf0 && byte(1) < 0x90) || (lead == 0xf4 && byte(1) >= 0x90))) return 0;  // overlong, > U+10FFFF
  return length;
}

// Kernel strings are bytes: valid UTF-8 passes through, any other byte becomes \u00XX.
void append_json_text(std::string_view text, std::string& out) {
  size_t run_start = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t length = utf8_sequence_length(text.substr(i));
    if (length > 0) {
      i += length;
      continue;
    }
    append_json_escaped(text.substr(run_start, i - run_start), out);
    fmt::format_to(std::back_inserter(out), "\\u00{:02x}", static_cast<unsigned char>(text[i]));
    run_start = ++i;
  }
  append_json_escaped(text.substr(run_start), out);
}

class JsonDecoder {
 public:
  explicit JsonDecoder(const struct btf* btf) : btf_(btf) {}

  // False when `data` is shorter than the type (or the BTF contradicts itself).
  bool value(uint32_t type_id, std::span<const std::byte> data, std::string& out, int depth) {
    uint32_t resolved = 0;
    const btf_type* type = depth <= kMaxBtfDepth ? skip_btf_modifiers(btf_, type_id, &resolved) : nullptr;
    if (!type) {
      out += "null";
      return true;
    }
    __s64 size = btf__resolve_size(btf_, resolved);
    if (size < 0) {
      out += "null";
      return true;
    }
    if (data.size() < static_cast<size_t>(size)) return false;
    switch (btf_kind(type)) {
      case BTF_KIND_INT: return integer(type, data, out);
      case BTF_KIND_ENUM:
      case BTF_KIND_ENUM64:
        enumerator(type, load_integer(data.first(type->size)), type->size * 8, out);
        return true;
      case BTF_KIND_PTR: append_u128(load_integer(data.first(static_cast<size_t>(size))), out); return true;
      case BTF_KIND_FLOAT: floating(type, data, out); return true;
      case BTF_KIND_ARRAY: return array(type, data, btf_array(type)->nelems, out, depth);
      case BTF_KIND_STRUCT:
      case BTF_KIND_UNION:
        out += '{';
        if (bool first = true; !members(type, data, static_cast<size_t>(size), out, depth, first)) return false;
        out += '}';
        return true;
      default: out += "null"; return true;
    }
  }

 private:
  bool integer(const btf_type* type, std::span<const std::byte> data, std::string& out) {
    uint32_t encoding = btf_int_encoding(type);
    uint32_t bits = btf_int_bits(type);
    uint32_t offset = btf_int_offset(type);
    u128 raw;
    if (offset == 0 && bits == type->size * 8) {
      raw = load_integer(data.first(type->size));
    } else {
      uint64_t narrow = 0;
      if (!read_btf_bits(data.first(type->size), offset, bits, narrow)) {
        out += "null";
        return true;
      }
      raw = narrow;
    }
    if (encoding & BTF_INT_BOOL) {
      out += raw ? "true" : "false";
      return true;
    }
    append_integer(raw, bits, encoding & BTF_INT_SIGNED, out);
    return true;
  }

  void enumerator(const btf_type* type, u128 raw, uint32_t bits, std::string& out) {
    bool is_signed = btf_kflag(type);
    uint64_t value = static_cast<uint64_t>(raw);
    // Compare in the enum's own width: a signed 32-bit -1 is stored as 0xffffffff.
    uint64_t mask = bits >= 64 ? ~0ull : (1ull << bits) - 1;
    for (uint16_t i = 0; i < btf_vlen(type); ++i) {
      uint64_t candidate = btf_is_enum64(type) ? btf_enum64_value(btf_enum64(type) + i)
                                               : static_cast<uint64_t>(static_cast<int64_t>(btf_enum(type)[i].val));
      if ((candidate & mask) != (value & mask)) continue;
      uint32_t name_off = btf_is_enum64(type) ? btf_enum64(type)[i].name_off : btf_enum(type)[i].name_off;
      const char* name = btf__name_by_offset(btf_, name_off);
      if (!name || !*name) break;
      out += '"';
      append_json_text(name, out);
      out += '"';
      return;
    }
    append_integer(raw & mask, bits, is_signed, out);
  }

  void floating(const btf_type* type, std::span<const std::byte> data, std::string& out) {
    double number = NAN;
    if (type->size == sizeof(float)) {
      float narrow;
      std::memcpy(&narrow, data.data(), sizeof(narrow));
      number = narrow;
    } else if (type->size == sizeof(double)) {
      std::memcpy(&number, data.data(), sizeof(number));
    }
    if (std::isfinite(number)) {
      fmt::format_to(std::back_inserter(out), "{}", number);
    } else {
      out += "null";
    }
  }

  // `count` elements of the array type; for a flexible array member it is what the data holds.
  bool array(const btf_type* type, std::span<const std::byte> data, size_t count, std::string& out, int depth) {
    uint32_t element_id = btf_array(type)->type;
    const btf_type* element = skip_btf_modifiers(btf_, element_id);
    __s64 element_size = btf__resolve_size(btf_, element_id);
    if (!element || element_size <= 0) {
      out += "null";
      return true;
    }
    size_t bytes = count * static_cast<size_t>(element_size);
    if (bytes / static_cast<size_t>(element_size) != count || bytes > data.size()) return false;
    if (is_btf_char(btf_, element)) {
      std::string_view text(reinterpret_cast<const char*>(data.data()), count);
      text = text.substr(0, std::min(text.find('\0'), text.size()));
      out += '"';
      append_json_text(text, out);
      out += '"';
      return true;
    }
    out += '[';
    for (size_t i = 0; i < count; ++i) {
      if (i > 0) out += ',';
      auto slot = data.subspan(i * static_cast<size_t>(element_size), static_cast<size_t>(element_size));
      if (!value(element_id, slot, out, depth + 1)) return false;
    }
    out += ']';
    return true;
  }

  // Members as "name":value pairs; anonymous struct/union members contribute their own fields.
  bool members(const btf_type* type, std::span<const std::byte> data, size_t size, std::string& out, int depth,
               bool& first) {
    const btf_member* list = btf_members(type);
    uint16_t count = btf_vlen(type);
    for (uint16_t i = 0; i < count; ++i) {
      uint32_t bit_offset = btf_member_bit_offset(type, i);
      uint32_t bitfield = btf_member_bitfield_size(type, i);
      const char* name = btf_member_name(btf_, list[i]);
      const btf_type* member_type = skip_btf_modifiers(btf_, list[i].type);
      if (!*name && member_type && btf_is_composite(member_type) && bitfield == 0 && bit_offset % 8 == 0) {
        size_t offset = bit_offset / 8;
        if (offset > data.size()) return false;
        if (depth > kMaxBtfDepth) continue;
        if (!members(member_type, data.subspan(offset), member_type->size, out, depth + 1, first)) return false;
        continue;
      }
      if (!first) out += ',';
      first = false;
      out += '"';
      append_json_text(name, out);
      out += "\":";
      if (bitfield > 0) {
        bitfield_value(member_type, data.first(std::min(size, data.size())), bit_offset, bitfield, out);
        continue;
      }
      if (bit_offset % 8 != 0) {
        out += "null";
        continue;
      }
      size_t offset = bit_offset / 8;
      if (offset > data.size()) return false;
      // A flexible array member (last, no elements declared) holds whatever follows in the record.
      if (member_type && btf_is_array(member_type) && btf_array(member_type)->nelems == 0 && i + 1 == count) {
        __s64 element_size = btf__resolve_size(btf_, btf_array(member_type)->type);
        size_t available = element_size > 0 ? (data.size() - offset) / static_cast<size_t>(element_size) : 0;
        if (!array(member_type, data.subspan(offset), std::min(available, kMaxFlexibleElements), out, depth + 1)) {
          return false;
        }
        continue;
      }
      if (!value(list[i].type, data.subspan(offset), out, depth + 1)) return false;
    }
    return true;
  }

  void bitfield_value(const btf_type* type, std::span<const std::byte> data, uint32_t bit_offset,
                      uint32_t bits, std::string& out) {
    uint64_t raw = 0;
    if (!type || !read_btf_bits(data, bit_offset, bits, raw)) {
      out += "null";
      return;
    }
    if (btf_is_any_enum(type)) {
      enumerator(type, raw, bits, out);
    } else if (btf_is_int(type) && (btf_int_encoding(type) & BTF_INT_BOOL)) {
      out += raw ? "true" : "false";
    } else {
      append_integer(raw, bits, btf_is_int(type) && (btf_int_encoding(type) & BTF_INT_SIGNED), out);
    }
  }

  const struct btf* btf_;
};

// Where the envelope's identity fields sit in a record, when the struct has them.
struct IntegerField {
  size_t offset = 0;
  size_t size = 0;
  bool is_signed = false;
};
struct TextField {
  size_t offset = 0;
  size_t size = 0;
};
struct MetaLayout {
  std::optional<IntegerField> pid;   // thread id
  std::optional<IntegerField> tgid;  // process id
  std::optional<TextField> comm;
};

int64_t read_field(std::span<const std::byte> record, const IntegerField& field) {
  u128 raw = load_integer(record.subspan(field.offset, field.size));
  uint32_t bits = static_cast<uint32_t>(field.size * 8);
  if (field.is_signed && bits < 64 && ((raw >> (bits - 1)) & 1)) raw |= ~((static_cast<u128>(1) << bits) - 1);
  return static_cast<int64_t>(static_cast<uint64_t>(raw));
}

MetaLayout find_meta_layout(const struct btf* btf, const btf_type* type) {
  std::optional<IntegerField> pid, tid, tgid;
  std::optional<TextField> comm;
  const btf_member* list = btf_members(type);
  for (uint16_t i = 0; i < btf_vlen(type); ++i) {
    uint32_t bit_offset = btf_member_bit_offset(type, i);
    if (btf_member_bitfield_size(type, i) != 0 || bit_offset % 8 != 0) continue;
    std::string_view name = btf_member_name(btf, list[i]);
    const btf_type* member = skip_btf_modifiers(btf, list[i].type);
    if (!member) continue;
    size_t offset = bit_offset / 8;
    if (btf_is_int(member) && member->size <= 8 && btf_int_bits(member) == member->size * 8) {
      IntegerField field{offset, member->size, (btf_int_encoding(member) & BTF_INT_SIGNED) != 0};
      if (name == "pid") pid = field;
      else if (name == "tid") tid = field;
      else if (name == "tgid") tgid = field;
    } else if (btf_is_array(member) && (name == "comm" || name == "task") && !comm) {
      const btf_type* element = skip_btf_modifiers(btf, btf_array(member)->type);
      if (is_btf_char(btf, element)) comm = TextField{offset, btf_array(member)->nelems};
    }
  }
  // Kernel naming is pid (thread) + tgid (process); user-space naming is tid (thread) + pid (process).
  MetaLayout layout;
  layout.comm = comm;
  layout.tgid = tgid;
  if (tid) {
    layout.pid = tid;
    if (!tgid) layout.tgid = pid;
  } else {
    layout.pid = pid;
  }
  return layout;
}

class BtfDecoder final : public Processor {
 public:
  BtfDecoder(const struct btf* btf, uint32_t type_id, size_t size, std::string type_name, MetaLayout layout)
      : btf_(btf), type_id_(type_id), size_(size), type_name_(std::move(type_name)), layout_(layout) {}

  ProcessOutcome process(std::span<const std::byte> input, RecordMeta& meta, std::string& fields) override {
    if (input.size() < size_) {
      error_ = fmt::format("record of {} bytes is shorter than {} ({} bytes): the channel's `struct` does not match "
                           "what the program sends",
                           input.size(), type_name_, size_);
      return ProcessOutcome::Failed;
    }
    size_t start = fields.size();
    if (!append_btf_value_json(btf_, static_cast<int>(type_id_), input, fields)) {
      fields.resize(start);
      error_ = fmt::format("the BTF of {} is inconsistent: a member lies outside the record", type_name_);
      return ProcessOutcome::Failed;
    }
    if (layout_.pid) meta.pid = read_field(input, *layout_.pid);
    if (layout_.tgid) meta.tgid = read_field(input, *layout_.tgid);
    if (layout_.comm) {
      std::string_view comm(reinterpret_cast<const char*>(input.data()) + layout_.comm->offset, layout_.comm->size);
      meta.comm = comm.substr(0, std::min(comm.find('\0'), comm.size()));
    }
    return ProcessOutcome::Emitted;
  }

  std::string_view error() const override { return error_; }

 private:
  const struct btf* btf_;
  uint32_t type_id_;
  size_t size_;
  std::string type_name_;
  MetaLayout layout_;
  std::string error_;
};

}  // namespace

bool append_btf_value_json(const struct btf* btf, int type_id, std::span<const std::byte> data, std::string& out) {
  if (!btf || type_id <= 0) return false;
  size_t start = out.size();
  if (JsonDecoder(btf).value(static_cast<uint32_t>(type_id), data, out, 0)) return true;
  out.resize(start);
  return false;
}

Result<std::unique_ptr<Processor>> make_btf_decoder(const struct btf* btf, int type_id) {
  if (!btf) return fail("no BTF to decode records with: the object was built without -g");
  uint32_t resolved = 0;
  const btf_type* type = type_id > 0 ? skip_btf_modifiers(btf, static_cast<uint32_t>(type_id), &resolved) : nullptr;
  if (!type || !btf_is_composite(type)) {
    return failf("BTF type {} is not a struct or union, so records cannot be decoded into fields",
                 type_id > 0 ? btf_type_name(btf, static_cast<uint32_t>(type_id)) : std::string("<none>"));
  }
  __s64 size = btf__resolve_size(btf, resolved);
  if (size <= 0) return failf("{} has no size", btf_type_name(btf, resolved));
  return std::make_unique<BtfDecoder>(btf, resolved, static_cast<size_t>(size), btf_type_name(btf, resolved),
                                      find_meta_layout(btf, type));
}

}  // namespace ea
