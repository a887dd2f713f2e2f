#include "metrics/metrics_http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace ea {
namespace {

using Clock = std::chrono::steady_clock;

// Waits in short slices so that a stopping server is noticed within one slice.
constexpr std::chrono::milliseconds kWaitSlice{100};

thread_local bool keep_alive_allowed = false;

void address_text(const sockaddr_storage& address, std::string& ip, int& port) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
    inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text);
    port = ntohs(v4.sin_port);
  } else if (address.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
    inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text);
    port = ntohs(v6.sin6_port);
  }
  ip = text;
}

// A connection's socket with a read buffer, a byte budget and deadlines. Non-blocking calls
// after poll(), so a peer that stops reading or writing costs a deadline, never a stuck thread.
class DeadlineStream final : public httplib::Stream {
 public:
  DeadlineStream(int fd, const HttpServerLimits& limits, const std::atomic<bool>& aborted)
      : fd_(fd), limits_(limits), aborted_(aborted) {}

  void begin_request() {
    read_budget_ = limits_.max_request_bytes;
    read_deadline_ = Clock::now() + limits_.request_timeout;
    write_deadline_.reset();
  }

  // Between requests on a kept-alive connection: is there another one within the idle time?
  bool next_request_arrives() {
    return buffered() > 0 || wait(POLLIN, Clock::now() + limits_.keep_alive_timeout);
  }

  bool is_readable() const override { return buffered() > 0 || wait(POLLIN, read_deadline_); }
  bool is_writable() const override { return wait(POLLOUT, write_deadline()); }

  ssize_t read(char* ptr, size_t size) override {
    if (read_budget_ == 0 || size == 0) return -1;
    size = std::min(size, read_budget_);
    if (buffered() == 0 && !fill()) return -1;
    size_t n = std::min(size, buffered());
    std::copy_n(buffer_.data() + begin_, n, ptr);
    begin_ += n;
    read_budget_ -= n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    while (true) {
      if (!wait(POLLOUT, write_deadline())) return -1;
      ssize_t n = ::send(fd_, ptr, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) return n;
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (getpeername(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0) address_text(address, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0) address_text(address, ip, port);
  }
  socket_t socket() const override { return fd_; }

 private:
  size_t buffered() const { return end_ - begin_; }

  Clock::time_point write_deadline() const {
    if (!write_deadline_) write_deadline_ = Clock::now() + limits_.response_timeout;
    return *write_deadline_;
  }

  bool fill() {
    begin_ = end_ = 0;
    while (true) {
      if (!wait(POLLIN, read_deadline_)) return false;
      ssize_t n = ::recv(fd_, buffer_.data(), buffer_.size(), MSG_DONTWAIT);
      if (n > 0) {
        end_ = static_cast<size_t>(n);
        return true;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return false;
    }
  }

  bool wait(short events, Clock::time_point deadline) const {
    while (!aborted_.load(std::memory_order_relaxed)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      pollfd fd{fd_, events, 0};
      int ready = ::poll(&fd, 1, static_cast<int>(std::min(left, kWaitSlice).count()));
      if (ready > 0) return true;  // including POLLHUP/POLLERR: the next call reports them
      if (ready < 0 && errno != EINTR) return false;
    }
    return false;
  }

  int fd_;
  const HttpServerLimits& limits_;
  const std::atomic<bool>& aborted_;
  std::array<char, 4096> buffer_{};
  size_t begin_ = 0;
  size_t end_ = 0;
  size_t read_budget_ = 0;
  Clock::time_point read_deadline_{};
  mutable std::optional<Clock::time_point> write_deadline_;
};

// httplib's ThreadPool queues without bound; this one makes the accepting thread wait when
// the queue is full, so excess connections wait in the kernel's listen backlog instead.
class BoundedTaskQueue final : public httplib::TaskQueue {
 public:
  BoundedTaskQueue(size_t workers, size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {
    for (size_t i = 0; i < std::max<size_t>(workers, 1); ++i) threads_.emplace_back([this] { work(); });
  }
  ~BoundedTaskQueue() override { shutdown(); }

  void enqueue(std::function<void()> job) override {
    std::unique_lock lock(mutex_);
    not_full_.wait(lock, [&] { return jobs_.size() < capacity_ || stopping_; });
    jobs_.push_back(std::move(job));
    not_empty_.notify_one();
  }

  // Runs what is queued (each job closes its socket), then joins the workers.
  void shutdown() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    not_empty_.notify_all();
    not_full_.notify_all();
    for (std::thread& thread : threads_)
      if (thread.joinable()) thread.join();
  }

 private:
  void work() {
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock lock(mutex_);
        not_empty_.wait(lock, [&] { return !jobs_.empty() || stopping_; });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
        not_full_.notify_one();
      }
      job();
    }
  }

  size_t capacity_;
  std::mutex mutex_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace

BoundedHttpServer::BoundedHttpServer(HttpServerLimits limits) : limits_(limits) {
  new_task_queue = [this] { return new BoundedTaskQueue(limits_.workers, limits_.queued_connections); };
  set_payload_max_length(limits_.max_request_bytes);
}

void BoundedHttpServer::keep_connection_open() { keep_alive_allowed = true; }

bool BoundedHttpServer::process_and_close_socket(socket_t sock) {
  // Helper processes the agent starts (bpftrace) must not inherit client connections.
  fcntl(sock, F_SETFD, fcntl(sock, F_GETFD) | FD_CLOEXEC);
  DeadlineStream stream(sock, limits_, aborted_);
  bool ok = true;
  for (size_t served = 0; served < limits_.max_requests_per_connection; ++served) {
    if (aborted_.load() || svr_sock_ == INVALID_SOCKET) break;
    if (served > 0 && !stream.next_request_arrives()) break;
    stream.begin_request();
    keep_alive_allowed = false;
    bool connection_closed = false;
    bool last = served + 1 == limits_.max_requests_per_connection;
    ok = process_request(stream, last, connection_closed, nullptr);
    if (!ok || connection_closed || !keep_alive_allowed) break;
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ok;
}

}  // namespace ea
