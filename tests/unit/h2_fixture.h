// Reads tests/fixtures/h2/grpc_calls.bin (made by make_grpc_fixture.py): real grpcio h2c bytes of
// one connection, as chunks of 1 byte direction (0 = client to server), 4 bytes big-endian length,
// bytes. Calls in order: pkg.Echo/Say (OK), Stream (3 responses, OK), Fail (NOT_FOUND), Collect.
#pragma once
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "l7/http2_connection.h"

namespace ea::l7::test {

struct H2FixtureChunk {
  Http2Direction dir;
  std::vector<uint8_t> bytes;
};

inline std::vector<H2FixtureChunk> load_h2_fixture() {
  std::ifstream in(std::string(EA_SOURCE_DIR) + "/tests/fixtures/h2/grpc_calls.bin", std::ios::binary);
  std::vector<uint8_t> all((std::istreambuf_iterator<char>(in)), {});
  std::vector<H2FixtureChunk> chunks;
  for (size_t pos = 0; pos + 5 <= all.size();) {
    size_t len = (size_t{all[pos + 1]} << 24) | (size_t{all[pos + 2]} << 16) | (size_t{all[pos + 3]} << 8) | all[pos + 4];
    if (pos + 5 + len > all.size()) break;
    chunks.push_back({all[pos] ? Http2Direction::ServerToClient : Http2Direction::ClientToServer,
                      std::vector<uint8_t>(all.begin() + pos + 5, all.begin() + pos + 5 + len)});
    pos += 5 + len;
  }
  return chunks;
}

// Chunks tests cut at (each test checks the chunk is what it expects).
inline constexpr size_t kSayResponseChunk = 5;    // S>C: HEADERS, DATA, trailers of stream 1
inline constexpr size_t kStreamRequestChunk = 8;  // C>S: HEADERS + DATA of stream 3
inline constexpr size_t kFirstRequestChunk = 2;   // C>S: SETTINGS ack, HEADERS of stream 1, ...

}  // namespace ea::l7::test
