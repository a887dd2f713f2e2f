#include "spec/suggest.h"

#include <algorithm>
#include <cctype>
#include <vector>

#include <fmt/format.h>

namespace ea {
namespace {

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

// Optimal string alignment distance: Levenshtein plus adjacent transpositions ("kafak" -> "kafka").
size_t typo_distance(std::string_view a, std::string_view b) {
  const size_t n = a.size(), m = b.size();
  std::vector<size_t> prev2(m + 1), prev(m + 1), row(m + 1);
  for (size_t j = 0; j <= m; ++j) prev[j] = j;
  for (size_t i = 1; i <= n; ++i) {
    row[0] = i;
    for (size_t j = 1; j <= m; ++j) {
      size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      row[j] = std::min({prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) && lower(a[i - 2]) == lower(b[j - 1]))
        row[j] = std::min(row[j], prev2[j - 2] + 1);
    }
    prev2.swap(prev);
    prev.swap(row);
  }
  return prev[m];
}

}  // namespace

std::optional<std::string_view> closest_match(std::string_view word, std::span<const std::string_view> candidates) {
  // Anything longer is not a typo and would only make the distance table big.
  constexpr size_t kMaxWord = 128;
  if (word.empty() || word.size() > kMaxWord) return std::nullopt;
  std::optional<std::string_view> best;
  size_t best_distance = 0;
  for (std::string_view candidate : candidates) {
    if (candidate.size() > kMaxWord) continue;
    size_t distance = typo_distance(word, candidate);
    // About a third of the longer word may differ: "ebpf_obj" -> "ebpf_object", "x" -/-> "key".
    size_t allowed = std::max<size_t>(1, (std::max(word.size(), candidate.size()) + 2) / 3);
    if (distance <= allowed && (!best || distance < best_distance)) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

std::string use_one_of(std::string_view word, std::span<const std::string_view> candidates) {
  if (candidates.empty()) return "";
  std::string text = fmt::format(" — use one of: {}", fmt::join(candidates, ", "));
  if (auto match = closest_match(word, candidates)) text += fmt::format(" (did you mean '{}'?)", *match);
  return text;
}

}  // namespace ea
