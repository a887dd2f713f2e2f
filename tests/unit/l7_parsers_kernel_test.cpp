// The Redis and PostgreSQL parsers in the kernel (root): the fixture tests/fixtures/bpf/
// l7_db_parsers.bpf.c calls them over pipelined messages, both inlined into a loop and wrapped in
// global functions; the verifier must accept every program, and what it cost the verifier is
// reported (and bounded, so that a change that would crowd the framework's programs shows here).
// Then BPF_PROG_TEST_RUN runs the parsers on recorded traffic, hand-made and random bytes, and the
// kernel's answers must be the user-space build's, message by message.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <random>
#include <string>

#include "l7_db_fixture.h"
#include "l7_postgres.h"
#include "l7_redis.h"
#include "../fixtures/bpf/l7_parser_run.h"

namespace {

#define REQUIRE_ROOT() \
  if (geteuid() != 0) GTEST_SKIP() << "needs root: loads BPF programs into the kernel"

struct ObjectCloser {
  void operator()(bpf_object* o) const { bpf_object__close(o); }
};

class L7ParsersKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_ROOT();
    object_.reset(bpf_object__open_file(EA_BUILD_DIR "/tests/bpf/l7_db_parsers.bpf.o", nullptr));
    ASSERT_TRUE(object_) << "open l7_db_parsers.bpf.o: " << strerror(errno);
    ASSERT_EQ(bpf_object__load(object_.get()), 0) << "the verifier rejected a parser (its log is above)";
    input_fd_ = bpf_map__fd(bpf_object__find_map_by_name(object_.get(), "input"));
    results_fd_ = bpf_map__fd(bpf_object__find_map_by_name(object_.get(), "results"));
    ASSERT_GE(input_fd_, 0);
    ASSERT_GE(results_fd_, 0);
  }

  int prog_fd(const char* name) {
    bpf_program* prog = bpf_object__find_program_by_name(object_.get(), name);
    return prog ? bpf_program__fd(prog) : -1;
  }

  // Runs program `name` on the peek and returns its per-message results.
  l7_parser_results run(const char* name, const ea::test::Peek& p, uint32_t off = 0) {
    l7_parser_input in{};
    in.len = p.len;
    in.off = off;
    std::memcpy(in.data, p.buf, L7_PEEK);
    uint32_t zero = 0;
    EXPECT_EQ(bpf_map_update_elem(input_fd_, &zero, &in, BPF_ANY), 0);
    l7_parser_results cleared{};  // what a program does not write must not linger from the last run
    EXPECT_EQ(bpf_map_update_elem(results_fd_, &zero, &cleared, BPF_ANY), 0);
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    EXPECT_EQ(bpf_prog_test_run_opts(prog_fd(name), &opts), 0) << name << ": " << strerror(errno);
    EXPECT_EQ(opts.retval, 0u) << name;
    l7_parser_results res{};
    EXPECT_EQ(bpf_map_lookup_elem(results_fd_, &zero, &res), 0);
    return res;
  }

  std::unique_ptr<bpf_object, ObjectCloser> object_;
  int input_fd_ = -1;
  int results_fd_ = -1;
};

// The same walk as the fixture's programs, over the user-space build of the parsers.
template <class Parse>
l7_parser_results walk_in_user_space(const ea::test::Peek& p, uint32_t off, bool request, Parse parse) {
  l7_parser_results res{};
  for (int m = 0; m < L7_RUN_MAX_MESSAGES && off < p.len; ++m) {
    l7_request req{};
    l7_response resp{};
    uint32_t length = parse(p.buf, off, p.len, &req, &resp);
    auto& out = res.out[m];
    out.length = length;
    if (request) {
      out.counts = req.counts;
      std::memcpy(out.name, req.name, L7_OPERATION_LEN);
    } else {
      out.failed = resp.failed;
      out.completes = resp.completes;
    }
    res.messages = m + 1;
    if (length == 0) break;
    off += length;
  }
  return res;
}

l7_parser_results redis_in_user_space(const ea::test::Peek& p, bool request) {
  return walk_in_user_space(p, 0, request, [request](const __u8* b, __u32 o, __u32 l, l7_request* q, l7_response* r) {
    return request ? redis_parse_request(b, o, l, q) : redis_parse_response(b, o, l, r);
  });
}

l7_parser_results postgres_in_user_space(const ea::test::Peek& p, bool request) {
  return walk_in_user_space(p, 0, request, [request](const __u8* b, __u32 o, __u32 l, l7_request* q, l7_response* r) {
    return request ? postgres_parse_request(b, o, l, q) : postgres_parse_response(b, o, l, r);
  });
}

void expect_same(const l7_parser_results& kernel, const l7_parser_results& user, const std::string& what) {
  ASSERT_EQ(kernel.messages, user.messages) << what;
  for (uint32_t m = 0; m < user.messages; ++m) {
    SCOPED_TRACE(what + " message " + std::to_string(m));
    EXPECT_EQ(kernel.out[m].length, user.out[m].length);
    EXPECT_EQ(kernel.out[m].counts, user.out[m].counts);
    EXPECT_EQ(kernel.out[m].failed, user.out[m].failed);
    EXPECT_EQ(kernel.out[m].completes, user.out[m].completes);
    EXPECT_EQ(std::string(kernel.out[m].name, strnlen(kernel.out[m].name, L7_OPERATION_LEN)),
              std::string(user.out[m].name, strnlen(user.out[m].name, L7_OPERATION_LEN)));
  }
}

}  // namespace

TEST_F(L7ParsersKernel, VerifierAcceptsEveryProgram) {
  // Program -> most verified instructions tolerated. The global-function runners walk 16
  // messages at the cost of one parse; the inlined ones pay for each of their
  // L7_INLINE_MESSAGES calls. Measured on 6.18 (clang 14): 31k, 57k, 23k, 1k; 155k, 241k, 130k, 3k.
  const std::pair<const char*, uint32_t> budgets[] = {
      {"redis_requests", 100000},          {"redis_responses", 150000},
      {"postgres_requests", 100000},       {"postgres_responses", 20000},
      {"inline_redis_requests", 400000},   {"inline_redis_responses", 500000},
      {"inline_postgres_requests", 400000}, {"inline_postgres_responses", 50000},
  };
  for (const auto& [name, budget] : budgets) {
    int fd = prog_fd(name);
    ASSERT_GE(fd, 0) << name;
    bpf_prog_info info{};
    uint32_t info_len = sizeof(info);
    ASSERT_EQ(bpf_obj_get_info_by_fd(fd, &info, &info_len), 0);
    std::printf("verifier: %-26s %7u instructions processed, %5u instructions\n", name, info.verified_insns,
                info.xlated_prog_len / 8);
    RecordProperty(std::string("verified_insns_") + name, std::to_string(info.verified_insns));
    EXPECT_LE(info.verified_insns, budget) << name;
  }
}

TEST_F(L7ParsersKernel, KernelAgreesWithUserSpaceOnRecordedTraffic) {
  size_t windows = 0;
  for (const char* name : {"redis_cli", "redis_benchmark_pipelined", "postgres_psql", "postgres_pgbench_extended",
                           "postgres_pgbench_prepared"}) {
    auto fixture = ea::test::load_db_fixture(name);
    ASSERT_FALSE(fixture.streams.empty()) << name;
    bool redis = fixture.protocol == "redis";
    for (const auto& stream : fixture.streams) {
      for (const auto& msg : stream.messages) {
        auto p = ea::test::peek_at(stream.bytes, msg.offset, 0);
        const char* prog = redis ? (stream.request ? "redis_requests" : "redis_responses")
                                 : (stream.request ? "postgres_requests" : "postgres_responses");
        auto user = redis ? redis_in_user_space(p, stream.request) : postgres_in_user_space(p, stream.request);
        expect_same(run(prog, p), user, std::string(name) + " " + prog + " at " + std::to_string(msg.offset));
        ++windows;
      }
    }
  }
  EXPECT_GT(windows, 500u);
}

TEST_F(L7ParsersKernel, KernelAgreesWithUserSpaceOnEdgeCasesAndRandomBytes) {
  std::vector<std::string> inputs = {
      "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*1\r\n$4\r\nPING\r\n",
      "*2\r\n$3\r\nGET\r\n$999999999\r\nabc",
      "+OK\r\n-ERR x\r\n:1\r\n$-1\r\n*2\r\n$1\r\na\r\n%1\r\n+k\r\n:2\r\n!3\r\nbad\r\n|1\r\n+a\r\n+b\r\n_\r\n",
      "*20\r\n" + std::string(80, ':'),
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      std::string("Q\0\0\0\x0dSELECT 1\0Z\0\0\0\x05I", 20),
      std::string("\0\0\0\x08\x04\xd2\x16\x2f", 8),
      std::string("P\0\0\0\x10\0select 1\0\0\0S\0\0\0\x04", 22),
  };
  std::mt19937 rng(99);
  for (int i = 0; i < 300; ++i) {
    std::string s(1 + rng() % 600, '\0');
    for (auto& ch : s) ch = static_cast<char>(rng());
    if (i % 3 == 0) s[0] = "*+$QZDE"[rng() % 7];
    inputs.push_back(s);
  }
  for (const auto& text : inputs) {
    auto p = ea::test::peek_of(text, 0);
    for (bool request : {true, false}) {
      expect_same(run(request ? "redis_requests" : "redis_responses", p), redis_in_user_space(p, request),
                  "redis " + std::to_string(request));
      expect_same(run(request ? "postgres_requests" : "postgres_responses", p), postgres_in_user_space(p, request),
                  "postgres " + std::to_string(request));
    }
  }
}
