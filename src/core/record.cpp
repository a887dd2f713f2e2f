#include "core/record.h"

#include <unistd.h>

#include <charconv>
#include <cstring>
#include <ctime>


namespace ea {

namespace {

void append_number(int64_t value, std::string& out) {
  char buffer[24];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, result.ptr);
}

void append_string_field(std::string_view name, std::string_view value, std::string& out) {
  out += ",\"";
  out += name;
  out += "\":\"";
  append_json_escaped(value, out);
  out += '"';
}

}  // namespace

std::string origin_json(const RecordOrigin& origin, std::string_view host) {
  std::string out = "\"host\":\"";
  append_json_escaped(host, out);
  out += '"';
  append_string_field("spec", origin.spec, out);
  append_string_field("program", origin.program, out);
  append_string_field("channel", origin.channel, out);
  append_string_field("processor", origin.processor, out);
  return out;
}

void append_json_line(const Record& record, std::string_view fields, std::string_view origin_json, std::string& out) {
  out += "{\"time\":";
  append_number(static_cast<int64_t>(record.time_ns), out);
  out += ',';
  out += origin_json;
  if (record.pid >= 0) {
    out += ",\"pid\":";
    append_number(record.pid, out);
  }
  if (record.tgid >= 0) {
    out += ",\"tgid\":";
    append_number(record.tgid, out);
  }
  if (record.comm[0] != '\0')
    append_string_field("comm", std::string_view(record.comm, strnlen(record.comm, sizeof(record.comm))), out);
  out += ",\"data\":";
  out += fields.empty() ? std::string_view("{}") : fields;
  out += "}\n";
}

uint64_t wall_clock_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

const std::string& host_name() {
  static const std::string name = [] {
    char buffer[256] = {};
    if (gethostname(buffer, sizeof(buffer) - 1) != 0) return std::string("unknown");
    return std::string(buffer);
  }();
  return name;
}

}  // namespace ea
