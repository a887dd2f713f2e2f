// Recorded Redis / PostgreSQL traffic for the parser tests (tests/fixtures/l7/<name>.bin and
// <name>.json, made by make_db_fixtures.py): each connection's byte stream per direction, and the
// messages in it as the generator's complete parsers found them.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "l7_parser_shim.h"

namespace ea::test {

struct FixtureMessage {
  uint32_t offset = 0;
  uint32_t length = 0;
  uint32_t values = 0;   // Redis: RESP values in the message (a command: 1 + its arguments)
  std::string name;      // requests: what the parser must name it
  int counts = 0;        // requests
  int failed = 0;        // responses
  int completes = 0;     // responses
};

struct FixtureStream {
  uint32_t conn = 0;
  bool request = true;
  std::vector<uint8_t> bytes;
  std::vector<std::vector<uint8_t>> chunks;  // as the proxy relayed them
  std::vector<FixtureMessage> messages;
};

struct Fixture {
  std::string protocol;
  std::vector<FixtureStream> streams;
  nlohmann::json expected;
};

inline Fixture load_db_fixture(const std::string& name) {
  const std::string base = std::string(EA_SOURCE_DIR) + "/tests/fixtures/l7/" + name;
  Fixture fixture;
  std::ifstream json_in(base + ".json");
  if (!json_in) return fixture;
  nlohmann::json manifest = nlohmann::json::parse(json_in);
  fixture.protocol = manifest["protocol"];
  fixture.expected = manifest["expected"];
  std::map<std::pair<uint32_t, bool>, size_t> index;
  for (const auto& s : manifest["streams"]) {
    FixtureStream stream;
    stream.conn = s["conn"];
    stream.request = s["direction"] == "request";
    for (const auto& m : s["messages"]) {
      FixtureMessage msg;
      msg.offset = m["offset"];
      msg.length = m["length"];
      msg.values = m.value("values", 0u);
      msg.name = m.value("name", "");
      msg.counts = m.value("counts", 0);
      msg.failed = m.value("failed", 0);
      msg.completes = m.value("completes", 0);
      stream.messages.push_back(msg);
    }
    index[{stream.conn, stream.request}] = fixture.streams.size();
    fixture.streams.push_back(std::move(stream));
  }
  std::ifstream bin_in(base + ".bin", std::ios::binary);
  std::vector<uint8_t> all((std::istreambuf_iterator<char>(bin_in)), {});
  for (size_t pos = 0; pos + 9 <= all.size();) {
    bool request = all[pos] == 0;
    uint32_t conn = (uint32_t{all[pos + 1]} << 24) | (uint32_t{all[pos + 2]} << 16) | (uint32_t{all[pos + 3]} << 8) | all[pos + 4];
    uint32_t len = (uint32_t{all[pos + 5]} << 24) | (uint32_t{all[pos + 6]} << 16) | (uint32_t{all[pos + 7]} << 8) | all[pos + 8];
    if (pos + 9 + len > all.size()) break;
    auto it = index.find({conn, request});
    if (it != index.end()) {
      auto& stream = fixture.streams[it->second];
      stream.chunks.emplace_back(all.begin() + pos + 9, all.begin() + pos + 9 + len);
      stream.bytes.insert(stream.bytes.end(), all.begin() + pos + 9, all.begin() + pos + 9 + len);
    }
    pos += 9 + len;
  }
  return fixture;
}

// A peek as the framework makes it: up to L7_PEEK bytes of `bytes` from `from`, the rest of the
// buffer filled with `poison` (a parser must never let bytes past len change its answer).
struct Peek {
  uint8_t buf[L7_PEEK];
  uint32_t len = 0;
};

inline Peek peek_at(const std::vector<uint8_t>& bytes, size_t from, uint8_t poison = 0xA5, size_t limit = L7_PEEK) {
  Peek p;
  std::memset(p.buf, poison, sizeof(p.buf));
  size_t n = from < bytes.size() ? std::min(bytes.size() - from, std::min<size_t>(limit, L7_PEEK)) : 0;
  if (n) std::memcpy(p.buf, bytes.data() + from, n);
  p.len = static_cast<uint32_t>(n);
  return p;
}

inline Peek peek_of(const std::string& text, uint8_t poison = 0xA5) {
  return peek_at(std::vector<uint8_t>(text.begin(), text.end()), 0, poison);
}

// What a parser made of a message, parsed twice: with 0xFF and with 0x00 past len, from a
// poisoned struct (it must clear what it does not set). The two answers must agree.
struct ParsedRequest {
  uint32_t length = 0;
  std::string name;
  int counts = 0;
  int method = 0;
};

struct ParsedResponse {
  uint32_t length = 0;
  int failed = 0;
  int completes = 0;
  int status = 0;
};

template <typename Parse>
ParsedRequest parse_request_twice(Parse parse, Peek p, uint32_t off) {
  ParsedRequest out[2];
  for (int pass = 0; pass < 2; ++pass) {
    for (uint32_t i = p.len; i < L7_PEEK; ++i) p.buf[i] = pass ? 0x00 : 0xFF;
    l7_request req;
    std::memset(&req, 0x5A, sizeof(req));
    out[pass].length = parse(p.buf, off, p.len, &req);
    out[pass].name.assign(req.name, strnlen(req.name, sizeof(req.name)));
    out[pass].counts = req.counts;
    out[pass].method = req.method;
  }
  EXPECT_EQ(out[0].length, out[1].length) << "bytes past len changed the result";
  EXPECT_EQ(out[0].name, out[1].name);
  return out[0];
}

template <typename Parse>
ParsedResponse parse_response_twice(Parse parse, Peek p, uint32_t off) {
  ParsedResponse out[2];
  for (int pass = 0; pass < 2; ++pass) {
    for (uint32_t i = p.len; i < L7_PEEK; ++i) p.buf[i] = pass ? 0x00 : 0xFF;
    l7_response resp;
    std::memset(&resp, 0x5A, sizeof(resp));
    out[pass].length = parse(p.buf, off, p.len, &resp);
    out[pass].failed = resp.failed;
    out[pass].completes = resp.completes;
    out[pass].status = resp.status;
  }
  EXPECT_EQ(out[0].length, out[1].length) << "bytes past len changed the result";
  return out[0];
}

}  // namespace ea::test
