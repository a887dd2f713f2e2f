// Kernel symbol lookup for the `ksym` label decoder, from /proc/kallsyms.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ea {

class KernelSymbols {
 public:
  // Parses kallsyms text ("ffffffff81000000 T _stext [module]" lines); malformed lines are skipped.
  static KernelSymbols parse(std::string_view text);
  // /proc/kallsyms, read once per process and shared (reading it costs tens of milliseconds).
  // Empty when unreadable or when the kernel hides addresses (kptr_restrict).
  static std::shared_ptr<const KernelSymbols> system();

  // The symbol containing `address` (the nearest one at or below it); "" when none.
  std::string_view find(uint64_t address) const;
  size_t size() const { return addresses_.size(); }

 private:
  std::vector<uint64_t> addresses_;  // ascending
  std::vector<uint32_t> name_offsets_;
  std::string names_;  // NUL-separated
};

}  // namespace ea
