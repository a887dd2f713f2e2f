#include "metrics/bpf_map_ksyms.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <mutex>

namespace ea {
namespace {

constexpr size_t kMaxKallsymsBytes = 64u << 20;  // real files are ~10 MiB
constexpr size_t kMaxSymbolName = 512;

}  // namespace

KernelSymbols KernelSymbols::parse(std::string_view text) {
  std::vector<std::pair<uint64_t, std::string_view>> symbols;
  for (size_t start = 0; start < text.size();) {
    size_t end = std::min(text.find('\n', start), text.size());
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    // "ADDRESS TYPE NAME[\t[MODULE]]"
    size_t first = line.find(' ');
    if (first == std::string_view::npos || line.size() < first + 4 || line[first + 2] != ' ') continue;
    uint64_t address = 0;
    auto [ptr, ec] = std::from_chars(line.data(), line.data() + first, address, 16);
    if (ec != std::errc() || ptr != line.data() + first || address == 0) continue;
    std::string_view name = line.substr(first + 3);
    name = name.substr(0, name.find_first_of("\t "));
    if (name.empty() || name.size() > kMaxSymbolName) continue;
    symbols.emplace_back(address, name);
  }
  std::ranges::stable_sort(symbols, {}, &std::pair<uint64_t, std::string_view>::first);
  KernelSymbols result;
  result.addresses_.reserve(symbols.size());
  result.name_offsets_.reserve(symbols.size());
  for (const auto& [address, name] : symbols) {
    if (result.names_.size() + name.size() + 1 > UINT32_MAX) break;
    result.addresses_.push_back(address);
    result.name_offsets_.push_back(static_cast<uint32_t>(result.names_.size()));
    result.names_.append(name);
    result.names_.push_back('\0');
  }
  return result;
}

std::shared_ptr<const KernelSymbols> KernelSymbols::system() {
  static std::mutex mutex;
  static std::weak_ptr<const KernelSymbols> cached;
  std::lock_guard lock(mutex);
  if (auto symbols = cached.lock()) return symbols;
  std::string text;
  std::ifstream file("/proc/kallsyms", std::ios::binary);
  char buffer[1 << 16];
  while (file && text.size() < kMaxKallsymsBytes) {
    file.read(buffer, sizeof buffer);
    text.append(buffer, static_cast<size_t>(file.gcount()));
  }
  auto symbols = std::make_shared<const KernelSymbols>(parse(text));
  cached = symbols;
  return symbols;
}

std::string_view KernelSymbols::find(uint64_t address) const {
  auto it = std::upper_bound(addresses_.begin(), addresses_.end(), address);
  if (it == addresses_.begin()) return {};
  size_t index = static_cast<size_t>(it - addresses_.begin()) - 1;
  return std::string_view(names_.c_str() + name_offsets_[index]);
}

}  // namespace ea
