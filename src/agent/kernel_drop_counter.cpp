#include "agent/kernel_drop_counter.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <string_view>

#include "loader/ebpf_object.h"

namespace ea {

const volatile uint64_t* find_kernel_drop_counter(const EbpfObject& object, const std::string& variable) {
  const struct btf* btf = object.btf();
  if (!btf || !object.object()) return nullptr;
  for (const char* section : {".bss", ".data"}) {
    int sec_id = btf__find_by_name_kind(btf, section, BTF_KIND_DATASEC);
    if (sec_id <= 0) continue;
    const btf_type* datasec = btf__type_by_id(btf, sec_id);
    const btf_var_secinfo* vars = btf_var_secinfos(datasec);
    for (int i = 0; i < btf_vlen(datasec); ++i) {
      const btf_type* var = btf__type_by_id(btf, vars[i].type);
      const char* name = btf__name_by_offset(btf, var->name_off);
      if (!name || variable != name || vars[i].size != sizeof(uint64_t)) continue;
      bpf_map* map;
      bpf_object__for_each_map(map, object.object()) {
        if (!bpf_map__is_internal(map) || !std::string_view(bpf_map__name(map)).ends_with(section)) continue;
        size_t size = 0;
        auto* data = static_cast<const char*>(bpf_map__initial_value(map, &size));  // the mmaped map after load
        if (!data || vars[i].offset + sizeof(uint64_t) > size) return nullptr;
        return reinterpret_cast<const volatile uint64_t*>(data + vars[i].offset);
      }
    }
  }
  return nullptr;
}

}  // namespace ea
