// Reads `kind: ebpfprogram` specs from YAML, checking everything that can be checked without
// loading: fields, types, names, paths, references between programs, channels and events.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "spec/spec.h"

namespace ea {

// Larger spec texts are refused before parsing (a spec is configuration, not data).
inline constexpr size_t kMaxSpecBytes = 1 << 20;

// Parses every YAML document in `text` (documents separated by ---). `source_file` is used in
// error messages; relative program paths later resolve against `base_dir`.
// On failure the error lists every problem found, one per line:
// "FILE:LINE:COL: field 'spec.programs[0].type': unknown program type 'x' — use one of: ...".
Result<std::vector<Spec>> parse_specs(std::string_view text, const std::string& source_file, const std::string& base_dir);

// Reads and parses a file (base_dir = the file's directory, made absolute).
Result<std::vector<Spec>> parse_spec_file(const std::string& path);

}  // namespace ea
