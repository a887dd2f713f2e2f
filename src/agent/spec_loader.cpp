#include "agent/spec_loader.h"

#include "spec/parser.h"

namespace ea {

ApplyReport apply_spec_text(Runtime& runtime, std::string_view yaml, const std::string& source,
                            const std::string& base_dir) {
  ApplyReport report;
  auto specs = parse_specs(yaml, source, base_dir);
  if (!specs) {
    report.errors.push_back(specs.error().message);
    return report;
  }
  for (Spec& spec : *specs) {
    std::string name = spec.name;
    if (auto applied = runtime.apply(std::move(spec)); applied)
      report.applied.push_back(name);
    else
      report.errors.push_back(applied.error().message);
  }
  return report;
}

}  // namespace ea
