// The /metrics endpoint over real sockets: libcurl as the scraper, raw sockets as hostile clients.
#include "metrics/metrics_endpoint.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "metrics/prometheus_text.h"

namespace ea {
namespace {

struct HttpReply {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string headers;
  std::string body;
};

size_t append_to(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

HttpReply http(const std::string& method, const std::string& url, bool accept_gzip = false) {
  HttpReply reply;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  if (method == "HEAD")
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  else if (method != "GET")
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (accept_gzip) curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "gzip");  // and curl decodes it
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append_to);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, append_to);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &reply.headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  reply.code = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  curl_easy_cleanup(curl);
  return reply;
}

MetricsSnapshot sample_snapshot() {
  MetricsSnapshot snapshot;
  MetricFamily records{"ebpf_agent_records", "Records read.", "", MetricKind::Counter, "", {}};
  records.series.push_back({{{"spec", "tcp_connlat"}}, 42, {}});
  MetricFamily latency{"tcp_connect_duration_seconds", "Connect latency.", "seconds", MetricKind::Histogram, "", {}};
  latency.series.push_back({{{"result", "established"}}, 0, {{0.001, 0.01}, {3, 2, 1}, 0.5, 6}});
  snapshot.families = {records, latency};
  return snapshot;
}

std::unique_ptr<MetricsEndpoint> start_endpoint(std::function<MetricsSnapshot()> collect = sample_snapshot,
                                                std::string_view listen = "127.0.0.1:0") {
  auto endpoint = MetricsEndpoint::start(listen, std::move(collect));
  if (!endpoint) ADD_FAILURE() << endpoint.error().message;
  return endpoint ? std::move(*endpoint) : nullptr;
}

std::string url(const MetricsEndpoint& endpoint, std::string_view path) {
  return "http://" + endpoint.address() + std::string(path);
}

int port_of(const std::string& address) { return std::stoi(address.substr(address.rfind(':') + 1)); }

int connect_loopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Everything the server sends until it closes the connection (or `timeout` passes).
std::string read_until_closed(int fd, std::chrono::milliseconds timeout) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    char buffer[4096];
    ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) return out;
    out.append(buffer, n);
  }
  return out + "<timeout>";
}

bool can_bind(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int yes = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 && listen(fd, 1) == 0;
  close(fd);
  return ok;
}

TEST(PrometheusEndpoint, ParsesListenAddresses) {
  auto v4 = parse_listen_address("127.0.0.1:9464");
  ASSERT_TRUE(v4) << v4.error().message;
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 9464);
  auto v6 = parse_listen_address("[::1]:0");
  ASSERT_TRUE(v6) << v6.error().message;
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
  auto any = parse_listen_address(":9464");
  ASSERT_TRUE(any) << any.error().message;
  EXPECT_EQ(any->host, "");
  auto name = parse_listen_address("localhost:65535");
  ASSERT_TRUE(name) << name.error().message;
  EXPECT_EQ(name->port, 65535);
  for (std::string_view bad : {"", "9464", "::1:9464", "[::1]9464", "[::1", "[]:1", "host:port", "1.2.3.4:65536",
                               "1.2.3.4:", "1.2.3.4:-1", "a b:1", "off", "1.2.3.4:123456"}) {
    auto parsed = parse_listen_address(bad);
    EXPECT_FALSE(parsed) << "accepted '" << bad << "'";
    if (!parsed) {
      EXPECT_NE(parsed.error().message.find("--metrics-listen"), std::string::npos);
    }
  }
}

TEST(PrometheusEndpoint, ServesMetricsInTextFormat) {
  auto endpoint = start_endpoint();
  ASSERT_TRUE(endpoint);
  EXPECT_TRUE(endpoint->address().starts_with("127.0.0.1:"));
  EXPECT_NE(port_of(endpoint->address()), 0);
  HttpReply reply = http("GET", url(*endpoint, "/metrics"));
  ASSERT_EQ(reply.code, CURLE_OK) << curl_easy_strerror(reply.code);
  EXPECT_EQ(reply.status, 200);
  EXPECT_NE(reply.headers.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), std::string::npos)
      << reply.headers;
  EXPECT_EQ(reply.body, render_prometheus_text(sample_snapshot()));
  EXPECT_NE(reply.body.find("ebpf_agent_records_total{spec=\"tcp_connlat\"} 42\n"), std::string::npos);
}

TEST(PrometheusEndpoint, CollectsOnEveryScrape) {
  std::atomic<int> scrapes{0};
  auto endpoint = start_endpoint([&] {
    MetricsSnapshot snapshot;
    snapshot.families.push_back({"scrapes", "Scrapes.", "", MetricKind::Counter, "", {{{}, double(++scrapes), {}}}});
    return snapshot;
  });
  ASSERT_TRUE(endpoint);
  EXPECT_NE(http("GET", url(*endpoint, "/metrics")).body.find("scrapes_total 1\n"), std::string::npos);
  EXPECT_NE(http("GET", url(*endpoint, "/metrics")).body.find("scrapes_total 2\n"), std::string::npos);
}

TEST(PrometheusEndpoint, GzipWhenTheScraperAcceptsIt) {
  auto endpoint = start_endpoint();
  ASSERT_TRUE(endpoint);
  HttpReply reply = http("GET", url(*endpoint, "/metrics"), true);
  ASSERT_EQ(reply.code, CURLE_OK) << curl_easy_strerror(reply.code);
  EXPECT_NE(reply.headers.find("Content-Encoding: gzip"), std::string::npos) << reply.headers;
  EXPECT_EQ(reply.body, render_prometheus_text(sample_snapshot()));
}

TEST(PrometheusEndpoint, HeadIndexNotFoundAndMethodNotAllowed) {
  auto endpoint = start_endpoint();
  ASSERT_TRUE(endpoint);
  HttpReply head = http("HEAD", url(*endpoint, "/metrics"));
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_NE(head.headers.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);

  HttpReply index = http("GET", url(*endpoint, "/"));
  EXPECT_EQ(index.status, 200);
  EXPECT_NE(index.body.find("href=\"/metrics\""), std::string::npos) << index.body;

  for (std::string_view path : {"/nope", "/metrics/x", "/metricsx", "/favicon.ico"}) {
    HttpReply missing = http("GET", url(*endpoint, path));
    EXPECT_EQ(missing.status, 404) << path;
    EXPECT_NE(missing.body.find("/metrics"), std::string::npos) << missing.body;
  }
  for (std::string method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) {
    HttpReply refused = http(method, url(*endpoint, "/metrics"));
    EXPECT_EQ(refused.status, 405) << method;
    EXPECT_NE(refused.headers.find("Allow: GET, HEAD"), std::string::npos) << refused.headers;
  }
  // The query string does not change the path.
  EXPECT_EQ(http("GET", url(*endpoint, "/metrics?x=1")).status, 200);
}

TEST(PrometheusEndpoint, StopReleasesThePortAndIsIdempotent) {
  auto endpoint = start_endpoint();
  ASSERT_TRUE(endpoint);
  std::string address = endpoint->address();
  int port = port_of(address);
  EXPECT_FALSE(can_bind(port));
  endpoint->stop();
  endpoint->stop();
  EXPECT_TRUE(can_bind(port));
  EXPECT_NE(http("GET", "http://" + address + "/metrics").code, CURLE_OK);
  // The same address serves again.
  auto again = start_endpoint(sample_snapshot, address);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->address(), address);
  EXPECT_EQ(http("GET", url(*again, "/metrics")).status, 200);
}

TEST(PrometheusEndpoint, BindConflictNamesTheAddressAndTheFlag) {
  auto first = start_endpoint();
  ASSERT_TRUE(first);
  auto second = MetricsEndpoint::start(first->address(), sample_snapshot);
  ASSERT_FALSE(second) << "a second endpoint bound " << first->address();
  const std::string& message = second.error().message;
  EXPECT_NE(message.find(first->address()), std::string::npos) << message;
  EXPECT_NE(message.find("Address already in use"), std::string::npos) << message;
  EXPECT_NE(message.find("--metrics-listen"), std::string::npos) << message;
  // The first one is unharmed.
  EXPECT_EQ(http("GET", url(*first, "/metrics")).status, 200);
}

TEST(PrometheusEndpoint, AddressOnNoInterfaceIsAClearError) {
  auto endpoint = MetricsEndpoint::start("192.0.2.1:0", sample_snapshot);  // TEST-NET-1, never local
  ASSERT_FALSE(endpoint);
  EXPECT_NE(endpoint.error().message.find("192.0.2.1:0"), std::string::npos) << endpoint.error().message;
  EXPECT_NE(endpoint.error().message.find("Cannot assign requested address"), std::string::npos)
      << endpoint.error().message;
  EXPECT_FALSE(MetricsEndpoint::start("nonsense", sample_snapshot));
}

TEST(PrometheusEndpoint, Ipv6LoopbackAndAllInterfaces) {
  auto any = start_endpoint(sample_snapshot, ":0");
  ASSERT_TRUE(any);
  EXPECT_TRUE(any->address().starts_with("[::]:") || any->address().starts_with("0.0.0.0:")) << any->address();
  EXPECT_EQ(http("GET", "http://127.0.0.1:" + std::to_string(port_of(any->address())) + "/metrics").status, 200);

  auto v6 = MetricsEndpoint::start("[::1]:0", sample_snapshot);
  if (!v6) GTEST_SKIP() << "no IPv6 loopback here: " << v6.error().message;
  EXPECT_TRUE((*v6)->address().starts_with("[::1]:")) << (*v6)->address();
  EXPECT_EQ(http("GET", url(**v6, "/metrics")).status, 200);
}

TEST(PrometheusEndpoint, CollectFailureIs500AndTheServerLivesOn) {
  std::atomic<bool> fail{true};
  auto endpoint = start_endpoint([&] {
    if (fail) throw std::runtime_error("collector broke");
    return sample_snapshot();
  });
  ASSERT_TRUE(endpoint);
  HttpReply broken = http("GET", url(*endpoint, "/metrics"));
  EXPECT_EQ(broken.status, 500);
  EXPECT_EQ(broken.body.find("collector broke"), std::string::npos) << "internal error text leaked";
  fail = false;
  EXPECT_EQ(http("GET", url(*endpoint, "/metrics")).status, 200);
}

TEST(PrometheusEndpoint, KeepAliveServesPipelinedRequestsAndRefusalsClose) {
  auto endpoint = start_endpoint();
  ASSERT_TRUE(endpoint);
  int fd = connect_loopback(port_of(endpoint->address()));
  ASSERT_GE(fd, 0);
  std::string two = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(send(fd, two.data(), two.size(), MSG_NOSIGNAL), ssize_t(two.size()));
  std::string replies = read_until_closed(fd, std::chrono::seconds(10));
  close(fd);
  EXPECT_NE(replies.find("ebpf_agent_records_total"), std::string::npos) << replies;
  EXPECT_NE(replies.find("href=\"/metrics\""), std::string::npos) << replies;

  // A refused request's body is never read, so the connection must not be reused.
  fd = connect_loopback(port_of(endpoint->address()));
  ASSERT_GE(fd, 0);
  std::string smuggle = "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 35\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(send(fd, smuggle.data(), smuggle.size(), MSG_NOSIGNAL), ssize_t(smuggle.size()));
  replies = read_until_closed(fd, std::chrono::seconds(10));
  close(fd);
  EXPECT_TRUE(replies.starts_with("HTTP/1.1 405")) << replies;
  EXPECT_EQ(replies.find("ebpf_agent_records_total"), std::string::npos) << replies;
  EXPECT_EQ(replies.find("<timeout>"), std::string::npos) << replies;
}

TEST(PrometheusEndpoint, OversizedRequestsAreCutOff) {
  auto endpoint = start_endpoint();
  ASSERT_TRUE(endpoint);
  int fd = connect_loopback(port_of(endpoint->address()));
  ASSERT_GE(fd, 0);
  // Many small headers: each under httplib's per-line limit, together far over ours.
  std::string request = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 4000; ++i) request += "X-Filler-" + std::to_string(i) + ": aaaaaaaaaaaaaaaa\r\n";
  request += "\r\n";
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string reply = read_until_closed(fd, std::chrono::seconds(10));
  close(fd);
  EXPECT_EQ(reply.find("ebpf_agent_records_total"), std::string::npos) << "a 100 KB request was served";
  EXPECT_EQ(reply.find("<timeout>"), std::string::npos) << "the connection stayed open";
  EXPECT_EQ(http("GET", url(*endpoint, "/metrics")).status, 200);
}

TEST(PrometheusEndpoint, StalledClientsNeitherBlockScrapesNorStop) {
  auto endpoint = start_endpoint();
  ASSERT_TRUE(endpoint);
  int port = port_of(endpoint->address());
  std::vector<int> stalled;
  for (int i = 0; i < 2; ++i) {
    int fd = connect_loopback(port);
    ASSERT_GE(fd, 0);
    send(fd, "GET /metr", 9, MSG_NOSIGNAL);
    stalled.push_back(fd);
  }
  EXPECT_EQ(http("GET", url(*endpoint, "/metrics")).status, 200);
  auto before = std::chrono::steady_clock::now();
  endpoint->stop();
  auto took = std::chrono::steady_clock::now() - before;
  EXPECT_LT(took, std::chrono::seconds(2)) << "stop waited for stalled clients";
  for (int fd : stalled) {
    EXPECT_EQ(read_until_closed(fd, std::chrono::seconds(5)).find("<timeout>"), std::string::npos);
    close(fd);
  }
}

TEST(PrometheusEndpoint, ConcurrentScrapes) {
  auto endpoint = start_endpoint();
  ASSERT_TRUE(endpoint);
  std::atomic<int> ok{0};
  std::vector<std::thread> scrapers;
  for (int t = 0; t < 8; ++t)
    scrapers.emplace_back([&] {
      for (int i = 0; i < 10; ++i)
        if (http("GET", url(*endpoint, "/metrics"), i % 2 == 0).status == 200) ++ok;
    });
  for (auto& scraper : scrapers) scraper.join();
  EXPECT_EQ(ok.load(), 80);
}

}  // namespace
}  // namespace ea
