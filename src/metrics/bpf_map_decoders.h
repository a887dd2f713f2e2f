// Map-key decoding for map metrics: each label's bytes become a label value through a chain of
// decoders (one that reads bytes, then text mappers and filters). Keys come from a kernel map any
// program of the spec may write, so every decoder accepts any bytes and produces valid UTF-8.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <regex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "spec/spec.h"

namespace ea {

class KernelSymbols;

// An integer of 1, 2, 4 or 8 bytes in the given order (other sizes read as 0).
uint64_t read_unsigned(std::span<const std::byte> bytes, ByteOrder order);
int64_t read_signed(std::span<const std::byte> bytes, ByteOrder order);

// Text up to the first NUL, with every byte sequence that is not UTF-8 replaced by U+FFFD and
// control characters by '?', so a label value is always printable valid UTF-8.
std::string sanitized_text(std::span<const std::byte> bytes);
// Lowercase hex of the bytes in memory order.
std::string hex_text(std::span<const std::byte> bytes);
// 4 bytes: dotted IPv4; 16 bytes: IPv6 as inet_ntop writes it (v4-mapped as ::ffff:a.b.c.d).
std::string inet_text(std::span<const std::byte> bytes);

// A regexp decoder's pattern, compiled for matching without backtracking blow-ups (libstdc++'s
// polynomial mode; back-references are refused) and with bounded repetition counts.
Result<std::regex> compile_label_regexp(std::string_view pattern);

// One label's decoder chain, compiled. Not thread-safe (it caches regexp results).
class LabelDecoderChain {
 public:
  static Result<LabelDecoderChain> make(const MapMetricLabel& label);

  // The label value, or nullopt when a regexp decoder drops the key.
  std::optional<std::string> decode(std::span<const std::byte> bytes);
  // The bucket key of a histogram's last label (uint/int decoder only).
  int64_t integer(std::span<const std::byte> bytes) const;
  bool needs_kernel_symbols() const;
  void set_kernel_symbols(std::shared_ptr<const KernelSymbols> symbols) { symbols_ = std::move(symbols); }

 private:
  struct Step {
    LabelDecoder spec;
    std::vector<std::regex> regexps;
  };
  std::string decode_bytes(const Step& step, std::span<const std::byte> bytes) const;
  bool matches(size_t step_index, const std::string& text);

  std::vector<Step> steps_;
  std::shared_ptr<const KernelSymbols> symbols_;
  // Regexp verdicts per decoded text: labels repeat across keys and collections.
  std::unordered_map<std::string, bool> verdicts_;
};

}  // namespace ea
