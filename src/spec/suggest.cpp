#include "spec/suggest.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

namespace ea {
namespace {

// ASCII case folding; bytes of other scripts compare as they are.
std::string folded(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Optimal string alignment distance (Levenshtein plus adjacent transpositions: "kafak" ->
// "kafka"), or `limit + 1` as soon as it must exceed `limit`. `rows` is scratch space.
size_t typo_distance(std::string_view a, std::string_view b, size_t limit, std::vector<size_t>& rows) {
  const size_t n = a.size(), m = b.size();
  if ((n > m ? n - m : m - n) > limit) return limit + 1;
  rows.assign(3 * (m + 1), 0);
  size_t* prev2 = rows.data();
  size_t* prev = prev2 + m + 1;
  size_t* row = prev + m + 1;
  for (size_t j = 0; j <= m; ++j) prev[j] = j;
  for (size_t i = 1; i <= n; ++i) {
    row[0] = i;
    size_t row_min = row[0];
    for (size_t j = 1; j <= m; ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      row[j] = std::min({prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) row[j] = std::min(row[j], prev2[j - 2] + 1);
      row_min = std::min(row_min, row[j]);
    }
    // Rows never shrink by more than one (a deletion), so later rows stay past the limit too.
    if (row_min > limit) return limit + 1;
    std::swap(prev2, prev);
    std::swap(prev, row);
  }
  return prev[m];
}

}  // namespace

std::optional<std::string_view> closest_match(std::string_view word, std::span<const std::string_view> candidates) {
  // Longer words are names, not typos, and would only make the distance table big.
  constexpr size_t kMaxWord = 64;
  if (word.empty() || word.size() > kMaxWord) return std::nullopt;
  const std::string word_folded = folded(word);
  std::vector<size_t> rows;
  std::optional<std::string_view> best;
  size_t best_distance = 0;
  for (std::string_view candidate : candidates) {
    if (candidate.size() > kMaxWord) continue;
    if (best && best_distance == 0) break;
    // About a third of the longer word may differ: "ebpf_obj" -> "ebpf_object", "x" -/-> "key".
    size_t allowed = std::max<size_t>(1, (std::max(word.size(), candidate.size()) + 2) / 3);
    if (best) allowed = std::min(allowed, best_distance - 1);  // only a closer one matters now
    size_t distance = typo_distance(word_folded, folded(candidate), allowed, rows);
    if (distance <= allowed) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

std::string use_one_of(std::string_view word, std::span<const std::string_view> candidates) {
  constexpr size_t kMaxListed = 16;
  if (candidates.empty()) return "";
  std::string text = fmt::format(" — use one of: {}", fmt::join(candidates.first(std::min(candidates.size(), kMaxListed)), ", "));
  if (candidates.size() > kMaxListed) text += fmt::format(" (and {} more)", candidates.size() - kMaxListed);
  if (auto match = closest_match(word, candidates)) text += fmt::format(" (did you mean '{}'?)", *match);
  return text;
}

}  // namespace ea
