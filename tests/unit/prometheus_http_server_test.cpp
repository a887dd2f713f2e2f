// The bounded HTTP server under the /metrics endpoint, with short limits so that the deadlines
// can be seen: slow senders, idle kept-alive connections and readers that never read.
#include "metrics/metrics_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

namespace ea {
namespace {

using namespace std::chrono_literals;

class ServerUnderTest {
 public:
  explicit ServerUnderTest(HttpServerLimits limits, size_t body_size = 5) : server_(limits) {
    body_.assign(body_size, 'x');
    server_.Get("/", [this](const httplib::Request&, httplib::Response& response) {
      response.set_content(body_, "application/octet-stream");
      BoundedHttpServer::keep_connection_open();
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(1ms);
  }
  ~ServerUnderTest() {
    server_.abort_connections();
    server_.stop();
    thread_.join();
  }
  int connect() const {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port_);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    return fd;
  }

 private:
  BoundedHttpServer server_;
  std::string body_;
  int port_ = 0;
  std::thread thread_;
};

// How long until the server closes the connection, reading (and counting) what it sends.
std::chrono::milliseconds time_until_closed(int fd, size_t* received = nullptr, std::chrono::seconds limit = 10s) {
  auto start = std::chrono::steady_clock::now();
  size_t total = 0;
  while (std::chrono::steady_clock::now() - start < limit) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 20) <= 0) continue;
    char buffer[65536];
    ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    total += n;
  }
  if (received) *received = total;
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
}

HttpServerLimits short_limits() {
  HttpServerLimits limits;
  limits.request_timeout = 300ms;
  limits.keep_alive_timeout = 300ms;
  limits.response_timeout = 500ms;
  return limits;
}

TEST(PrometheusHttpServer, SlowSenderIsCutOffAtTheRequestDeadline) {
  ServerUnderTest server(short_limits());
  int fd = server.connect();
  // One byte every 100 ms: each within any per-read timeout, the whole far past the deadline.
  std::thread drip([fd] {
    for (char c : std::string("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"))
      if (send(fd, &c, 1, MSG_NOSIGNAL) != 1 || (std::this_thread::sleep_for(100ms), false)) break;
  });
  auto took = time_until_closed(fd);
  drip.join();
  close(fd);
  EXPECT_LT(took, 2000ms);
}

TEST(PrometheusHttpServer, IdleKeptAliveConnectionIsClosed) {
  ServerUnderTest server(short_limits());
  int fd = server.connect();
  std::string request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  size_t received = 0;
  auto took = time_until_closed(fd, &received);
  close(fd);
  EXPECT_GT(received, 0u);
  EXPECT_LT(took, 2000ms);
}

TEST(PrometheusHttpServer, ReaderThatNeverReadsIsCutOffAtTheResponseDeadline) {
  ServerUnderTest server(short_limits(), 64 << 20);
  int fd = server.connect();
  std::string request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::this_thread::sleep_for(1500ms);  // not reading: socket buffers (a few MB) fill, the server's writes stall
  size_t received = 0;
  time_until_closed(fd, &received);
  close(fd);
  EXPECT_LT(received, size_t(64 << 20)) << "the whole response was sent to a reader that did not read";
}

TEST(PrometheusHttpServer, QueueBeyondTheWorkersWaitsAndIsServed) {
  HttpServerLimits limits = short_limits();
  limits.workers = 1;
  limits.queued_connections = 1;
  ServerUnderTest server(limits);
  std::vector<int> clients;
  for (int i = 0; i < 4; ++i) {
    int fd = server.connect();
    std::string request = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    clients.push_back(fd);
  }
  for (int fd : clients) {
    size_t received = 0;
    time_until_closed(fd, &received);
    EXPECT_GT(received, 0u);
    close(fd);
  }
}

}  // namespace
}  // namespace ea
