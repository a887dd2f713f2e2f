// libFuzzer target for the HTTP/2 + HPACK + gRPC layer: any bytes, split anywhere, in either
// direction, from the start or mid-stream, must never crash, hang or grow without bound. Not
// part of the default build (needs clang 19 for std::expected with libstdc++). From the
// repository root:
//
//   clang++-19 -std=c++23 -g -O1 -fsanitize=fuzzer,address,undefined \
//     -fno-sanitize-recover=undefined -Isrc -Iinclude \
//     tests/fuzz/http2_fuzz.cpp src/l7/hpack_*.cpp src/l7/http2_*.cpp src/l7/grpc_calls.cpp \
//     -o /tmp/http2_fuzz
//   mkdir -p /tmp/http2_corpus && /tmp/http2_fuzz -max_len=65536 -timeout=10 \
//     -rss_limit_mb=2048 /tmp/http2_corpus
#include <cstddef>
#include <cstdint>
#include <span>

#include "l7/grpc_calls.h"
#include "l7/hpack_decoder.h"
#include "l7/http2_connection.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  std::span<const uint8_t> input(data, size);
  uint8_t mode = input[0];
  input = input.subspan(1);

  // The HPACK decoder alone: the table never exceeds its capacity.
  ea::l7::HpackDecoder decoder((mode & 1) != 0);
  std::vector<ea::l7::HeaderField> fields;
  (void)decoder.decode(input, fields);
  if (decoder.dynamic_size() > decoder.dynamic_capacity()) __builtin_trap();

  // The whole stack: chunk sizes and directions come from the input itself.
  ea::l7::GrpcCallTracker tracker(ea::l7::CallSide::Server, 64);
  ea::l7::Http2Connection connection((mode & 2) != 0, tracker);
  uint64_t time = 0;
  while (!input.empty()) {
    uint8_t control = input[0];
    input = input.subspan(1);
    size_t n = std::min<size_t>(input.size(), 1 + (control & 0x3f));
    auto dir = control & 0x80 ? ea::l7::Http2Direction::ServerToClient : ea::l7::Http2Direction::ClientToServer;
    connection.feed(dir, input.first(n), ++time);
    input = input.subspan(n);
  }
  if (tracker.open_streams() > 64) __builtin_trap();
  (void)tracker.take_completed();
  return 0;
}
