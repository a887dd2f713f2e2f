#include "l7/offsets_search_path.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <tuple>

#include <spdlog/spdlog.h>

namespace ea {
namespace {

namespace fs = std::filesystem;

struct State {
  std::mutex mutex;
  std::vector<std::string> configured;
  std::shared_ptr<const OffsetsDatabase> database;
  std::vector<std::string> dirs;  // the search path `database` was read from
  std::vector<std::tuple<std::string, int64_t, int64_t, int64_t>> signature;  // path, size, mtime s, ns
};

State& state() {
  static State instance;
  return instance;
}

void add_unique(std::vector<std::string>& dirs, std::string dir) {
  if (!dir.empty() && std::ranges::find(dirs, dir) == dirs.end()) dirs.push_back(std::move(dir));
}

// What the database files look like now: when this changes, the database is read again.
std::vector<std::tuple<std::string, int64_t, int64_t, int64_t>> current_signature(const std::vector<std::string>& dirs) {
  std::vector<std::tuple<std::string, int64_t, int64_t, int64_t>> signature;
  for (const std::string& dir : dirs) {
    std::error_code error;
    for (fs::directory_iterator it(dir, error); !error && it != fs::directory_iterator(); it.increment(error)) {
      std::string path = it->path().string();
      struct stat info {};
      if (::stat(path.c_str(), &info) != 0) continue;
      signature.emplace_back(path, info.st_size, info.st_mtim.tv_sec, info.st_mtim.tv_nsec);
    }
  }
  std::ranges::sort(signature);
  return signature;
}

}  // namespace

void set_offsets_dirs(std::vector<std::string> dirs) {
  std::lock_guard lock(state().mutex);
  state().configured = std::move(dirs);
  state().database.reset();
}

std::vector<std::string> offsets_search_path() {
  std::vector<std::string> dirs;
  {
    std::lock_guard lock(state().mutex);
    for (const std::string& dir : state().configured) add_unique(dirs, dir);
  }
  if (const char* env = std::getenv("EBPF_AGENT_OFFSETS_PATH")) {
    std::string_view list = env;
    while (!list.empty()) {
      size_t colon = list.find(':');
      add_unique(dirs, std::string(list.substr(0, colon)));
      if (colon == std::string_view::npos) break;
      list.remove_prefix(colon + 1);
    }
  }
  add_unique(dirs, kOffsetsEtcDir);
  add_unique(dirs, EA_INSTALL_OFFSETS_DIR);
  std::error_code error;
  fs::path exe = fs::read_symlink("/proc/self/exe", error);
  if (!error) {
    add_unique(dirs, (exe.parent_path().parent_path() / "share" / "ebpf-agent" / "offsets").string());
    fs::path build_tree = fs::weakly_canonical(EA_BUILD_TREE, error);
    if (!error && exe.parent_path() == build_tree) add_unique(dirs, EA_SOURCE_OFFSETS_DIR);
  }
  return dirs;
}

std::shared_ptr<const OffsetsDatabase> current_offsets_database() {
  std::vector<std::string> dirs = offsets_search_path();
  auto signature = current_signature(dirs);
  std::lock_guard lock(state().mutex);
  if (state().database && dirs == state().dirs && signature == state().signature) {
    return state().database;
  }
  auto database = std::make_shared<OffsetsDatabase>(OffsetsDatabase::load(dirs));
  for (const std::string& problem : database->problems())
    spdlog::warn("offsets database: {} (the rest of the database is used)", problem);
  spdlog::debug("offsets database: {} entries from {} files in {}", database->entries().size(),
                database->files().size(), fmt::join(database->dirs(), ", "));
  state().database = database;
  state().signature = std::move(signature);
  state().dirs = std::move(dirs);
  return database;
}

}  // namespace ea
