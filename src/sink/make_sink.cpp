#include <charconv>

#include "sink/file_sink.h"
#include "sink/sink.h"
#include "sink/stdout_sink.h"

namespace ea {

namespace {

Result<uint64_t> parse_size(std::string_view text, std::string_view option) {
  uint64_t multiplier = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 'K': case 'k': multiplier = 1ull << 10; break;
      case 'M': case 'm': multiplier = 1ull << 20; break;
      case 'G': case 'g': multiplier = 1ull << 30; break;
    }
    if (multiplier != 1) text.remove_suffix(1);
  }
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size())
    return failf("output option {}: '{}' is not a size (examples: 1048576, 64M, 1G)", option, text);
  return value * multiplier;
}

Result<std::unique_ptr<Sink>> make_file_sink(std::string_view rest) {
  // file:PATH[,max_bytes=64M][,keep=5]
  FileSinkOptions options;
  size_t comma = rest.find(',');
  options.path = std::string(rest.substr(0, comma));
  while (comma != std::string_view::npos) {
    rest = rest.substr(comma + 1);
    comma = rest.find(',');
    std::string_view option = rest.substr(0, comma);
    size_t eq = option.find('=');
    std::string_view key = option.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? std::string_view() : option.substr(eq + 1);
    if (key == "max_bytes") {
      auto size = parse_size(value, key);
      if (!size) return std::unexpected(size.error());
      options.max_bytes = *size;
    } else if (key == "keep") {
      auto count = parse_size(value, key);
      if (!count) return std::unexpected(count.error());
      options.keep = static_cast<unsigned>(*count);
    } else {
      return failf("file output: unknown option '{}' (known: max_bytes=SIZE, keep=N)", key);
    }
  }
  auto sink = FileSink::open(std::move(options));
  if (!sink) return std::unexpected(sink.error());
  return std::unique_ptr<Sink>(std::move(*sink));
}

}  // namespace

Result<std::unique_ptr<Sink>> make_sink(std::string_view description) {
  if (description == "stdout" || description == "-") return std::unique_ptr<Sink>(new StdoutSink());
  if (description.starts_with("file:")) return make_file_sink(description.substr(5));
  return failf("unknown output '{}': use stdout or file:PATH[,max_bytes=SIZE][,keep=N]", description);
}

}  // namespace ea
