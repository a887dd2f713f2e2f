// Decodes raw records into JSON fields through BTF: no user code needed for a known struct.
#pragma once
#include <memory>
#include <string_view>

#include "core/result.h"
#include "pipeline/processor.h"

struct btf;

namespace ea {

// Integers, enums, bools, char arrays (as strings), other arrays, nested structs/unions.
// Fields named pid/tgid/comm also fill the envelope.
Result<std::unique_ptr<Processor>> make_btf_decoder(const struct btf* btf, int type_id);

// Appends the value at `data` of BTF type `type_id` as JSON; false when the bytes are too short.
bool append_btf_value_json(const struct btf* btf, int type_id, std::span<const std::byte> data, std::string& out);

}  // namespace ea
