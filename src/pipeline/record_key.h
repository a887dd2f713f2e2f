// Finds the dispatch key (tgid by default) inside a record struct through BTF.
#pragma once
#include <optional>
#include <string_view>

#include "pipeline/route.h"

struct btf;

namespace ea {

// `field` names the key; empty means "tgid", else "pid". Only top-level integer members of
// 1, 2, 4 or 8 bytes qualify.
std::optional<KeyField> find_key_field(const struct btf* btf, int struct_type_id, std::string_view field);

}  // namespace ea
