// "raw": the fallback for records of unknown layout: their size and bytes in hex.
#include <fmt/format.h>

#include "pipeline/processor.h"

namespace ea {
namespace {

class RawProcessor : public Processor {
 public:
  ProcessOutcome process(std::span<const std::byte> input, RecordMeta&, std::string& fields) override {
    static constexpr char hex[] = "0123456789abcdef";
    static constexpr size_t kMaxBytes = 64 * 1024;
    size_t shown = std::min(input.size(), kMaxBytes);
    fmt::format_to(std::back_inserter(fields), "{{\"size\":{},\"hex\":\"", input.size());
    for (size_t i = 0; i < shown; ++i) {
      auto byte = static_cast<unsigned char>(input[i]);
      fields += hex[byte >> 4];
      fields += hex[byte & 0xf];
    }
    fields += shown < input.size() ? "\",\"truncated\":true}" : "\"}";
    return ProcessOutcome::Emitted;
  }
  std::string_view error() const override { return {}; }
};

const BuiltinRegistration registration("raw", [](const ProcessorContext&) -> Result<std::unique_ptr<Processor>> {
  return std::make_unique<RawProcessor>();
});

}  // namespace
}  // namespace ea
