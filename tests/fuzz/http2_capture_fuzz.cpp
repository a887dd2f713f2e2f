// libFuzzer target for the capture side of HTTP/2 (what the http2 processor drives): chunks of
// any bytes for a few connections, either direction, with or without a role, from-start marks,
// gaps and closes, must never crash, hang or grow past the table's bounds. From the repository
// root (clang 14 is enough: this layer needs no std::expected):
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
//     -Isrc tests/fuzz/http2_capture_fuzz.cpp src/l7/hpack_*.cpp src/l7/http2_*.cpp \
//     src/l7/grpc_calls.cpp -o /tmp/http2_capture_fuzz
//   mkdir -p /tmp/http2_capture_corpus && /tmp/http2_capture_fuzz -max_len=65536 -timeout=10 \
//     -rss_limit_mb=2048 /tmp/http2_capture_corpus
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "l7/http2_connection_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ea::l7;
  std::span<const uint8_t> input(data, size);
  Http2ConnectionTable table({.max_connections = 3, .idle_timeout_ns = 1000, .max_pending_bytes = 512});
  std::vector<CompletedCall> calls;
  uint64_t time = 0;
  // Per chunk: a control byte (connection, direction, role, flags), a length byte, the bytes.
  while (input.size() >= 2) {
    uint8_t control = input[0];
    size_t n = std::min<size_t>(input.size() - 2, input[1]);
    CaptureChunk chunk;
    chunk.key = {1, static_cast<uint32_t>(control & 0x3), (control & 0x4) != 0, 0};
    chunk.time_ns = time += (control & 0x80) ? 300 : 1;
    chunk.egress = (control & 0x8) != 0;
    if (control & 0x10) chunk.side = (control & 0x20) ? CallSide::Client : CallSide::Server;
    chunk.from_start = (control & 0x40) != 0;
    chunk.gap_after = (control & 0x60) == 0x60;
    chunk.closed = (control & 0xc0) == 0xc0;
    chunk.data = input.subspan(2, n);
    table.feed(chunk, calls);
    input = input.subspan(2 + n);
    if (table.size() > 3 || table.counters().connections != table.size()) __builtin_trap();
  }
  return 0;
}
