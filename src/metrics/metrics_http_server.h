// cpp-httplib's server with the limits a port open to any local client needs. httplib 0.11
// itself has no cap on header count or request size and keeps reading as long as each byte
// arrives within its timeout, so connections are served through our own socket stream: a byte
// budget and a deadline per request, a deadline per response, a bounded worker pool and queue,
// and every wait cut short when the server stops.
#pragma once
#include <atomic>
#include <chrono>
#include <cstddef>

#include <httplib.h>

namespace ea {

struct HttpServerLimits {
  size_t workers = 4;                  // connections served at once
  size_t queued_connections = 32;      // accepted and waiting; past this, accept waits
  size_t max_request_bytes = 16 * 1024;  // request line + headers + body
  size_t max_requests_per_connection = 100;
  std::chrono::milliseconds request_timeout{5000};   // a whole request must arrive within this
  std::chrono::milliseconds response_timeout{30000};  // a whole response must be taken within this
  std::chrono::milliseconds keep_alive_timeout{5000};  // idle wait for the next request
};

class BoundedHttpServer : public httplib::Server {
 public:
  explicit BoundedHttpServer(HttpServerLimits limits);
  // Makes every connection give up its waits and close (then stop() returns promptly).
  void abort_connections() { aborted_.store(true); }
  // Called by a handler: the connection may serve another request after this response. Without
  // it (errors, refused methods) the connection closes after the response, so a body the server
  // never read cannot be taken for the next request.
  static void keep_connection_open();

 private:
  bool process_and_close_socket(socket_t sock) override;

  HttpServerLimits limits_;
  std::atomic<bool> aborted_{false};
};

}  // namespace ea
