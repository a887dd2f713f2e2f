// The PostgreSQL parser of the L7 framework (bpf/include/l7_postgres.h), compiled in user space:
// real psql and pgbench traffic (tests/fixtures/l7/postgres_*: simple queries, errors, the
// extended protocol with and without prepared statements), the startup phase, messages cut by the
// peek, hostile lengths and bytes of other protocols. Every parse is done twice with different
// bytes past len, which must not change the answer.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "l7_db_fixture.h"
#include "l7_postgres.h"

using ea::test::Peek;
using ea::test::peek_at;
using ea::test::peek_of;

namespace {

using Request = ea::test::ParsedRequest;
using Response = ea::test::ParsedResponse;

Request request_in(Peek p, uint32_t off = 0) { return ea::test::parse_request_twice(postgres_parse_request, p, off); }
Response response_in(Peek p, uint32_t off = 0) {
  return ea::test::parse_response_twice(postgres_parse_response, p, off);
}

Request request(const std::string& bytes, uint32_t off = 0) { return request_in(peek_of(bytes), off); }
Response response(const std::string& bytes, uint32_t off = 0) { return response_in(peek_of(bytes), off); }

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

// A typed message: type byte, int32 length counting itself, body.
std::string msg(char type, const std::string& body) { return std::string(1, type) + be32(4 + body.size()) + body; }
std::string query(const std::string& sql) { return msg('Q', sql + std::string(1, '\0')); }
std::string untyped(uint32_t code, const std::string& body) { return be32(8 + body.size()) + be32(code) + body; }
std::string cstr(const std::string& s) { return s + std::string(1, '\0'); }

const std::string kSync = msg('S', "");

// Each recorded message peeked from its start: named and flagged as the generator's complete
// parser found it, its length exact (a PostgreSQL message says its length in its first 5 bytes).
void check_fixture_messages(const std::string& name) {
  auto fixture = ea::test::load_db_fixture(name);
  ASSERT_FALSE(fixture.streams.empty()) << "fixture missing: run tests/fixtures/l7/make_db_fixtures.py";
  size_t checked = 0;
  for (const auto& stream : fixture.streams) {
    for (const auto& m : stream.messages) {
      SCOPED_TRACE(name + " conn " + std::to_string(stream.conn) + (stream.request ? " request" : " response") +
                   " at " + std::to_string(m.offset));
      // The one-byte answer to SSLRequest is alone in its read: peeked alone.
      Peek p = peek_at(stream.bytes, m.offset, 0xA5, m.length == 1 ? 1 : L7_PEEK);
      if (stream.request) {
        auto r = request_in(p);
        EXPECT_EQ(r.length, m.length);
        EXPECT_EQ(r.counts, m.counts);
        if (m.counts || !m.name.empty()) {
          EXPECT_EQ(r.name, m.name);
        }
      } else {
        auto r = response_in(p);
        EXPECT_EQ(r.length, m.length);
        EXPECT_EQ(r.failed, m.failed);
        EXPECT_EQ(r.completes, m.completes);
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 10u);
}

// The framework's walk over the recorded chunks (see the Redis test): every message found, in
// order, from the parser's own lengths.
void check_fixture_walk(const std::string& name) {
  auto fixture = ea::test::load_db_fixture(name);
  ASSERT_FALSE(fixture.streams.empty());
  for (const auto& stream : fixture.streams) {
    SCOPED_TRACE(name + " conn " + std::to_string(stream.conn) + (stream.request ? " request" : " response"));
    std::vector<uint32_t> found;
    uint64_t skip = 0, base = 0;
    for (const auto& chunk : stream.chunks) {
      if (skip >= chunk.size()) {
        skip -= chunk.size();
        base += chunk.size();
        continue;
      }
      size_t at = skip;
      skip = 0;
      while (at < chunk.size()) {
        Peek p = peek_at(chunk, at);
        uint32_t n = stream.request ? request_in(p).length : response_in(p).length;
        ASSERT_GT(n, 0u) << "lost the walk at " << base + at;
        found.push_back(static_cast<uint32_t>(base + at));
        if (at + n > chunk.size()) {
          skip = at + n - chunk.size();
          break;
        }
        at += n;
      }
      base += chunk.size();
    }
    std::vector<uint32_t> expected;
    for (const auto& m : stream.messages) expected.push_back(m.offset);
    EXPECT_EQ(found, expected);
  }
}

// What the framework pairs: counted requests with their names, and the responses that complete
// them (with failed ones), per connection.
struct Pairing {
  std::vector<std::string> requests;
  int completions = 0;
  int failures = 0;
};

Pairing pairing_of(const std::string& name) {
  auto fixture = ea::test::load_db_fixture(name);
  Pairing out;
  for (const auto& s : fixture.streams)
    for (const auto& m : s.messages) {
      Peek p = peek_at(s.bytes, m.offset, 0xA5, m.length == 1 ? 1 : L7_PEEK);
      if (s.request) {
        auto r = request_in(p);
        if (r.counts) out.requests.push_back(r.name);
      } else {
        auto r = response_in(p);
        out.completions += r.completes;
        out.failures += r.failed;
      }
    }
  return out;
}

}  // namespace

TEST(PostgresParserFixture, PsqlSimpleQueries) {
  check_fixture_messages("postgres_psql");
  check_fixture_walk("postgres_psql");
  auto fixture = ea::test::load_db_fixture("postgres_psql");
  auto pairing = pairing_of("postgres_psql");
  // Every -c is one Query named by its first keyword, comments and case notwithstanding.
  EXPECT_EQ(pairing.requests, fixture.expected["queries"].get<std::vector<std::string>>());
  EXPECT_EQ(pairing.requests, (std::vector<std::string>{"SELECT", "CREATE", "INSERT", "SELECT", "UPDATE", "DELETE",
                                                        "SELECT", "INSERT", "BEGIN", "SELECT"}));
  EXPECT_EQ(pairing.completions, 10 + 1);  // one ReadyForQuery each, and the startup's
  EXPECT_EQ(pairing.failures, 2);
}

TEST(PostgresParserFixture, PgbenchExtendedProtocol) {
  check_fixture_messages("postgres_pgbench_extended");
  check_fixture_walk("postgres_pgbench_extended");
  auto pairing = pairing_of("postgres_pgbench_extended");
  // 3 transactions of 7 statements, each Parse/Bind/Describe/Execute/Sync: 21 Syncs, 21
  // ReadyForQuery; pgbench's own two queries on its first connection; two startups.
  int syncs = 0;
  for (const auto& r : pairing.requests) syncs += r.empty();
  EXPECT_EQ(syncs, 21);
  EXPECT_EQ(pairing.requests.size(), 21u + 2u);
  EXPECT_EQ(pairing.completions, 21 + 2 + 2);
  EXPECT_EQ(pairing.failures, 0);
}

TEST(PostgresParserFixture, PgbenchPreparedStatements) {
  check_fixture_messages("postgres_pgbench_prepared");
  check_fixture_walk("postgres_pgbench_prepared");
  auto pairing = pairing_of("postgres_pgbench_prepared");
  EXPECT_EQ(pairing.completions, static_cast<int>(pairing.requests.size()) + 2);  // and two startups
  EXPECT_EQ(pairing.failures, 0);
}

TEST(PostgresParser, StartupPhase) {
  auto ssl = request(untyped(80877103, ""));
  EXPECT_EQ(ssl.length, 8u);
  EXPECT_EQ(ssl.counts, 0);
  EXPECT_EQ(request(untyped(80877104, "")).length, 8u);  // GSSENCRequest
  EXPECT_EQ(request(untyped(80877102, be32(1234) + be32(5678))).length, 16u);  // CancelRequest
  std::string startup = untyped(196608, cstr("user") + cstr("postgres") + cstr("database") + cstr("db") + cstr(""));
  auto s = request(startup);
  EXPECT_EQ(s.length, startup.size());
  EXPECT_EQ(s.counts, 0);
  EXPECT_EQ(s.name, "");
  EXPECT_EQ(request(untyped(196610, cstr("user") + cstr("u") + cstr(""))).counts, 0);  // 3.2
  // Not the protocol: other versions, codes, lengths.
  EXPECT_EQ(request(untyped(131072, cstr("user") + cstr("u") + cstr(""))).length, 0u);  // 2.0
  EXPECT_EQ(request(untyped(196611, cstr("user") + cstr("u") + cstr(""))).length, 0u);
  EXPECT_EQ(request(untyped(80877105, "")).length, 0u);
  EXPECT_EQ(request(be32(12) + be32(80877103) + be32(0)).length, 0u);  // SSLRequest is 8 bytes
  EXPECT_EQ(request(be32(7) + be32(196608)).length, 0u);
  EXPECT_EQ(request(be32(20000) + be32(196608) + cstr("user")).length, 0u);  // over the server's limit
  EXPECT_EQ(request(untyped(196608, "user")).length, 0u);                   // parameters not terminated
  EXPECT_EQ(request(be32(8)).length, 0u);                                    // too short to tell
  // The server's one-byte answers, alone in their read.
  for (char c : {'N', 'S', 'G'}) {
    auto r = response(std::string(1, c));
    EXPECT_EQ(r.length, 1u) << c;
    EXPECT_EQ(r.completes, 0);
  }
  EXPECT_EQ(response("X").length, 0u);
  // Authentication, parameters, key data and the first ReadyForQuery are all walked.
  std::string hello = msg('R', be32(0)) + msg('S', cstr("server_version") + cstr("15.1")) +
                      msg('K', be32(42) + be32(7)) + msg('Z', "I");
  Peek p = peek_of(hello);
  uint32_t off = 0;
  int completes = 0;
  while (off < p.len) {
    auto r = response_in(p, off);
    ASSERT_GT(r.length, 0u) << off;
    completes += r.completes;
    off += r.length;
  }
  EXPECT_EQ(off, p.len);
  EXPECT_EQ(completes, 1);
}

TEST(PostgresParser, SimpleQueryNames) {
  EXPECT_EQ(request(query("SELECT 1")).name, "SELECT");
  EXPECT_EQ(request(query("select 1")).name, "SELECT");
  EXPECT_EQ(request(query(" \t\r\n insert into t values (1)")).name, "INSERT");
  EXPECT_EQ(request(query("-- why\nUPDATE t SET a = 1")).name, "UPDATE");
  EXPECT_EQ(request(query("/* app=shop */ DELETE FROM t")).name, "DELETE");
  EXPECT_EQ(request(query("/* a */ -- b\n /** c **/ WITH x AS (SELECT 1) SELECT * FROM x")).name, "WITH");
  EXPECT_EQ(request(query("BEGIN; SELECT 1; COMMIT")).name, "BEGIN");
  EXPECT_EQ(request(query("REFRESHMATERIALIZEDVIEWS")).name, "REFRESHMATERIAL");  // 15 kept
  EXPECT_EQ(request(query("(SELECT 1) UNION (SELECT 2)")).name, "_OTHER");
  EXPECT_EQ(request(query("")).name, "_OTHER");
  EXPECT_EQ(request(query("- 1")).name, "_OTHER");
  EXPECT_EQ(request(query("/* never closed SELECT")).name, "_OTHER");
  EXPECT_EQ(request(query(std::string(100, ' ') + "SELECT 1")).name, "_OTHER");  // past the skip limit
  auto q = request(query("SELECT 1"));
  EXPECT_EQ(q.counts, 1);
  EXPECT_EQ(q.length, 1u + 4u + 9u);
}

TEST(PostgresParser, ExtendedProtocol) {
  std::string parse = msg('P', cstr("") + cstr("select * from t where id = $1") + std::string("\0\1", 2) + be32(23));
  std::string bind = msg('B', cstr("") + cstr("") + std::string("\0\0\0\1", 4) + be32(1) + "7" + std::string("\0\0", 2));
  std::string describe = msg('D', "P" + cstr(""));
  std::string execute = msg('E', cstr("") + be32(0));
  std::string batch = parse + bind + describe + execute + kSync;
  Peek p = peek_of(batch);
  uint32_t off = 0;
  std::vector<std::pair<std::string, int>> seen;
  while (off < p.len) {
    auto r = request_in(p, off);
    ASSERT_GT(r.length, 0u) << off;
    seen.emplace_back(r.name, r.counts);
    off += r.length;
  }
  EXPECT_EQ(off, p.len);
  // The Parse names the batch (counts 0), the Sync is the request (counts 1, no name of its own).
  EXPECT_EQ(seen, (std::vector<std::pair<std::string, int>>{{"SELECT", 0}, {"", 0}, {"", 0}, {"", 0}, {"", 1}}));
  EXPECT_EQ(request(msg('P', cstr("stmt_7") + cstr("  update t set a=1") + std::string("\0\0", 2))).name, "UPDATE");
  // A statement name longer than searched: recognised, unnamed.
  auto long_name = request(msg('P', cstr(std::string(80, 's')) + cstr("select 1") + std::string("\0\0", 2)));
  EXPECT_GT(long_name.length, 0u);
  EXPECT_EQ(long_name.name, "");
  for (char t : {'H', 'X', 'c'}) EXPECT_EQ(request(msg(t, "")).length, 5u) << t;
  for (char t : {'C', 'F', 'd', 'f', 'p'}) EXPECT_EQ(request(msg(t, "abc")).counts, 0) << t;
  EXPECT_EQ(request(msg('S', "x")).length, 0u);  // Sync, Flush, Terminate have no body
  EXPECT_EQ(request(msg('H', "x")).length, 0u);
}

TEST(PostgresParser, Responses) {
  auto ready = response(msg('Z', "I"));
  EXPECT_EQ(ready.length, 6u);
  EXPECT_EQ(ready.completes, 1);
  EXPECT_EQ(ready.failed, 0);
  EXPECT_EQ(response(msg('Z', "T")).completes, 1);
  EXPECT_EQ(response(msg('Z', "E")).completes, 1);
  EXPECT_EQ(response(msg('Z', "X")).length, 0u);
  EXPECT_EQ(response(msg('Z', "II")).length, 0u);
  auto error = response(msg('E', "SERROR" + cstr("") + "C42P01" + cstr("") + "Mrelation does not exist" + cstr("") + cstr("")));
  EXPECT_EQ(error.failed, 1);
  EXPECT_EQ(error.completes, 0);
  EXPECT_EQ(response(msg('E', "SERROR")).length, 0u);  // fields end with a NUL
  EXPECT_EQ(response(msg('N', "SNOTICE" + cstr("") + cstr(""))).failed, 0);
  for (char t : {'1', '2', '3', 'I', 'n', 's', 'c'}) EXPECT_EQ(response(msg(t, "")).length, 5u) << t;
  EXPECT_EQ(response(msg('1', "x")).length, 0u);
  EXPECT_EQ(response(msg('C', cstr("SELECT 1"))).completes, 0);
  EXPECT_EQ(response(msg('T', std::string("\0\0", 2))).length, 7u);
  EXPECT_EQ(response(msg('K', be32(1))).length, 0u);  // too short for a pid and a key
  EXPECT_EQ(response(msg('R', "")).length, 0u);
  EXPECT_EQ(response(msg('Q', cstr("x"))).length, 0u);  // a frontend type
}

TEST(PostgresParser, MessagesCutByThePeek) {
  std::string row = msg('D', std::string("\0\1", 2) + be32(2000) + std::string(2000, 'x'));
  auto r = response(row + msg('C', cstr("SELECT 1")) + msg('Z', "I"));
  EXPECT_EQ(r.length, row.size());  // exact: the length says it
  EXPECT_GT(r.length, uint32_t{L7_PEEK});
  std::string long_query = query("SELECT '" + std::string(1000, 'y') + "'");
  auto q = request(long_query);
  EXPECT_EQ(q.length, long_query.size());
  EXPECT_EQ(q.name, "SELECT");
  // Fewer than 5 bytes: too short to tell.
  for (size_t cut = 1; cut < 5; ++cut) EXPECT_EQ(request(query("SELECT 1").substr(0, cut)).length, 0u) << cut;
  for (size_t cut = 2; cut < 5; ++cut) EXPECT_EQ(response(msg('Z', "I").substr(0, cut)).length, 0u) << cut;
  // Cut after the length: recognised, named from what was peeked.
  auto cut = request(query("SELECT * FROM t").substr(0, 9));
  EXPECT_EQ(cut.length, query("SELECT * FROM t").size());
  EXPECT_EQ(cut.name, "SELE");
}

TEST(PostgresParser, HostileLengths) {
  EXPECT_EQ(request("Q" + be32(3) + "x").length, 0u);
  EXPECT_EQ(request("Q" + be32(0) + "x").length, 0u);
  EXPECT_EQ(request("Q" + be32(0x80000000u) + "SELECT").length, 0u);  // negative
  EXPECT_EQ(request("Q" + be32(0xFFFFFFFFu) + "SELECT").length, 0u);
  EXPECT_EQ(request("Q" + be32((1u << 30) + 1) + "SELECT").length, 0u);  // over 1 GiB
  EXPECT_EQ(request("Q" + be32(1u << 30) + "SELECT").length, (1u << 30) + 1);
  EXPECT_EQ(request("Q" + be32(9) + "SELECT").length, 0u);  // ends within the peek without its NUL
  EXPECT_EQ(response("D" + be32(0x7FFFFFFFu)).length, 0u);
  EXPECT_EQ(response("E" + be32(2)).length, 0u);
  EXPECT_EQ(request(be32(0xFFFFFFFFu) + be32(196608)).length, 0u);
  l7_request req;
  Peek p = peek_of(query("SELECT 1"));
  EXPECT_EQ(postgres_parse_request(p.buf, p.len, p.len, &req), 0u);
  EXPECT_EQ(postgres_parse_request(p.buf, 0, L7_PEEK + 1, &req), 0u);
}

TEST(PostgresParser, OtherProtocolsAreNotPostgres) {
  for (std::string text : {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "POST /api HTTP/1.1\r\n\r\n", "PUT /x HTTP/1.1\r\n\r\n",
                           "PATCH /x HTTP/1.1\r\n\r\n", "DELETE /x HTTP/1.1\r\n\r\n", "HEAD / HTTP/1.1\r\n\r\n",
                           "CONNECT host:443 HTTP/1.1\r\n\r\n", "OPTIONS * HTTP/1.1\r\n\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                           "*1\r\n$4\r\nPING\r\n", "+OK\r\n", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"}) {
    EXPECT_EQ(request(text).length, 0u) << text;
  }
  for (std::string text : {"HTTP/1.1 200 OK\r\n\r\n", "+OK\r\n", "-ERR x\r\n", "$3\r\nabc\r\n", "\x16\x03\x03\x00\x7a\x02"})
    EXPECT_EQ(response(text).length, 0u) << text;
}

TEST(PostgresParser, RandomBytes) {
  std::mt19937 rng(7);
  int requests = 0, counted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s(1 + rng() % 64, '\0');
    for (auto& ch : s) ch = static_cast<char>(rng());
    auto r = request(s);
    requests += r.length != 0;
    if (r.counts) {
      ++counted;
      EXPECT_TRUE(s[0] == 'Q' || s[0] == 'S');
    }
    response(s);  // must not misbehave either (both passes agree)
  }
  // A typed message needs a frontend type (13 of 256), a length below 1 GiB (about 1 in 4) and,
  // when its end is peeked, the right last byte. A Query running past the peek cannot be told
  // from random bytes: about 20000 / 256 / 4 = 20 of them are expected. (A connection is
  // classified from its startup message, which is strict, unless it was already open.)
  EXPECT_LT(requests, 400);
  EXPECT_LT(counted, 40);
}
