// Call tracking on top of an HTTP/2 connection: gRPC calls (service, method, grpc-status,
// message counts per direction) and plain HTTP/2 requests (method, path, :status), each with
// its latency from the first request frame to the end of the response.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "l7/http2_connection.h"

namespace ea::l7 {

enum class CallSide { Server, Client };  // which end of the connection the observed process is

struct CompletedCall {
  CallSide side = CallSide::Server;
  bool grpc = false;
  std::string service;        // gRPC: "pkg.Service"
  std::string method;         // gRPC: "Method"
  int grpc_status = -1;       // gRPC status code; -1 if none was seen
  std::string http_method;    // :method
  std::string path;           // :path
  int http_status = 0;        // :status; 0 if none was seen
  bool reset = false;         // ended by RST_STREAM
  uint64_t duration_ns = 0;
  uint32_t request_messages = 0;   // gRPC length-prefixed messages client -> server
  uint32_t response_messages = 0;  // server -> client
};

struct GrpcTrackerCounters {
  uint64_t calls_completed = 0;
  uint64_t streams_untracked = 0;  // request headers undecodable or never seen
  uint64_t streams_dropped = 0;    // over the open-stream cap
};

class GrpcCallTracker : public Http2StreamObserver {
 public:
  explicit GrpcCallTracker(CallSide side, size_t max_open_streams = 4096);

  void on_headers(Http2Direction dir, uint32_t stream, const std::vector<HeaderField>& fields,
                  bool end_stream, uint64_t time_ns) override;
  void on_undecodable_headers(Http2Direction dir, uint32_t stream, bool end_stream,
                              uint64_t time_ns) override;
  void on_data(Http2Direction dir, uint32_t stream, std::span<const uint8_t> data, bool end_stream,
               uint64_t time_ns) override;
  void on_reset(Http2Direction dir, uint32_t stream, uint32_t error_code, uint64_t time_ns) override;

  // Completed calls since the last take.
  std::vector<CompletedCall> take_completed();
  const GrpcTrackerCounters& counters() const { return counters_; }
  size_t open_streams() const { return open_.size(); }

 private:
  // gRPC framing: 1 byte compressed flag + 4 bytes length + message, possibly across frames.
  struct MessageCounter {
    uint32_t header_bytes = 0;  // prefix bytes seen of the current message
    uint8_t prefix[5] = {};
    uint64_t remaining = 0;     // message bytes still to come
    uint32_t messages = 0;
    void feed(std::span<const uint8_t> data);
  };
  struct OpenCall {
    CompletedCall call;
    uint64_t start_ns = 0;
    bool request_done = false;
    MessageCounter request;
    MessageCounter response;
  };
  void finish(uint32_t stream, uint64_t time_ns);

  CallSide side_;
  size_t max_open_;
  std::unordered_map<uint32_t, OpenCall> open_;
  std::vector<CompletedCall> completed_;
  GrpcTrackerCounters counters_;
};

}  // namespace ea::l7
