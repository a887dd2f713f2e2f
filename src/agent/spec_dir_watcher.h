// Keeps the runtime in step with a directory of spec files (*.yaml, *.yml): a new or changed
// file is applied, a deleted file's specs are deleted. A file that fails to parse or load is
// reported and leaves what already runs untouched.
#pragma once
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "agent/runtime.h"
#include "agent/socket_io.h"
#include "core/result.h"

namespace ea {

class SpecDirWatcher {
 public:
  static Result<std::unique_ptr<SpecDirWatcher>> start(const std::string& directory, Runtime& runtime);
  ~SpecDirWatcher();

 private:
  SpecDirWatcher(std::string directory, Runtime& runtime);
  void run();
  void file_changed(const std::string& name);
  void file_removed(const std::string& name);

  std::string directory_;
  Runtime& runtime_;
  UniqueFd inotify_;
  UniqueFd stop_event_;
  std::map<std::string, std::set<std::string>> specs_by_file_;
  std::thread thread_;
};

}  // namespace ea
