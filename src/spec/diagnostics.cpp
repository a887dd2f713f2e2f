#include "spec/diagnostics.h"

#include <algorithm>

#include <fmt/format.h>

namespace ea {
namespace {

// Enough to fix a spec in one pass; more is noise (and hostile input could produce millions).
constexpr size_t kMaxShown = 50;
constexpr size_t kMaxStored = 10'000;

}  // namespace

std::string printable(std::string_view text) {
  constexpr size_t kMaxEchoed = 80;
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (out.size() >= kMaxEchoed) {
      out += "...";
      break;
    }
    auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x20 || byte == 0x7f)
      fmt::format_to(std::back_inserter(out), "\\x{:02x}", byte);
    else
      out += static_cast<char>(byte);
  }
  return out;
}

void Diagnostics::add(SourcePos pos, std::string field, std::string message) {
  if (problems_.size() >= kMaxStored) {
    ++dropped_;
    return;
  }
  problems_.push_back({std::move(pos), std::move(field), std::move(message)});
}

std::string Diagnostics::render() const {
  std::vector<const Problem*> sorted;
  sorted.reserve(problems_.size());
  for (const auto& problem : problems_) sorted.push_back(&problem);
  std::ranges::stable_sort(sorted, [](const Problem* a, const Problem* b) {
    return std::pair(a->pos.line, a->pos.column) < std::pair(b->pos.line, b->pos.column);
  });
  std::string text;
  size_t shown = std::min(sorted.size(), kMaxShown);
  for (size_t i = 0; i < shown; ++i) {
    const Problem& problem = *sorted[i];
    if (!text.empty()) text += '\n';
    text += problem.pos.str();
    text += ": ";
    if (!problem.field.empty()) fmt::format_to(std::back_inserter(text), "field '{}': ", problem.field);
    text += problem.message;
  }
  size_t hidden = sorted.size() - shown + dropped_;
  if (hidden > 0) fmt::format_to(std::back_inserter(text), "\n... and {} more problems", hidden);
  return text;
}

}  // namespace ea
