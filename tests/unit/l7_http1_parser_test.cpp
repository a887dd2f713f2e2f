// The HTTP/1.x parsers of bpf/include/l7_http1.h, compiled here as plain C++: what the kernel
// program reads from a message start, and the route normalisation.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "l7_db_fixture.h"
#include "l7_http1.h"

using ea::test::Peek;
using ea::test::peek_of;

namespace {

struct Request {
  __u32 length = 0;
  std::string route;
  __u8 method = 0;
};

Request parse_request(const std::string& bytes, __u32 off = 0) {
  Peek p = peek_of(bytes);
  l7_request req{};
  Request r;
  r.length = http1_parse_request(p.buf, off, p.len, &req);
  r.route = std::string(req.name, strnlen(req.name, sizeof req.name));
  r.method = req.method;
  return r;
}

std::string route_of(const std::string& target) { return parse_request("GET " + target + " HTTP/1.1\r\n\r\n").route; }

TEST(Http1Parser, RequestLineAndHeadLength) {
  std::string get = "GET /index.html HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r\n";
  Request r = parse_request(get);
  EXPECT_EQ(r.length, get.size());
  EXPECT_EQ(r.route, "/index.html");
  EXPECT_EQ(r.method, HTTP_METHOD_GET);
}

TEST(Http1Parser, Methods) {
  const std::pair<const char*, __u8> methods[] = {
      {"GET", HTTP_METHOD_GET},         {"POST", HTTP_METHOD_POST},       {"PUT", HTTP_METHOD_PUT},
      {"DELETE", HTTP_METHOD_DELETE},   {"HEAD", HTTP_METHOD_HEAD},       {"OPTIONS", HTTP_METHOD_OPTIONS},
      {"PATCH", HTTP_METHOD_PATCH},     {"CONNECT", HTTP_METHOD_CONNECT}, {"TRACE", HTTP_METHOD_TRACE},
      {"PURGE", HTTP_METHOD_OTHER},
  };
  for (auto [name, method] : methods) {
    Request r = parse_request(std::string(name) + " / HTTP/1.1\r\n\r\n");
    EXPECT_GT(r.length, 0u) << name;
    EXPECT_EQ(r.method, method) << name;
  }
}

TEST(Http1Parser, RoutesAreNormalised) {
  EXPECT_EQ(route_of("/users/42"), "/users/{id}");
  EXPECT_EQ(route_of("/users/42/orders/7"), "/users/{id}/orders/{id}");
  EXPECT_EQ(route_of("/files/3f2a9c1be4d5"), "/files/{hash}");
  EXPECT_EQ(route_of("/o/123e4567-e89b-12d3-a456-426614174000/x"), "/o/{hash}/x");
  EXPECT_EQ(route_of("/search?q=42&page=3"), "/search");
  EXPECT_EQ(route_of("/v2/api"), "/v2/api");           // a version is not an id
  EXPECT_EQ(route_of("/deadbeef"), "/deadbeef");       // hex but no digit: a word
  EXPECT_EQ(route_of("/cafe1234"), "/{hash}");
  EXPECT_EQ(route_of("/"), "/");
  EXPECT_EQ(route_of("*"), "*");
}

TEST(Http1Parser, LongRoutesAreCutAndStayTerminated) {
  std::string target = "/" + std::string(200, 'a') + "/42";
  std::string route = route_of(target);
  EXPECT_EQ(route.size(), L7_ROUTE_LEN - 1u);
  EXPECT_EQ(route, "/" + std::string(L7_ROUTE_LEN - 2, 'a'));
}

TEST(Http1Parser, PipelinedRequestsAreWalked) {
  std::string one = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string two = "POST /b/99 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
  std::string both = one + two;
  Request first = parse_request(both);
  ASSERT_EQ(first.length, one.size());
  Request second = parse_request(both, first.length);
  EXPECT_EQ(second.length, two.size());
  EXPECT_EQ(second.route, "/b/{id}");
  EXPECT_EQ(second.method, HTTP_METHOD_POST);
}

TEST(Http1Parser, HeadPastThePeekRunsPastLen) {
  std::string big = "GET /x HTTP/1.1\r\nCookie: " + std::string(2 * L7_PEEK, 'c') + "\r\n\r\n";
  Request r = parse_request(big);
  EXPECT_GT(r.length, static_cast<__u32>(L7_PEEK));  // the rest is beyond what was peeked
  EXPECT_EQ(r.route, "/x");
}

TEST(Http1Parser, NotRequests) {
  for (const std::string& bytes : {std::string("HTTP/1.1 200 OK\r\n\r\n"), std::string("GET"), std::string(""),
                                   std::string("Hello world, this is text\r\n"), std::string("GET /x FTP/1.0\r\n\r\n"),
                                   std::string("get / HTTP/1.1\r\n\r\n"), std::string("GETTINGS / HTTP/1.1\r\n\r\n"),
                                   std::string("GET http://proxy/x HTTP/1.1\r\n\r\n"), std::string("\x16\x03\x01\x02\x00", 5),
                                   std::string("*3\r\n$3\r\nSET\r\n"), std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")}) {
    EXPECT_EQ(parse_request(bytes).length, 0u) << bytes;
  }
}

TEST(Http1Parser, Responses) {
  std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  Peek p = peek_of(ok);
  l7_response resp{};
  EXPECT_GT(http1_parse_response(p.buf, 0, p.len, &resp), p.len);  // nothing follows: the rest is its own
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.completes, 1);

  Peek cont = peek_of("HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_GT(http1_parse_response(cont.buf, 0, cont.len, &resp), 0u);
  EXPECT_EQ(resp.status, 100);
  EXPECT_EQ(resp.completes, 0);  // interim: the final response follows

  Peek old = peek_of("HTTP/1.0 503 Service Unavailable\r\n\r\n");
  EXPECT_GT(http1_parse_response(old.buf, 0, old.len, &resp), 0u);
  EXPECT_EQ(resp.status, 503);

  for (const char* bad : {"HTTP/2 200\r\n\r\n", "HTTP/1.1 2000 OK\r\n", "HTTP/1.1 abc OK\r\n\r\n", "HTTP/1.1 600 X\r\n\r\n",
                          "GET / HTTP/1.1\r\n\r\n"}) {
    Peek p2 = peek_of(bad);
    EXPECT_EQ(http1_parse_response(p2.buf, 0, p2.len, &resp), 0u) << bad;
  }
}

TEST(Http1Parser, PipelinedResponsesAreFoundAfterTheirBodies) {
  std::string first = "HTTP/1.1 200 OK\r\nServer: nginx\r\ncontent-length: 3\r\n\r\nok\n";
  std::string second = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
  std::string third = "HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
  Peek p = peek_of(first + second + third);
  l7_response resp{};
  __u32 n = http1_parse_response(p.buf, 0, p.len, &resp);
  ASSERT_EQ(n, first.size());
  EXPECT_EQ(resp.status, 200);
  __u32 m = http1_parse_response(p.buf, n, p.len, &resp);
  ASSERT_EQ(m, second.size());
  EXPECT_EQ(resp.status, 404);
  EXPECT_GT(http1_parse_response(p.buf, n + m, p.len, &resp), p.len - n - m);
  EXPECT_EQ(resp.status, 500);

  // Without walking (one request outstanding), the rest of the buffer is this response's.
  EXPECT_GT(http1_parse_response_walk(p.buf, 0, p.len, &resp, 0), p.len);
}

TEST(Http1Parser, HeadEndFoundAtEitherParity) {
  for (int pad = 0; pad < 4; ++pad) {
    std::string request = "GET /p HTTP/1.1\r\nX: " + std::string(pad, 'x') + "\r\n\r\n";
    EXPECT_EQ(parse_request(request + "GET /q HTTP/1.1\r\n\r\n").length, request.size()) << pad;
  }
}

}  // namespace
