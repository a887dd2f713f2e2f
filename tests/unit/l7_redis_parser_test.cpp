// The Redis parser of the L7 framework (bpf/include/l7_redis.h), compiled in user space: real
// redis-cli and redis-benchmark traffic (tests/fixtures/l7/redis_*, pipelined and with errors),
// RESP2/RESP3 replies, messages cut by the peek, hostile lengths and bytes of other protocols.
// Every parse is done twice with different bytes past len, which must not change the answer.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "l7_db_fixture.h"
#include "l7_redis.h"

using ea::test::Peek;
using ea::test::peek_at;
using ea::test::peek_of;

namespace {

using Command = ea::test::ParsedRequest;
using Reply = ea::test::ParsedResponse;

Command command_in(Peek p, uint32_t off = 0) {
  Command c = ea::test::parse_request_twice(redis_parse_request, p, off);
  EXPECT_EQ(c.method, 0);
  return c;
}

Reply reply_in(Peek p, uint32_t off = 0) {
  Reply r = ea::test::parse_response_twice(redis_parse_response, p, off);
  EXPECT_EQ(r.status, 0);
  return r;
}

Command command(const std::string& text, uint32_t off = 0) { return command_in(peek_of(text), off); }
Reply reply(const std::string& text, uint32_t off = 0) { return reply_in(peek_of(text), off); }

std::string resp_command(std::initializer_list<std::string> args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

// Each recorded message peeked from its start: named and flagged as the generator's complete
// parser found it, its length exact when it lies within the peek (and within the values walked),
// else past len and, when it runs past the peek, no more than its true length.
void check_fixture_messages(const std::string& name) {
  auto fixture = ea::test::load_db_fixture(name);
  ASSERT_FALSE(fixture.streams.empty()) << "fixture missing: run tests/fixtures/l7/make_db_fixtures.py";
  size_t checked = 0;
  for (const auto& stream : fixture.streams) {
    for (const auto& msg : stream.messages) {
      SCOPED_TRACE(name + " conn " + std::to_string(stream.conn) + (stream.request ? " request" : " reply") +
                   " at " + std::to_string(msg.offset));
      Peek p = peek_at(stream.bytes, msg.offset);
      uint32_t length;
      uint32_t walked;
      if (stream.request) {
        auto c = command_in(p);
        EXPECT_EQ(c.name, msg.name);
        EXPECT_EQ(c.counts, 1);
        length = c.length;
        walked = 1 + REDIS_MAX_ARGS;
      } else {
        auto r = reply_in(p);
        EXPECT_EQ(r.failed, msg.failed);
        EXPECT_EQ(r.completes, 1);
        length = r.length;
        walked = 1 + REDIS_MAX_VALUES;
      }
      if (msg.length <= p.len && msg.values <= walked) {
        EXPECT_EQ(length, msg.length);
      } else {
        EXPECT_GT(length, p.len);
        if (msg.length > p.len) {
          EXPECT_LE(length, msg.length);
        }
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 10u);
}

// The framework's walk over the recorded chunks: messages follow one another at the lengths the
// parser gives, a message longer than its chunk continues into the next ones, and the peek always
// starts at the message. Every recorded message must be found, in order.
void check_fixture_walk(const std::string& name) {
  auto fixture = ea::test::load_db_fixture(name);
  ASSERT_FALSE(fixture.streams.empty());
  for (const auto& stream : fixture.streams) {
    SCOPED_TRACE(name + " conn " + std::to_string(stream.conn) + (stream.request ? " request" : " reply"));
    std::vector<std::string> found;
    uint64_t skip = 0;
    for (const auto& chunk : stream.chunks) {
      if (skip >= chunk.size()) {
        skip -= chunk.size();
        continue;
      }
      size_t at = skip;
      skip = 0;
      while (at < chunk.size()) {
        Peek p = peek_at(chunk, at);
        uint32_t n;
        if (stream.request) {
          auto c = command_in(p);
          n = c.length;
          found.push_back(c.name);
        } else {
          auto r = reply_in(p);
          n = r.length;
          found.push_back(r.failed ? "failed" : "ok");
        }
        ASSERT_GT(n, 0u) << "lost the walk at " << at << " of a chunk of " << chunk.size();
        if (at + n > chunk.size()) {
          skip = at + n - chunk.size();
          break;
        }
        at += n;
      }
    }
    std::vector<std::string> expected;
    for (const auto& m : stream.messages)
      expected.push_back(stream.request ? m.name : (m.failed ? "failed" : "ok"));
    EXPECT_EQ(found, expected);
  }
}

}  // namespace

TEST(RedisParserFixture, RedisCliCommandsAndReplies) {
  check_fixture_messages("redis_cli");
  check_fixture_walk("redis_cli");
  // The generator's own record of what it sent: one command per connection, two of them failing.
  auto fixture = ea::test::load_db_fixture("redis_cli");
  std::vector<std::string> names;
  int failed = 0;
  for (const auto& s : fixture.streams)
    for (const auto& m : s.messages) {
      Peek p = peek_at(s.bytes, m.offset);
      if (s.request) names.push_back(command_in(p).name);
      else failed += reply_in(p).failed;
    }
  EXPECT_EQ(names, fixture.expected["commands"].get<std::vector<std::string>>());
  EXPECT_EQ(failed, fixture.expected["errors"].get<int>());
  EXPECT_EQ(failed, 2);
}

TEST(RedisParserFixture, RedisBenchmarkPipelined) {
  check_fixture_messages("redis_benchmark_pipelined");
  check_fixture_walk("redis_benchmark_pipelined");
  auto fixture = ea::test::load_db_fixture("redis_benchmark_pipelined");
  std::map<std::string, int> commands, failed_replies;
  for (const auto& s : fixture.streams) {
    for (size_t i = 0; i < s.messages.size(); ++i) {
      Peek p = peek_at(s.bytes, s.messages[i].offset);
      if (s.request) ++commands[command_in(p).name];
    }
  }
  // -n 48 of each test (redis-benchmark also asks CONFIG GET before each run).
  for (const char* t : {"SET", "GET", "INCR", "MSET"}) EXPECT_EQ(commands[t], 48) << t;
  EXPECT_EQ(commands["LPUSH"], 48 + 5);  // and the failing run's pipeline of 5
  EXPECT_EQ(commands["NOSUCHCOMMAND"], 5);
}

TEST(RedisParser, Commands) {
  auto c = command(resp_command({"SET", "key", "value"}));
  EXPECT_EQ(c.name, "SET");
  EXPECT_EQ(c.counts, 1);
  EXPECT_EQ(c.length, resp_command({"SET", "key", "value"}).size());
  EXPECT_EQ(command(resp_command({"get", "k"})).name, "GET");
  EXPECT_EQ(command(resp_command({"client", "setname", "x"})).name, "CLIENT");  // first word only
  EXPECT_EQ(command(resp_command({"JSON.SET", "k", "$", "1"})).name, "JSON.SET");
  EXPECT_EQ(command(resp_command({"restore-asking", "k"})).name, "RESTORE-ASKING");
  EXPECT_EQ(command(resp_command({"ZREMRANGEBYSCORE", "k", "0", "1"})).name, "ZREMRANGEBYSCOR");  // 15 kept
  EXPECT_EQ(command(resp_command({std::string("GE\0T", 4), "k"})).name, "GE");  // stops at a non-name byte
  EXPECT_EQ(command(resp_command({"", "k"})).name, "");
  EXPECT_EQ(command(resp_command({"PING"})).length, 14u);
}

TEST(RedisParser, PipelinedCommandsAtAnyOffset) {
  std::string a = resp_command({"SET", "k", "v"}), b = resp_command({"INCR", "counter"}), c = resp_command({"PING"});
  Peek p = peek_of(a + b + c);
  uint32_t off = 0;
  std::vector<std::string> names;
  while (off < p.len) {
    auto cmd = command_in(p, off);
    ASSERT_GT(cmd.length, 0u);
    names.push_back(cmd.name);
    off += cmd.length;
  }
  EXPECT_EQ(off, p.len);
  EXPECT_EQ(names, (std::vector<std::string>{"SET", "INCR", "PING"}));
}

TEST(RedisParser, CommandsCutByThePeek) {
  std::string big(3000, 'x');
  std::string cmd = resp_command({"SET", "k", big});
  auto c = command(cmd);  // the value's length prefix is peeked: the length is exact
  EXPECT_EQ(c.name, "SET");
  EXPECT_EQ(c.length, cmd.size());
  EXPECT_GT(c.length, uint32_t{L7_PEEK});
  // A value before the last argument runs past the peek: a lower bound past len.
  std::string cmd2 = resp_command({"SET", big, "v"});
  auto c2 = command(cmd2);
  EXPECT_EQ(c2.name, "SET");
  EXPECT_GT(c2.length, uint32_t{L7_PEEK});
  EXPECT_LE(c2.length, cmd2.size());
  // Cut inside the last argument's header or payload.
  std::string cmd3 = resp_command({"SET", "k", "value"});
  for (size_t cut = 11; cut < cmd3.size(); ++cut) {
    auto c3 = command(cmd3.substr(0, cut));
    EXPECT_EQ(c3.name, "SET") << cut;
    EXPECT_GT(c3.length, cut) << cut;
    EXPECT_LE(c3.length, cmd3.size()) << cut;
  }
  // Too short to tell (the name's header is not all there): not a command yet.
  for (size_t cut = 1; cut <= 8; ++cut) EXPECT_EQ(command(cmd3.substr(0, cut)).length, 0u) << cut;
  // More arguments than walked: counted, and the rest of the peek taken as its own.
  std::vector<std::string> many(40, "a");
  std::string wide = "*41\r\n$4\r\nMSET\r\n";
  for (auto& m : many) wide += "$1\r\n" + m + "\r\n";
  auto w = command(wide);
  EXPECT_EQ(w.name, "MSET");
  EXPECT_GT(w.length, static_cast<uint32_t>(wide.size()));
}

TEST(RedisParser, RejectsWhatIsNotACommand) {
  EXPECT_EQ(command("GET / HTTP/1.1\r\nHost: example\r\n\r\n").length, 0u);
  EXPECT_EQ(command("POST /x HTTP/1.1\r\n\r\n").length, 0u);
  EXPECT_EQ(command("HTTP/1.1 200 OK\r\n\r\n").length, 0u);
  EXPECT_EQ(command("PING\r\n").length, 0u);  // inline commands: plain text, not recognised
  EXPECT_EQ(command("+OK\r\n").length, 0u);
  EXPECT_EQ(command("*0\r\n").length, 0u);
  EXPECT_EQ(command("*-1\r\n").length, 0u);
  EXPECT_EQ(command("*1\r\n:5\r\n").length, 0u);          // arguments are bulk strings
  EXPECT_EQ(command("*2\r\n$3\r\nGET\r\n$-1\r\n").length, 0u);  // no null argument
  EXPECT_EQ(command("*1\r\n$3\r\nGETX\r\n").length, 0u);  // payload longer than its length
  EXPECT_EQ(command("*1\r\n$3\nGET\r\n").length, 0u);     // bare \n
  EXPECT_EQ(command("*1x\r\n$3\r\nGET\r\n").length, 0u);
  EXPECT_EQ(command("*\r\n$3\r\nGET\r\n").length, 0u);
  EXPECT_EQ(command("*1\r\n$\r\nGET\r\n").length, 0u);
  // Hostile lengths: more digits than any real length, negative, overflowing.
  EXPECT_EQ(command("*1\r\n$9999999999\r\nGET\r\n").length, 0u);
  EXPECT_EQ(command("*1\r\n$18446744073709551617\r\nGET\r\n").length, 0u);
  EXPECT_EQ(command("*99999999999\r\n$3\r\nGET\r\n").length, 0u);
  EXPECT_EQ(command("*1\r\n$-5\r\nGET\r\n").length, 0u);
  // The largest length accepted (9 digits) stays a plain lower bound, no overflow.
  auto huge = command("*2\r\n$3\r\nSET\r\n$999999999\r\nabc");
  EXPECT_EQ(huge.name, "SET");
  EXPECT_EQ(huge.length, 25u + 999999999u + 2u);
}

TEST(RedisParser, OffsetsAndLengthsOutOfRange) {
  Peek p = peek_of(resp_command({"PING"}));
  l7_request req;
  EXPECT_EQ(redis_parse_request(p.buf, p.len, p.len, &req), 0u);
  EXPECT_EQ(redis_parse_request(p.buf, p.len + 7, p.len, &req), 0u);
  EXPECT_EQ(redis_parse_request(p.buf, 0, L7_PEEK + 1, &req), 0u);
  EXPECT_EQ(redis_parse_request(p.buf, 0, 0, &req), 0u);
  l7_response resp;
  EXPECT_EQ(redis_parse_response(p.buf, 0, 0, &resp), 0u);
  EXPECT_EQ(redis_parse_response(p.buf, 3, 2, &resp), 0u);
}

TEST(RedisParser, Resp2Replies) {
  EXPECT_EQ(reply("+OK\r\n").length, 5u);
  EXPECT_EQ(reply("+OK\r\n").completes, 1);
  EXPECT_EQ(reply("+OK\r\n").failed, 0);
  auto err = reply("-ERR unknown command 'FOO', with args beginning with: \r\n");
  EXPECT_EQ(err.failed, 1);
  EXPECT_EQ(err.completes, 1);
  EXPECT_EQ(reply("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n").failed, 1);
  EXPECT_EQ(reply(":1000\r\n").length, 7u);
  EXPECT_EQ(reply(":-3\r\n").length, 5u);
  EXPECT_EQ(reply("$5\r\nhello\r\n").length, 11u);
  EXPECT_EQ(reply("$0\r\n\r\n").length, 6u);
  EXPECT_EQ(reply("$-1\r\n").length, 5u);
  EXPECT_EQ(reply("*-1\r\n").length, 5u);
  EXPECT_EQ(reply("*0\r\n").length, 4u);
  std::string nested = "*3\r\n$3\r\nfoo\r\n*2\r\n:1\r\n$-1\r\n+QUEUED\r\n";
  EXPECT_EQ(reply(nested).length, nested.size());
  // An error inside an EXEC's result does not fail the EXEC.
  std::string exec = "*2\r\n+OK\r\n-ERR value is not an integer\r\n";
  EXPECT_EQ(reply(exec).length, exec.size());
  EXPECT_EQ(reply(exec).failed, 0);
}

TEST(RedisParser, Resp3Replies) {
  for (std::string r : {"_\r\n", ",3.14\r\n", ",inf\r\n", "#t\r\n", "(3492890328409238509324850943850943825024385\r\n",
                        "=15\r\ntxt:Some string\r\n", "~2\r\n+a\r\n+b\r\n", "%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n",
                        ">3\r\n+message\r\n+channel\r\n$5\r\nhello\r\n", "|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*1\r\n:2\r\n"})
    EXPECT_EQ(reply(r).length, r.size()) << r;
  auto bulk_error = reply("!21\r\nSYNTAX invalid syntax\r\n");
  EXPECT_EQ(bulk_error.failed, 1);
  EXPECT_EQ(bulk_error.length, 28u);
}

TEST(RedisParser, PipelinedReplies) {
  std::string stream = "+OK\r\n$3\r\nbar\r\n:7\r\n-ERR no\r\n*2\r\n$1\r\na\r\n$-1\r\n_\r\n";
  Peek p = peek_of(stream);
  uint32_t off = 0;
  std::vector<int> failed;
  while (off < p.len) {
    auto r = reply_in(p, off);
    ASSERT_GT(r.length, 0u);
    failed.push_back(r.failed);
    off += r.length;
  }
  EXPECT_EQ(off, p.len);
  EXPECT_EQ(failed, (std::vector<int>{0, 0, 0, 1, 0, 0}));
}

TEST(RedisParser, RepliesCutByThePeek) {
  std::string big(2000, 'v');
  std::string bulk = "$2000\r\n" + big + "\r\n";
  EXPECT_EQ(reply(bulk).length, bulk.size());  // exact: the length prefix says it
  std::string arr = "*3\r\n$2000\r\n" + big + "\r\n:1\r\n:2\r\n";
  auto a = reply(arr);
  EXPECT_GT(a.length, uint32_t{L7_PEEK});
  EXPECT_LE(a.length, arr.size());
  std::string line = "+" + std::string(100, 'x') + "\r\n";
  for (size_t cut = 1; cut < line.size(); ++cut) {
    auto r = reply(line.substr(0, cut));
    EXPECT_GT(r.length, cut) << cut;
    EXPECT_LE(r.length, line.size()) << cut;
  }
  // A simple line longer than the scan: taken as running past the peek.
  EXPECT_GT(reply("+" + std::string(REDIS_LINE_MAX + 10, 'y') + "\r\n").length, 0u);
  // An aggregate with more elements than walked: the rest of the peek is taken as its own.
  std::string wide = "*20\r\n";
  for (int i = 0; i < 20; ++i) wide += ":1\r\n";
  EXPECT_GT(reply(wide).length, static_cast<uint32_t>(wide.size()));
}

TEST(RedisParser, RejectsWhatIsNotAReply) {
  EXPECT_EQ(reply("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").length, 0u);
  EXPECT_EQ(reply("GET / HTTP/1.1\r\n\r\n").length, 0u);
  EXPECT_EQ(reply("+OK\n").length, 0u);
  EXPECT_EQ(reply("\n").length, 0u);
  EXPECT_EQ(reply("$-2\r\n").length, 0u);
  EXPECT_EQ(reply("$3\r\nabcd\r\n").length, 0u);
  EXPECT_EQ(reply("$x\r\nabc\r\n").length, 0u);
  EXPECT_EQ(reply("$\r\n\r\n").length, 0u);
  EXPECT_EQ(reply("*1234567890\r\n").length, 0u);
  EXPECT_EQ(reply("|-1\r\n").length, 0u);
  EXPECT_EQ(reply("*2\r\n+a\r\n?x\r\n").length, 0u);
}

TEST(RedisParser, RandomBytesAreNotCommands) {
  std::mt19937 rng(20240601);
  int commands = 0, complete_replies = 0;
  const std::string types = "+-:_,#($!=*~>%|";
  for (int i = 0; i < 20000; ++i) {
    std::string s(1 + rng() % 64, '\0');
    for (auto& ch : s) ch = static_cast<char>(rng());
    if (i % 2) s[0] = "*+-:$"[rng() % 5];  // half of them start like RESP
    commands += command(s).length != 0;
    auto r = reply(s);
    // A reply whose end is not peeked yet is taken as one running past len (the connection is
    // known to speak RESP by then); one that ends within the bytes must be well formed.
    if (r.length != 0) {
      EXPECT_NE(types.find(s[0]), std::string::npos);
    }
    complete_replies += r.length != 0 && r.length <= s.size();
  }
  EXPECT_EQ(commands, 0);
  EXPECT_LT(complete_replies, 20);
}
