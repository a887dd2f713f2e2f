// An output as written on the command line: KIND[:TARGET][,key=value]...
//   tsdb:/var/lib/ebpf-agent/tsdb,retention=7d   kafka:broker1:9092,broker2:9092,spool=/run/x
// Comma-separated pieces without '=' belong to the target (Kafka's broker list has commas).
#pragma once
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ea {

struct OutputDescription {
  std::string text;  // as given, for messages
  std::string kind;
  std::string target;
  std::map<std::string, std::string, std::less<>> options;

  // Fails naming the unknown key and listing `known`, with `usage` as the fix.
  Result<void> check_options(std::initializer_list<std::string_view> known, std::string_view usage) const;
  std::string option(std::string_view key, std::string_view fallback) const;
  Result<uint64_t> size_option(std::string_view key, uint64_t fallback) const;
  Result<std::chrono::milliseconds> duration_option(std::string_view key, std::chrono::milliseconds fallback) const;
  Result<bool> bool_option(std::string_view key, bool fallback) const;
};

Result<OutputDescription> parse_output_description(std::string_view text);

}  // namespace ea
