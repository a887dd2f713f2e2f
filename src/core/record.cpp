#include "core/record.h"

#include <unistd.h>

#include <ctime>

#include <fmt/format.h>

namespace ea {

void append_json_escaped(std::string_view text, std::string& out) {
  static constexpr char hex[] = "0123456789abcdef";
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
}

void append_json_line(const Record& record, std::string_view fields, std::string_view host, std::string& out) {
  auto it = std::back_inserter(out);
  fmt::format_to(it, "{{\"time\":{},\"host\":\"", record.time_ns);
  append_json_escaped(host, out);
  out += "\",\"spec\":\"";
  append_json_escaped(record.origin->spec, out);
  out += "\",\"program\":\"";
  append_json_escaped(record.origin->program, out);
  out += "\",\"channel\":\"";
  append_json_escaped(record.origin->channel, out);
  out += "\",\"processor\":\"";
  append_json_escaped(record.origin->processor, out);
  out += '"';
  if (record.pid >= 0) fmt::format_to(it, ",\"pid\":{}", record.pid);
  if (record.tgid >= 0) fmt::format_to(it, ",\"tgid\":{}", record.tgid);
  if (record.comm[0] != '\0') {
    out += ",\"comm\":\"";
    append_json_escaped(std::string_view(record.comm, strnlen(record.comm, sizeof(record.comm))), out);
    out += '"';
  }
  out += ",\"data\":";
  if (fields.empty()) {
    out += "{}";
  } else {
    out += fields;
  }
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
