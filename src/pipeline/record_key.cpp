#include "pipeline/record_key.h"

#include <bpf/btf.h>

namespace ea {

namespace {

std::optional<KeyField> member_field(const struct btf* btf, const btf_type* type, std::string_view name) {
  const btf_member* members = btf_members(type);
  for (int i = 0; i < btf_vlen(type); ++i) {
    const char* member_name = btf__name_by_offset(btf, members[i].name_off);
    if (!member_name || name != member_name) continue;
    if (btf_member_bitfield_size(type, i) != 0) return std::nullopt;
    uint32_t bit_offset = btf_member_bit_offset(type, i);
    if (bit_offset % 8 != 0) return std::nullopt;
    int resolved = btf__resolve_type(btf, members[i].type);
    if (resolved < 0) return std::nullopt;
    const btf_type* member_type = btf__type_by_id(btf, resolved);
    if (!btf_is_int(member_type) && !btf_is_enum(member_type)) return std::nullopt;
    uint32_t size = member_type->size;
    if (size != 1 && size != 2 && size != 4 && size != 8) return std::nullopt;
    return KeyField{bit_offset / 8, size};
  }
  return std::nullopt;
}

}  // namespace

std::optional<KeyField> find_key_field(const struct btf* btf, int struct_type_id, std::string_view field) {
  if (!btf || struct_type_id <= 0) return std::nullopt;
  const btf_type* type = btf__type_by_id(btf, struct_type_id);
  if (!type || !btf_is_struct(type)) return std::nullopt;
  if (!field.empty()) return member_field(btf, type, field);
  if (auto tgid = member_field(btf, type, "tgid")) return tgid;
  return member_field(btf, type, "pid");
}

}  // namespace ea
