// Turns one line of bpftrace output into the fields of one record.
//
// Shared by the built-in "bpftrace_default" processor and the bpftrace_default.so plugin, so it
// depends on nothing but nlohmann-json and the standard library.
//
// Lines written by `bpftrace -f json`:
//   printf           {"type":"printf","message":"<text>", plus one field per key=value token}
//   map, hist, stats {"type":"map","kind":"map|hist|stats","map":"@name","value":<bpftrace's data>}
//   any other text   {"type":"time|join|cat|syscall|...","message":"<text>"}
//   any other value  {"type":"value|...","value":<data>}
//   attached_probes, lost_events: control lines, no record (the pipe channel counts lost events).
// A line that is not JSON (bpftrace run without -f json) becomes {"type":"text","message":line,
// plus its key=value fields}. Messages lose their trailing newline.
//
// key=value: a token that starts with [A-Za-z_][A-Za-z0-9_.-]* followed by '=' opens a field whose
// value runs up to the next such token, so values may hold spaces ("msg=Memory cgroup out of
// memory"). Integers and decimals become JSON numbers, everything else strings. The first of
// duplicate keys wins, and keys that would shadow "type" or "message" stay in the message only.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace ea::bpftrace {

enum class LineOutcome {
  Record,   // fields() holds one JSON object
  Control,  // attached_probes, lost_events, blank line: nothing to emit
  Invalid,  // error() says why
};

// Who the line is about, from its pid/tid/tgid/comm fields. bpftrace's own builtins name the
// process `pid` and the thread `tid`; kernel-style text (the talk's OOM line) names the thread
// `pid` and the process `tgid`. A line carrying `tgid` is read the kernel way.
struct LineIdentity {
  int64_t pid = -1;   // thread id
  int64_t tgid = -1;  // process id
  std::string comm;
};

// Holds scratch buffers between lines; one instance per thread.
class OutputLineParser {
 public:
  LineOutcome parse(std::string_view line);
  const std::string& fields() const { return fields_; }
  const LineIdentity& identity() const { return identity_; }
  const std::string& error() const { return error_; }

  static constexpr int kMaxNesting = 64;  // deeper JSON is refused rather than recursed into

 private:
  std::string fields_;
  LineIdentity identity_;
  std::string error_;
  std::string sanitized_;
};

}  // namespace ea::bpftrace
