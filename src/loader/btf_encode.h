// Turns spec values (YAML kept as JSON) into the bytes of a BTF type: how a spec's `variables`
// and map entries become what the BPF program sees.
//
// Integers of any width are range-checked (numbers, or strings in decimal / 0x / 0o / 0b); bools;
// enums by number or enumerator name; char arrays from strings (NUL-padded, the NUL must fit);
// byte arrays also from "0x..." hex strings; arrays from lists (the rest zero-filled); structs
// and unions from maps of field names (anonymous members' fields by their own names, bit-fields
// included); typedef/const/volatile are seen through.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"
#include "spec/spec.h"

struct btf;

namespace ea {

// Writes `value` as BTF type `type_id` over `out`, which must be the type's size. Struct members
// the value does not name keep their bytes (a variable's other defaults survive); everything
// else is written whole. Errors start with `path` (e.g. "key.addr", "ports[2]") and say why.
Result<void> btf_encode(const struct btf* btf, uint32_t type_id, const Value& value, std::span<std::byte> out,
                        std::string_view path);

// For maps declared without BTF (key_size/value_size only): an integer of that size, a "0x..."
// hex string or a list of byte values (shorter ones zero-filled).
Result<void> encode_untyped(const Value& value, std::span<std::byte> out, std::string_view path);

}  // namespace ea
