#include "metrics/bpf_map_decoders.h"

#include <arpa/inet.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include <fmt/format.h>

#include "metrics/bpf_map_ksyms.h"

namespace ea {
namespace {

// Product of the repetition counts ({n}, {n,m}) a pattern may have: libstdc++ expands each
// repetition into copies of its states, so nested counts multiply.
constexpr uint64_t kMaxRepetitionProduct = 1000;
constexpr size_t kMaxVerdicts = 4096;

std::regex::flag_type regexp_flags() {
#ifdef __GLIBCXX__
  return std::regex::ECMAScript | std::regex_constants::__polynomial;
#else
  return std::regex::ECMAScript;
#endif
}

// Length of the UTF-8 sequence at `text` (RFC 3629: no overlong forms, no surrogates, at most
// U+10FFFF), 0 when it is not one.
size_t utf8_sequence(const unsigned char* text, size_t left) {
  unsigned char c = text[0];
  if (c < 0x80) return 1;
  size_t length = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
  if (length == 0 || length > left) return 0;
  for (size_t i = 1; i < length; ++i)
    if ((text[i] & 0xC0) != 0x80) return 0;
  if (c == 0xE0 && text[1] < 0xA0) return 0;  // overlong
  if (c == 0xED && text[1] > 0x9F) return 0;  // surrogates
  if (c == 0xF0 && text[1] < 0x90) return 0;  // overlong
  if (c == 0xF4 && text[1] > 0x8F) return 0;  // beyond U+10FFFF
  return length;
}

std::optional<std::string> repetition_problem(std::string_view pattern) {
  uint64_t product = 1;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\') {
      if (i + 1 < pattern.size() && ((pattern[i + 1] >= '1' && pattern[i + 1] <= '9') || pattern[i + 1] == 'k'))
        return "back-references are not supported — match without them";
      ++i;
      continue;
    }
    if (pattern[i] != '{') continue;
    uint64_t largest = 0, number = 0;
    size_t j = i + 1;
    for (; j < pattern.size() && j < i + 24 && pattern[j] != '}'; ++j) {
      if (pattern[j] >= '0' && pattern[j] <= '9') {
        number = std::min<uint64_t>(number * 10 + static_cast<uint64_t>(pattern[j] - '0'), kMaxRepetitionProduct + 1);
      } else if (pattern[j] == ',') {
        largest = std::max(largest, number);
        number = 0;
      } else {
        break;
      }
    }
    largest = std::max(largest, number);
    if (largest > 1) product = std::min(product * largest, kMaxRepetitionProduct + 1);
  }
  if (product > kMaxRepetitionProduct)
    return fmt::format("its repetition counts multiply to more than {} — use + or * instead", kMaxRepetitionProduct);
  return std::nullopt;
}

}  // namespace

uint64_t read_unsigned(std::span<const std::byte> bytes, ByteOrder order) {
  uint64_t value = 0;
  switch (bytes.size()) {
    case 1: return std::to_integer<uint8_t>(bytes[0]);
    case 2: case 4: case 8: break;
    default: return 0;
  }
  bool big = order == ByteOrder::Big || (order == ByteOrder::Host && std::endian::native == std::endian::big);
  for (size_t i = 0; i < bytes.size(); ++i) {
    size_t index = big ? i : bytes.size() - 1 - i;
    value = (value << 8) | std::to_integer<uint8_t>(bytes[index]);
  }
  return value;
}

int64_t read_signed(std::span<const std::byte> bytes, ByteOrder order) {
  uint64_t value = read_unsigned(bytes, order);
  if (bytes.empty() || bytes.size() > 8) return 0;
  unsigned bits = static_cast<unsigned>(bytes.size() * 8);
  if (bits < 64 && (value >> (bits - 1)) & 1) value |= ~uint64_t{0} << bits;  // sign-extend
  return static_cast<int64_t>(value);
}

std::string sanitized_text(std::span<const std::byte> bytes) {
  const auto* text = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t length = std::find(text, text + bytes.size(), 0) - text;
  std::string out;
  out.reserve(length);
  for (size_t i = 0; i < length;) {
    size_t sequence = utf8_sequence(text + i, length - i);
    if (sequence == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    } else if (sequence == 1 && (text[i] < 0x20 || text[i] == 0x7F)) {
      out += '?';
      ++i;
    } else {
      out.append(reinterpret_cast<const char*>(text + i), sequence);
      i += sequence;
    }
  }
  return out;
}

std::string hex_text(std::span<const std::byte> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::byte b : bytes) {
    auto value = std::to_integer<uint8_t>(b);
    out += kDigits[value >> 4];
    out += kDigits[value & 15];
  }
  return out;
}

std::string inet_text(std::span<const std::byte> bytes) {
  char text[INET6_ADDRSTRLEN] = {};
  if (bytes.size() == 4 && inet_ntop(AF_INET, bytes.data(), text, sizeof text)) return text;
  if (bytes.size() == 16 && inet_ntop(AF_INET6, bytes.data(), text, sizeof text)) return text;
  return hex_text(bytes);
}

Result<std::regex> compile_label_regexp(std::string_view pattern) {
  if (auto problem = repetition_problem(pattern)) return fail(*problem);
  try {
    return std::regex(pattern.begin(), pattern.end(), regexp_flags());
  } catch (const std::regex_error& error) {
    return failf("is not a valid regular expression (ECMAScript syntax): {}", error.what());
  }
}

Result<LabelDecoderChain> LabelDecoderChain::make(const MapMetricLabel& label) {
  LabelDecoderChain chain;
  for (const LabelDecoder& decoder : label.decoders) {
    Step step{.spec = decoder};
    for (const std::string& pattern : decoder.regexps) {
      auto compiled = compile_label_regexp(pattern);
      if (!compiled) return std::unexpected(with_context(compiled.error(), decoder.pos.str()));
      step.regexps.push_back(std::move(*compiled));
    }
    chain.steps_.push_back(std::move(step));
  }
  if (chain.steps_.empty()) return failf("{}: label '{}' has no decoder", label.pos.str(), label.name);
  return chain;
}

bool LabelDecoderChain::needs_kernel_symbols() const {
  return std::ranges::any_of(steps_, [](const Step& s) { return s.spec.kind == LabelDecoderKind::Ksym; });
}

int64_t LabelDecoderChain::integer(std::span<const std::byte> bytes) const {
  const LabelDecoder& first = steps_.front().spec;
  if (first.kind == LabelDecoderKind::Int) return read_signed(bytes, first.byte_order);
  uint64_t value = read_unsigned(bytes, first.byte_order);
  return value > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(value);
}

std::string LabelDecoderChain::decode_bytes(const Step& step, std::span<const std::byte> bytes) const {
  switch (step.spec.kind) {
    case LabelDecoderKind::Uint: return fmt::format("{}", read_unsigned(bytes, step.spec.byte_order));
    case LabelDecoderKind::Int: return fmt::format("{}", read_signed(bytes, step.spec.byte_order));
    case LabelDecoderKind::String: return sanitized_text(bytes);
    case LabelDecoderKind::Hex: return hex_text(bytes);
    case LabelDecoderKind::InetIp: return inet_text(bytes);
    case LabelDecoderKind::Ksym: {
      uint64_t address = read_unsigned(bytes, ByteOrder::Host);
      std::string_view name = symbols_ ? symbols_->find(address) : std::string_view();
      return name.empty() ? fmt::format("0x{:x}", address) : sanitized_text(std::as_bytes(std::span(name)));
    }
    case LabelDecoderKind::StaticMap:
    case LabelDecoderKind::Regexp: break;
  }
  return {};
}

bool LabelDecoderChain::matches(size_t index, const std::string& text) {
  const Step& step = steps_[index];
  std::string key = fmt::format("{}:{}", index, text);
  if (auto it = verdicts_.find(key); it != verdicts_.end()) return it->second;
  bool verdict = false;
  try {
    verdict = std::ranges::any_of(step.regexps, [&](const std::regex& r) { return std::regex_search(text, r); });
  } catch (const std::regex_error&) {
    verdict = false;  // too complex to decide for this text: drop the key rather than the collection
  }
  if (verdicts_.size() >= kMaxVerdicts) verdicts_.clear();
  verdicts_.emplace(std::move(key), verdict);
  return verdict;
}

std::optional<std::string> LabelDecoderChain::decode(std::span<const std::byte> bytes) {
  std::string text = decode_bytes(steps_.front(), bytes);
  for (size_t i = 1; i < steps_.size(); ++i) {
    const Step& step = steps_[i];
    if (step.spec.kind == LabelDecoderKind::StaticMap) {
      auto it = step.spec.static_map.find(text);
      text = it != step.spec.static_map.end() ? it->second : "unknown:" + text;
    } else if (step.spec.kind == LabelDecoderKind::Regexp && !matches(i, text)) {
      return std::nullopt;
    }
  }
  return text;
}

}  // namespace ea
