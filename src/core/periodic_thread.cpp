#include "core/periodic_thread.h"

namespace ea {

PeriodicThread::PeriodicThread(std::chrono::milliseconds interval, std::function<void()> task)
    : interval_(interval), task_(std::move(task)), thread_([this] { run(); }) {}

void PeriodicThread::run() {
  auto next = std::chrono::steady_clock::now() + interval_;
  std::unique_lock lock(mutex_);
  while (!wake_.wait_until(lock, next, [this] { return stopping_; })) {
    lock.unlock();
    task_();
    lock.lock();
    // Keep the cadence; if a task overran, start the next interval from now.
    next = std::max(next + interval_, std::chrono::steady_clock::now());
  }
}

void PeriodicThread::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace ea
