#include "agent/spec_dir_watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "spec/parser.h"

namespace ea {

namespace {

bool is_spec_file(std::string_view name) {
  return !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"));
}

}  // namespace

SpecDirWatcher::SpecDirWatcher(std::string directory, Runtime& runtime)
    : directory_(std::move(directory)), runtime_(runtime) {}

Result<std::unique_ptr<SpecDirWatcher>> SpecDirWatcher::start(const std::string& directory, Runtime& runtime) {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  if (ec) return failf("specs directory {}: {}", directory, ec.message());
  std::unique_ptr<SpecDirWatcher> watcher(new SpecDirWatcher(std::filesystem::absolute(directory).string(), runtime));
  watcher->inotify_ = UniqueFd(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  watcher->stop_event_ = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (watcher->inotify_.get() < 0 || watcher->stop_event_.get() < 0) return failf("inotify: {}", strerror(errno));
  if (inotify_add_watch(watcher->inotify_.get(), watcher->directory_.c_str(),
                        IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_DELETE_SELF) < 0)
    return failf("cannot watch {}: {}", directory, strerror(errno));
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(watcher->directory_, ec))
    if (entry.is_regular_file() && is_spec_file(entry.path().filename().string()))
      files.push_back(entry.path().filename().string());
  std::sort(files.begin(), files.end());
  for (const std::string& file : files) watcher->file_changed(file);
  watcher->thread_ = std::thread([raw = watcher.get()] { raw->run(); });
  return watcher;
}

SpecDirWatcher::~SpecDirWatcher() {
  uint64_t one = 1;
  if (write(stop_event_.get(), &one, sizeof(one)) < 0) spdlog::warn("specs watcher: cannot signal stop");
  if (thread_.joinable()) thread_.join();
}

void SpecDirWatcher::run() {
  alignas(inotify_event) char buffer[16 * 1024];
  while (true) {
    pollfd fds[2] = {{inotify_.get(), POLLIN, 0}, {stop_event_.get(), POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    ssize_t length = read(inotify_.get(), buffer, sizeof(buffer));
    for (ssize_t offset = 0; offset < length;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buffer + offset);
      offset += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      if (event->mask & IN_DELETE_SELF) {
        spdlog::error("specs directory {} was removed; specs keep running, no longer watched", directory_);
        return;
      }
      if (event->len == 0 || !is_spec_file(event->name)) continue;
      if (event->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) file_changed(event->name);
      if (event->mask & (IN_DELETE | IN_MOVED_FROM)) file_removed(event->name);
    }
  }
}

void SpecDirWatcher::file_changed(const std::string& name) {
  std::string path = directory_ + "/" + name;
  auto specs = parse_spec_file(path);
  if (!specs) {
    spdlog::error("specs directory: {} not applied (what runs is unchanged):\n{}", path, specs.error().message);
    return;
  }
  std::set<std::string> now;
  for (Spec& spec : *specs) {
    std::string spec_name = spec.name;
    now.insert(spec_name);
    if (auto applied = runtime_.apply(std::move(spec)); !applied)
      spdlog::error("specs directory: {}: {}", path, applied.error().message);
  }
  for (const std::string& gone : specs_by_file_[name])
    if (!now.contains(gone) && runtime_.contains(gone)) (void)runtime_.remove(gone);
  specs_by_file_[name] = std::move(now);
}

void SpecDirWatcher::file_removed(const std::string& name) {
  auto it = specs_by_file_.find(name);
  if (it == specs_by_file_.end()) return;
  for (const std::string& spec : it->second)
    if (runtime_.contains(spec)) (void)runtime_.remove(spec);
  specs_by_file_.erase(it);
}

}  // namespace ea
