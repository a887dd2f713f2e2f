// What a map's BTF says about a map metric: labels inferred from the key's struct when the spec
// gives none, and the value's integer type checked against the metric type.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"
#include "spec/spec.h"

struct btf;

namespace ea {

// Labels from the key type: a struct's members in order (integers -> uint/int, enums -> their
// names through static_map, char arrays -> string, other members -> hex, holes -> padding), or
// one label for an integer key ("key", or "bucket" for histograms). Errors say what to declare.
Result<std::vector<MapMetricLabel>> labels_from_key_btf(const struct btf* btf, uint32_t key_type_id, MetricKind kind,
                                                        const SourcePos& pos);

struct MapValueType {
  uint32_t size = 0;  // 1, 2, 4 or 8; 16 for count_and_sum
  bool is_signed = false;
  // Histograms only: the value is `struct { __u64 count; __u64 sum; }` (count at offset 0, sum
  // at 8), so that a program adds an observation with one lookup of its bucket key.
  bool count_and_sum = false;
};
// The value must be one integer (BTF, when the map has it, tells its signedness); histograms
// count, so theirs must be unsigned, or be the {count, sum} struct above (told by its BTF: a map
// without BTF reads one integer).
Result<MapValueType> map_value_type(const struct btf* btf, uint32_t value_type_id, uint32_t value_size,
                                    MetricKind kind);

// "struct key (12 bytes)" / "12 bytes": the key as the map declares it, for messages.
std::string describe_map_type(const struct btf* btf, uint32_t type_id, uint32_t size);

}  // namespace ea
