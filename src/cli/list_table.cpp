#include "cli/list_table.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace ea::cli {

namespace {

uint64_t number(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

std::string text(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::string render_list_table(const nlohmann::json& list) {
  std::string out;
  auto it = std::back_inserter(out);
  const auto& specs = list["specs"];
  if (specs.empty()) out += "no specs running\n";
  for (const auto& spec : specs) {
    fmt::format_to(it, "SPEC {} (version {}, {}) from {}\n", text(spec, "name"), text(spec, "version"),
                   text(spec, "state"), text(spec, "source"));
    for (const auto& program : spec["programs"]) {
      std::vector<std::string> points;
      if (program.contains("attach_points"))
        for (const auto& point : program["attach_points"]) points.push_back(point.get<std::string>());
      fmt::format_to(it, "  program {:<20} {:<12} {:<10}", text(program, "name"), text(program, "type"),
                     text(program, "state"));
      if (program.contains("run_count"))
        fmt::format_to(it, " runs={} run_time_ns={}", number(program, "run_count"), number(program, "run_time_ns"));
      if (program.contains("restarts")) fmt::format_to(it, " pid={} restarts={}", program["pid"].dump(), number(program, "restarts"));
      if (!points.empty()) fmt::format_to(it, " at {}", fmt::join(points, ", "));
      out += '\n';
    }
    for (const auto& channel : spec["channels"]) {
      fmt::format_to(it, "  channel {:<20} {:<12} received={} kernel_lost={}\n", text(channel, "name"),
                     text(channel, "type"), number(channel, "received"), number(channel, "kernel_lost"));
      for (const auto& route : channel["processors"])
        fmt::format_to(it, "    -> {:<32} received={} emitted={} skipped={} failed={} dropped={}\n",
                       text(route, "processor"), number(route, "received"), number(route, "emitted"),
                       number(route, "skipped"), number(route, "failed"), number(route, "dropped"));
    }
  }
  for (const auto& output : list["outputs"])
    fmt::format_to(it, "OUTPUT {} records={} bytes={} failures={}\n", text(output, "name"), number(output, "records"),
                   number(output, "bytes"), number(output, "failures"));
  return out;
}

}  // namespace ea::cli
