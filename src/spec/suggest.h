// "Did you mean" hints and "use one of" lists for spec error messages.
#pragma once
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace ea {

// The candidate closest to `word` (case-insensitive edit distance, transpositions count once),
// when it is close enough to be a likely typo.
std::optional<std::string_view> closest_match(std::string_view word, std::span<const std::string_view> candidates);

// " — use one of: a, b, c (did you mean 'b'?)": the fix part of an "unknown X" message.
std::string use_one_of(std::string_view word, std::span<const std::string_view> candidates);

}  // namespace ea
