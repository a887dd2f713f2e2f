// libFuzzer target for the kernel-side Redis and PostgreSQL parsers (bpf/include/l7_redis.h,
// l7_postgres.h) built in user space: any peeked bytes, any offset, must never read outside the
// peek buffer, let bytes past len change an answer, return a message that ends before it starts,
// or name an operation with anything but its allowed characters. Not part of the default build;
// plain C underneath, so clang 14 is enough. From the repository root:
//
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
//     -Ibpf/include -Itests/unit tests/fuzz/l7_db_parsers_fuzz.cpp -o /tmp/l7_db_fuzz
//   mkdir -p /tmp/l7_db_corpus && cp tests/fixtures/l7/*.bin /tmp/l7_db_corpus/ &&
//     /tmp/l7_db_fuzz -max_len=600 -timeout=10 /tmp/l7_db_corpus
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "l7_parser_shim.h"
#include "l7_postgres.h"
#include "l7_redis.h"

namespace {

struct Answer {
  uint32_t length;
  l7_request req;
  l7_response resp;
};

// The peek lives in a heap block of exactly L7_PEEK bytes, so ASan catches any read past it.
template <class Parse>
Answer parse_with_poison(const uint8_t* data, uint32_t len, uint32_t off, uint8_t poison, Parse parse) {
  std::unique_ptr<uint8_t[]> buf(new uint8_t[L7_PEEK]);
  std::memset(buf.get(), poison, L7_PEEK);
  std::memcpy(buf.get(), data, len);
  Answer a;
  std::memset(&a, poison, sizeof(a));
  a.length = parse(buf.get(), off, len, &a.req, &a.resp);
  return a;
}

void check_name(const char* name, bool redis) {
  size_t n = strnlen(name, L7_ROUTE_LEN);
  if (n >= L7_OPERATION_LEN) __builtin_trap();
  for (size_t i = 0; i < n; ++i) {
    char c = name[i];
    bool ok = (c >= 'A' && c <= 'Z') || (redis && ((c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) ||
              (!redis && c == '_');
    if (!ok) __builtin_trap();
  }
  for (size_t i = n; i < L7_ROUTE_LEN; ++i)
    if (name[i] != 0) __builtin_trap();  // NUL-padded
}

template <class Parse>
void check(const uint8_t* data, uint32_t len, uint32_t off, bool request, bool redis, Parse parse) {
  Answer a = parse_with_poison(data, len, off, 0x00, parse);
  Answer b = parse_with_poison(data, len, off, 0xFF, parse);
  if (a.length != b.length) __builtin_trap();
  if (request) {
    if (std::memcmp(a.req.name, b.req.name, L7_ROUTE_LEN) != 0 || a.req.counts != b.req.counts) __builtin_trap();
    if (a.length) check_name(a.req.name, redis);
    if (a.req.counts > 1 || a.req.method != 0) __builtin_trap();
  } else {
    if (a.resp.failed != b.resp.failed || a.resp.completes != b.resp.completes) __builtin_trap();
    if (a.resp.failed > 1 || a.resp.completes > 1 || a.resp.status != 0) __builtin_trap();
  }
  if (off >= len && a.length != 0) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint32_t off = data[0];  // where the message starts in the peek (past len half of the time)
  data += 1;
  uint32_t len = static_cast<uint32_t>(size - 1 > L7_PEEK ? L7_PEEK : size - 1);
  auto redis_req = [](const __u8* b, __u32 o, __u32 l, l7_request* q, l7_response*) { return redis_parse_request(b, o, l, q); };
  auto redis_resp = [](const __u8* b, __u32 o, __u32 l, l7_request*, l7_response* r) { return redis_parse_response(b, o, l, r); };
  auto pg_req = [](const __u8* b, __u32 o, __u32 l, l7_request* q, l7_response*) { return postgres_parse_request(b, o, l, q); };
  auto pg_resp = [](const __u8* b, __u32 o, __u32 l, l7_request*, l7_response* r) { return postgres_parse_response(b, o, l, r); };
  check(data, len, off, true, true, redis_req);
  check(data, len, off, false, true, redis_resp);
  check(data, len, off, true, false, pg_req);
  check(data, len, off, false, false, pg_resp);
  // And from the start, where the framework's first call looks.
  check(data, len, 0, true, true, redis_req);
  check(data, len, 0, false, true, redis_resp);
  check(data, len, 0, true, false, pg_req);
  check(data, len, 0, false, false, pg_resp);
  return 0;
}
