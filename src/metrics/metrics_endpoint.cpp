#include "metrics/metrics_endpoint.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include <spdlog/spdlog.h>

#include "metrics/metrics_http_server.h"
#include "metrics/prometheus_text.h"

namespace ea {
namespace {

constexpr std::string_view kFlagHint =
    "choose another address with --metrics-listen HOST:PORT (port 0 = any free port), or turn the "
    "endpoint off with --metrics-listen off";

constexpr std::string_view kIndexPage =
    "<!doctype html>\n<html><head><title>ebpf-agent</title></head>\n"
    "<body><h1>ebpf-agent</h1><p>Prometheus metrics: <a href=\"/metrics\">/metrics</a></p></body></html>\n";

bool valid_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
         c == '_' || c == ':' || c == '%';
}

std::string host_port(std::string_view host, int port) {
  bool ipv6 = host.find(':') != std::string_view::npos;
  return ipv6 ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

std::string bound_address(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (fd < 0 || getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return {};
  char text[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
    inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text);
    return host_port(text, ntohs(v4.sin_port));
  }
  const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
  inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text);
  return host_port(text, ntohs(v6.sin6_port));
}

// httplib only says that binding failed; bind a socket of our own the same way to learn why.
std::string bind_failure_reason(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string service = std::to_string(port);
  if (int error = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); error != 0)
    return fmt::format("cannot resolve '{}': {}", host, gai_strerror(error));
  std::string reason = "no usable address";
  for (addrinfo* candidate = found; candidate; candidate = candidate->ai_next) {
    int fd = ::socket(candidate->ai_family, candidate->ai_socktype | SOCK_CLOEXEC, candidate->ai_protocol);
    if (fd < 0) {
      reason = std::strerror(errno);
      continue;
    }
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    int error = ::bind(fd, candidate->ai_addr, candidate->ai_addrlen) == 0 ? 0 : errno;
    ::close(fd);
    if (error == 0) {
      reason = "the address was taken between attempts";
      continue;
    }
    reason = std::strerror(error);
    if (error == EADDRINUSE) reason += " (another process listens there)";
    if (error == EADDRNOTAVAIL) reason += " (no interface has this address)";
    if (error == EACCES) reason += " (ports below 1024 need privileges)";
    break;
  }
  freeaddrinfo(found);
  return reason;
}

}  // namespace

Result<ListenAddress> parse_listen_address(std::string_view listen) {
  auto bad = [&](std::string_view why) {
    return failf("--metrics-listen '{}': {}; expected HOST:PORT such as 127.0.0.1:9464, [::1]:9464 or :9464",
                 listen, why);
  };
  if (listen.empty()) return bad("empty");
  if (listen.size() > 300) return bad("too long");
  ListenAddress address;
  std::string_view port;
  if (listen.front() == '[') {
    size_t close = listen.find(']');
    if (close == std::string_view::npos) return bad("missing ']' after the IPv6 address");
    address.host = std::string(listen.substr(1, close - 1));
    if (address.host.empty()) return bad("empty IPv6 address");
    if (close + 1 >= listen.size() || listen[close + 1] != ':') return bad("missing ':PORT' after ']'");
    port = listen.substr(close + 2);
  } else {
    size_t colon = listen.rfind(':');
    if (colon == std::string_view::npos) return bad("missing ':PORT'");
    address.host = std::string(listen.substr(0, colon));
    if (address.host.find(':') != std::string::npos) return bad("an IPv6 address goes in brackets ([::1]:9464)");
    port = listen.substr(colon + 1);
  }
  for (char c : address.host)
    if (!valid_host_char(c)) return bad(fmt::format("character '{}' cannot be in a host name or address", c));
  if (port.empty() || port.size() > 5) return bad("the port must be a number from 0 to 65535");
  int number = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return bad("the port must be a number from 0 to 65535");
    number = number * 10 + (c - '0');
  }
  if (number > 65535) return bad("the port must be a number from 0 to 65535");
  address.port = number;
  return address;
}

struct MetricsEndpoint::Impl {
  std::function<MetricsSnapshot()> collect;
  BoundedHttpServer server{HttpServerLimits{}};
  std::thread thread;
  std::string address;
  std::atomic<size_t> last_body_size{0};
  std::atomic<bool> warned_skipped{false};
  int candidate_fd = -1;  // the socket httplib is binding (set from its socket-options hook)

  void serve_metrics(const httplib::Request&, httplib::Response& response) {
    MetricsSnapshot snapshot = collect();
    std::string body;
    body.reserve(last_body_size.load(std::memory_order_relaxed) + 4096);
    PrometheusRenderStats stats = render_prometheus_text(snapshot, body);
    if (stats.skipped_families > 0 && !warned_skipped.exchange(true))
      spdlog::warn("/metrics: {} metric families left out: another family of a different kind has the same name",
                   stats.skipped_families);
    last_body_size.store(body.size(), std::memory_order_relaxed);
    // httplib gzips text/* bodies for clients that send Accept-Encoding: gzip (Prometheus does).
    response.body = std::move(body);
    response.set_header("Content-Type", std::string(kPrometheusTextContentType));
    BoundedHttpServer::keep_connection_open();
  }

  void install_routes() {
    server.set_pre_routing_handler([](const httplib::Request& request, httplib::Response& response) {
      if (request.method == "GET" || request.method == "HEAD") return httplib::Server::HandlerResponse::Unhandled;
      response.status = 405;
      response.set_header("Allow", "GET, HEAD");
      response.set_content("405 method not allowed: use GET\n", "text/plain; charset=utf-8");
      return httplib::Server::HandlerResponse::Handled;
    });
    server.Get("/metrics", [this](const httplib::Request& request, httplib::Response& response) {
      serve_metrics(request, response);
    });
    server.Get("/", [](const httplib::Request&, httplib::Response& response) {
      response.set_content(kIndexPage.data(), kIndexPage.size(), "text/html; charset=utf-8");
      BoundedHttpServer::keep_connection_open();
    });
    server.set_error_handler([](const httplib::Request&, httplib::Response& response) {
      if (!response.body.empty()) return;
      if (response.status == 404)
        response.set_content("404 page not found: metrics are at /metrics\n", "text/plain; charset=utf-8");
      else
        response.set_content(fmt::format("{} request refused\n", response.status), "text/plain; charset=utf-8");
    });
    server.set_exception_handler([](const httplib::Request& request, httplib::Response& response, std::exception_ptr error) {
      std::string what = "unknown error";
      try {
        if (error) std::rethrow_exception(error);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      spdlog::error("metrics endpoint: {} {} failed: {}", request.method, request.path, what);
      response.status = 500;
      response.set_content("500 internal server error: see the agent's log\n", "text/plain; charset=utf-8");
    });
  }

  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let a second agent bind
  // the same port silently and steal half the scrapes.
  void install_socket_options(bool dual_stack) {
    server.set_socket_options([this, dual_stack](socket_t fd) {
      candidate_fd = fd;
      int yes = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
      fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
      if (dual_stack) {
        int no = 0;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &no, sizeof no);
      }
    });
  }

  bool bind(const std::string& host, int port) {
    install_socket_options(host == "::");
    candidate_fd = -1;
    if (port == 0) return server.bind_to_any_port(host) > 0;
    return server.bind_to_port(host, port);
  }
};

MetricsEndpoint::MetricsEndpoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsEndpoint::~MetricsEndpoint() { stop(); }

Result<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::start(std::string_view listen,
                                                                std::function<MetricsSnapshot()> collect) {
  auto parsed = parse_listen_address(listen);
  if (!parsed) return std::unexpected(parsed.error());
  if (!collect) return fail("metrics endpoint: no collect function given");
  auto impl = std::make_unique<Impl>();
  impl->collect = std::move(collect);
  impl->install_routes();
  // All interfaces: IPv6 and IPv4 on one socket, or IPv4 alone where IPv6 is off.
  bool bound = false;
  std::string host = parsed->host;
  if (host.empty()) {
    bound = impl->bind("::", parsed->port);
    if (!bound) host = "0.0.0.0";
  }
  if (!bound) bound = impl->bind(host, parsed->port);
  if (!bound)
    return failf("cannot serve metrics on {}: {}; {}", listen, bind_failure_reason(host, parsed->port), kFlagHint);
  impl->address = bound_address(impl->candidate_fd);
  if (impl->address.empty()) impl->address = host_port(host, parsed->port);

  Impl* raw = impl.get();
  impl->thread = std::thread([raw] {
    if (!raw->server.listen_after_bind()) spdlog::error("metrics endpoint on {} stopped accepting", raw->address);
  });
  // stop() before the accept loop runs would not be seen by it: wait until it does.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!raw->server.is_running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  spdlog::debug("metrics endpoint accepting on {}", impl->address);  // the caller announces it
  return std::unique_ptr<MetricsEndpoint>(new MetricsEndpoint(std::move(impl)));
}

std::string MetricsEndpoint::address() const { return impl_->address; }

void MetricsEndpoint::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->server.abort_connections();
  impl_->server.stop();
  impl_->thread.join();
}

}  // namespace ea
