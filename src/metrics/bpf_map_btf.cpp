#include "metrics/bpf_map_btf.h"

#include <bpf/btf.h>

#include <algorithm>

#include <fmt/format.h>

#include "loader/btf_types.h"
#include "metrics/metric.h"

namespace ea {
namespace {

constexpr size_t kMaxInferredEnumValues = 1024;

bool integer_size(uint32_t size) { return size == 1 || size == 2 || size == 4 || size == 8; }

LabelDecoder decoder(LabelDecoderKind kind, const SourcePos& pos) { return LabelDecoder{.kind = kind, .pos = pos}; }

// Decoders for one member (or the whole key) of type `type_id`, `size` bytes.
std::vector<LabelDecoder> decoders_for(const struct btf* btf, uint32_t type_id, uint32_t size, const SourcePos& pos) {
  const btf_type* type = skip_btf_modifiers(btf, type_id);
  if (type && btf_is_int(type) && integer_size(size)) {
    bool is_signed = btf_int_encoding(type) & BTF_INT_SIGNED;
    return {decoder(is_signed ? LabelDecoderKind::Int : LabelDecoderKind::Uint, pos)};
  }
  if (type && btf_is_enum(type) && integer_size(size)) {
    LabelDecoder names = decoder(LabelDecoderKind::StaticMap, pos);
    const struct btf_enum* values = btf_enum(type);
    for (uint16_t i = 0; i < btf_vlen(type) && i < kMaxInferredEnumValues; ++i) {
      const char* name = btf__name_by_offset(btf, values[i].name_off);
      if (name && *name) names.static_map.emplace(fmt::format("{}", values[i].val), name);
    }
    std::vector<LabelDecoder> chain{decoder(btf_kflag(type) ? LabelDecoderKind::Int : LabelDecoderKind::Uint, pos)};
    if (!names.static_map.empty()) chain.push_back(std::move(names));
    return chain;
  }
  if (type && btf_is_array(type) && is_btf_char(btf, skip_btf_modifiers(btf, btf_array(type)->type)))
    return {decoder(LabelDecoderKind::String, pos)};
  return {decoder(LabelDecoderKind::Hex, pos)};
}

bool is_integer(const std::vector<LabelDecoder>& decoders) {
  return decoders.size() == 1 &&
         (decoders[0].kind == LabelDecoderKind::Uint || decoders[0].kind == LabelDecoderKind::Int);
}

// Why `type` is not `struct { __u64 count; __u64 sum; }`, or "" when it is.
std::string not_count_and_sum(const struct btf* btf, const btf_type* type, uint32_t value_size) {
  if (!btf_is_struct(type)) return "it is not a struct";
  if (btf_vlen(type) != 2 || value_size != 16)
    return fmt::format("it has {} members in {} bytes", btf_vlen(type), value_size);
  constexpr std::string_view kNames[] = {"count", "sum"};
  const btf_member* members = btf_members(type);
  for (uint16_t i = 0; i < 2; ++i) {
    std::string_view name = btf_member_name(btf, members[i]);
    if (name != kNames[i]) return fmt::format("member {} is '{}', not '{}'", i + 1, name, kNames[i]);
    const btf_type* member = skip_btf_modifiers(btf, members[i].type);
    if (btf_member_bitfield_size(type, i) != 0 || btf_member_bit_offset(type, i) != i * 64u || !member ||
        !btf_is_int(member) || member->size != 8 || (btf_int_encoding(member) & BTF_INT_SIGNED) ||
        btf_int_bits(member) != 64)
      return fmt::format("'{}' is {} at byte {}", name, btf_type_name(btf, members[i].type),
                         btf_member_bit_offset(type, i) / 8);
  }
  return "";
}

}  // namespace

std::string describe_map_type(const struct btf* btf, uint32_t type_id, uint32_t size) {
  if (!btf || type_id == 0) return fmt::format("{} bytes", size);
  return fmt::format("{} ({} bytes)", btf_type_name(btf, type_id), size);
}

Result<std::vector<MapMetricLabel>> labels_from_key_btf(const struct btf* btf, uint32_t key_type_id, MetricKind kind,
                                                        const SourcePos& pos) {
  constexpr std::string_view kDeclare = "declare 'labels:' to say how the key decodes";
  if (!btf || key_type_id == 0) return failf("the map's key has no BTF type — {}", kDeclare);
  uint32_t resolved = 0;
  const btf_type* type = skip_btf_modifiers(btf, key_type_id, &resolved);
  long key_size = btf__resolve_size(btf, key_type_id);
  if (!type || key_size <= 0) return failf("the map's key type cannot be resolved — {}", kDeclare);
  std::vector<MapMetricLabel> labels;
  if (!btf_is_struct(type)) {
    auto decoders = decoders_for(btf, resolved, static_cast<uint32_t>(key_size), pos);
    bool integer = decoders[0].kind == LabelDecoderKind::Uint || decoders[0].kind == LabelDecoderKind::Int;
    if (!integer)
      return failf("the key is {}, not an integer or a struct — {}", btf_type_name(btf, key_type_id), kDeclare);
    if (kind == MetricKind::Histogram) decoders.resize(1);  // a bucket key, not an enum name
    std::string name = kind == MetricKind::Histogram ? "bucket" : "key";
    labels.push_back(MapMetricLabel{name, static_cast<uint32_t>(key_size), std::move(decoders), pos});
    return labels;
  }
  uint32_t cursor = 0;
  const btf_member* members = btf_members(type);
  for (uint16_t i = 0; i < btf_vlen(type); ++i) {
    const char* name = btf_member_name(btf, members[i]);
    uint32_t bit_offset = btf_member_bit_offset(type, i);
    long size = btf__resolve_size(btf, members[i].type);
    if (btf_member_bitfield_size(type, i) != 0 || bit_offset % 8 != 0)
      return failf("member '{}' of {} is a bit-field — {}", name, btf_type_name(btf, key_type_id), kDeclare);
    if (size <= 0 || bit_offset / 8 + static_cast<uint64_t>(size) > static_cast<uint64_t>(key_size))
      return failf("member '{}' of {} has no usable size — {}", name, btf_type_name(btf, key_type_id), kDeclare);
    uint32_t offset = bit_offset / 8;
    if (offset < cursor)
      return failf("members of {} overlap (a union?) — {}", btf_type_name(btf, key_type_id), kDeclare);
    if (offset > cursor) labels.push_back(MapMetricLabel{"", offset - cursor, {}, pos});
    if (!valid_label_name(name) || std::string_view(name).starts_with("__") || std::string_view(name) == "le")
      return failf("member '{}' of {} cannot name a label — {}", *name ? name : "<anonymous>",
                   btf_type_name(btf, key_type_id), kDeclare);
    labels.push_back(MapMetricLabel{name, static_cast<uint32_t>(size),
                                    decoders_for(btf, members[i].type, static_cast<uint32_t>(size), pos), pos});
    cursor = offset + static_cast<uint32_t>(size);
  }
  if (cursor < static_cast<uint32_t>(key_size))
    labels.push_back(MapMetricLabel{"", static_cast<uint32_t>(key_size) - cursor, {}, pos});
  if (kind == MetricKind::Histogram) {
    auto last = std::find_if(labels.rbegin(), labels.rend(), [](const auto& l) { return !l.name.empty(); });
    if (last == labels.rend() || !is_integer(last->decoders))
      return failf("the last member of {} is a histogram's bucket key and must be an integer — {}",
                   btf_type_name(btf, key_type_id), kDeclare);
  }
  if (labels.empty()) return failf("{} has no members — {}", btf_type_name(btf, key_type_id), kDeclare);
  return labels;
}

Result<MapValueType> map_value_type(const struct btf* btf, uint32_t value_type_id, uint32_t value_size,
                                    MetricKind kind) {
  MapValueType value{.size = value_size};
  std::string described = describe_map_type(btf, value_type_id, value_size);
  const bool histogram = kind == MetricKind::Histogram;
  if (btf && value_type_id != 0) {
    const btf_type* type = skip_btf_modifiers(btf, value_type_id);
    if (histogram && type && btf_is_composite(type)) {
      std::string why = not_count_and_sum(btf, type, value_size);
      if (!why.empty())
        return failf("the map's value is {}; a histogram reads one unsigned integer per key (e.g. __u64) or "
                     "struct {{ __u64 count; __u64 sum; }} ({})",
                     described, why);
      value.count_and_sum = true;
      return value;
    }
    if (!type || !(btf_is_int(type) || btf_is_enum(type)))
      return failf("the map's value is {}; a map metric reads one integer per key (e.g. __u64){}", described,
                   histogram ? " or, for a histogram, struct { __u64 count; __u64 sum; }" : "");
    value.is_signed = btf_is_int(type) ? (btf_int_encoding(type) & BTF_INT_SIGNED) != 0 : btf_kflag(type);
  }
  if (!integer_size(value_size))
    return failf("the map's value is {}; a map metric reads one integer of 1, 2, 4 or 8 bytes per key{}", described,
                 histogram && value_size == 16 && (!btf || value_type_id == 0)
                     ? " (a histogram's struct { __u64 count; __u64 sum; } is known by the map's BTF, which it lacks)"
                     : "");
  if (histogram && value.is_signed)
    return failf("the map's value is {}, signed; histogram buckets hold counts — make it unsigned (e.g. __u64)",
                 described);
  return value;
}

}  // namespace ea
