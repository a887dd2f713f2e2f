// The one event envelope every record leaves the agent in.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/json_escape.h"

namespace ea {

// Which spec/program/channel a record came from; lives as long as the route that made it.
struct RecordOrigin {
  std::string spec;
  std::string program;    // the program that produced the data (BPF object or bpftrace)
  std::string channel;
  std::string processor;  // what decoded it: "oom_user:process", "builtin:tcp_connlat", "btf:struct x"
};

// Identity fields a processor fills when it knows them.
struct RecordMeta {
  int64_t pid = -1;   // thread id (kernel "pid")
  int64_t tgid = -1;  // process id
  std::string_view comm;
};

struct Record {
  uint64_t time_ns = 0;  // wall clock, ns since the epoch
  const RecordOrigin* origin = nullptr;
  int64_t pid = -1;
  int64_t tgid = -1;
  char comm[16] = {};
  uint32_t fields_offset = 0;  // the processor's fields: one JSON object in RecordBatch::arena
  uint32_t fields_length = 0;
};

// Records plus the bytes of their fields, built by one worker and handed to the sinks.
struct RecordBatch {
  std::vector<Record> records;
  std::string arena;

  std::string_view fields(const Record& record) const {
    return std::string_view(arena).substr(record.fields_offset, record.fields_length);
  }
  void clear() {
    records.clear();
    arena.clear();
  }
};

// The part of a JSON line shared by every record of one origin, rendered once per batch:
// "host":...,"spec":...,"program":...,"channel":...,"processor":...
std::string origin_json(const RecordOrigin& origin, std::string_view host);

// Appends one JSON line: {"time":...,<origin_json>,"pid":...,"tgid":...,"comm":...,"data":{fields}}\n
void append_json_line(const Record& record, std::string_view fields, std::string_view origin_json, std::string& out);

uint64_t wall_clock_ns();
const std::string& host_name();

}  // namespace ea
