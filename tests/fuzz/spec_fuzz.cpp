// libFuzzer target for the spec parser: any bytes must give specs or an error that says where,
// never a crash, a hang or unbounded memory. Not part of the default build (it needs a clang
// whose libstdc++ mode has std::expected, i.e. clang 19 here). From the repository root:
//
//   clang++-19 -std=c++23 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -Iinclude \
//     tests/fuzz/spec_fuzz.cpp src/spec/*.cpp src/pipeline/builtin_registry.cpp \
//     -lyaml-cpp -lfmt -o /tmp/spec_fuzz
//   mkdir -p /tmp/spec_corpus && /tmp/spec_fuzz -dict=tests/fuzz/spec.dict -max_len=65536 \
//     -timeout=10 -rss_limit_mb=2048 /tmp/spec_corpus tests/fixtures/specs
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "spec/parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto specs = ea::parse_specs(text, "fuzz.yaml", "/fuzz");
  // Every error names the file first; anything else means a message lost its position.
  if (!specs && !specs.error().message.starts_with("fuzz.yaml")) __builtin_trap();
  return 0;
}
