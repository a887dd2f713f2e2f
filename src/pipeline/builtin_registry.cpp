#include <map>
#include <mutex>

#include "pipeline/processor.h"

namespace ea {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, ProcessorFactory, std::less<>> factories;
};

// Function-local static: registrations run during static initialisation of other files.
Registry& registry() {
  static Registry instance;
  return instance;
}

}  // namespace

void register_builtin_processor(std::string name, ProcessorFactory factory) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  r.factories[std::move(name)] = std::move(factory);
}

const ProcessorFactory* find_builtin_processor(std::string_view name) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  auto it = r.factories.find(name);
  return it == r.factories.end() ? nullptr : &it->second;
}

std::vector<std::string> builtin_processor_names() {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [name, factory] : r.factories) names.push_back(name);
  return names;
}

}  // namespace ea
