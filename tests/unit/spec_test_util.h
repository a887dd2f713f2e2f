// Helpers shared by the spec parser tests (tests/unit/spec_*_test.cpp).
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "pipeline/processor.h"
#include "spec/parser.h"

namespace ea {

// A built-in processor the tests can route to, whatever the agent itself registers. Inline: one
// registration however many test files include this.
inline const BuiltinRegistration kSpecTestProcessor(
    "spec_test_processor",
    [](const ProcessorContext&) -> Result<std::unique_ptr<Processor>> { return fail("spec tests never run processors"); });

// `spec:` with one valid program, to complete a document whose header is under test.
inline constexpr const char* kMinimalBody =
    "spec:\n"
    "  programs:\n"
    "    - {name: obj, path: obj.bpf.o, type: ebpf_object}\n";

// Test YAML is written as R"(\n...)" for readability: the first newline is not part of it, so
// line 1 is the line after R"(.
inline Result<std::vector<Spec>> parse_test_yaml(std::string_view yaml) {
  if (yaml.starts_with('\n')) yaml.remove_prefix(1);
  return parse_specs(yaml, "t.yaml", "/base");
}

// The error text of YAML that must be refused.
inline std::string errors_of(std::string_view yaml) {
  auto specs = parse_test_yaml(yaml);
  EXPECT_FALSE(specs) << "accepted:\n" << yaml;
  return specs ? std::string() : specs.error().message;
}

// A spec whose one ebpf_object program (at line 5) gets `line` as its last field (at line 7).
inline std::string program_yaml(std::string_view line) {
  return fmt::format(
      "kind: ebpfprogram\n"
      "name: t\n"
      "spec:\n"
      "  programs:\n"
      "    - name: obj\n"
      "      type: ebpf_object\n"
      "      {}\n",
      line);
}

}  // namespace ea
