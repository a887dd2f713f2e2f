#include "cli/query_command.h"

#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/record.h"
#include "tsdb/label_text.h"
#include "tsdb/selector.h"
#include "tsdb/time_text.h"
#include "tsdb/tsdb_defaults.h"
#include "tsdb/tsdb_reader.h"

namespace ea::cli {

namespace {

using nlohmann::json;
using namespace ea::tsdb;

struct QueryOptions {
  std::string selector;
  std::string db = kDefaultTsdbDir;
  std::string from = "-1h";
  std::string to = "now";
  std::string format = "table";
  bool events = false;
  std::string spec;
  size_t limit = 1000;
};

std::string dump(const json& value, int indent = -1) { return value.dump(indent, ' ', false, json::error_handler_t::replace); }

std::string time_or_dash(int64_t time_ns, bool present, int digits) { return present ? format_rfc3339(time_ns, digits) : "-"; }

std::string human_bytes(uint64_t bytes) {
  if (bytes >= (1ull << 30)) return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / (1ull << 30));
  if (bytes >= (1ull << 20)) return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1ull << 20));
  if (bytes >= (1ull << 10)) return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / (1ull << 10));
  return fmt::format("{} B", bytes);
}

int list_contents(TsdbReader& reader, const QueryOptions& options) {
  auto metrics = reader.metrics();
  if (!metrics) {
    std::cerr << "ebpf-agent query: " << metrics.error().message << "\n";
    return 1;
  }
  auto specs = reader.event_specs();
  if (!specs) {
    std::cerr << "ebpf-agent query: " << specs.error().message << "\n";
    return 1;
  }
  if (options.format == "json") {
    json out = {{"metrics", json::array()}, {"events", json::array()}};
    for (const MetricInfo& m : *metrics)
      out["metrics"].push_back({{"name", m.name},        {"kind", to_string(m.kind)},
                                {"unit", m.unit},        {"help", m.help},
                                {"spec", m.spec},        {"series", m.series},
                                {"samples", m.samples},  {"first_ms", m.min_time_ms},
                                {"last_ms", m.max_time_ms}});
    for (const EventSpecInfo& s : *specs)
      out["events"].push_back({{"spec", s.spec},
                               {"records", s.records},
                               {"blocks", s.blocks},
                               {"raw_bytes", s.raw_bytes},
                               {"stored_bytes", s.stored_bytes},
                               {"first_ns", s.min_time_ns},
                               {"last_ns", s.max_time_ns}});
    std::cout << dump(out, 2) << "\n";
    return 0;
  }
  if (metrics->empty()) {
    std::cout << "no metrics stored in " << reader.database_path() << "\n";
  } else {
    size_t width = 6;
    for (const MetricInfo& m : *metrics) width = std::max(width, m.name.size());
    std::cout << fmt::format("{:<{}}  {:<9}  {:>7}  {:>9}  {:<24}  {:<24}  {}\n", "METRIC", width, "KIND", "SERIES", "SAMPLES",
                             "FIRST", "LAST", "SPEC");
    for (const MetricInfo& m : *metrics)
      std::cout << fmt::format("{:<{}}  {:<9}  {:>7}  {:>9}  {:<24}  {:<24}  {}\n", m.name, width, to_string(m.kind), m.series,
                               m.samples, time_or_dash(m.min_time_ms * 1'000'000, m.samples > 0, 3),
                               time_or_dash(m.max_time_ms * 1'000'000, m.samples > 0, 3), m.spec.empty() ? "-" : m.spec);
  }
  std::cout << "\n";
  if (specs->empty()) {
    std::cout << "no events stored\n";
    return 0;
  }
  size_t width = 11;
  for (const EventSpecInfo& s : *specs) width = std::max(width, s.spec.size());
  std::cout << fmt::format("{:<{}}  {:>9}  {:>10}  {:<27}  {:<27}\n", "EVENTS SPEC", width, "RECORDS", "STORED", "FIRST", "LAST");
  for (const EventSpecInfo& s : *specs)
    std::cout << fmt::format("{:<{}}  {:>9}  {:>10}  {:<27}  {:<27}\n", s.spec.empty() ? "-" : s.spec, width, s.records,
                             human_bytes(s.stored_bytes), format_rfc3339(s.min_time_ns, 6), format_rfc3339(s.max_time_ns, 6));
  return 0;
}

json value_json(double value) {
  if (std::isfinite(value)) return value;
  return format_value(value);  // NaN, +Inf, -Inf are not JSON numbers
}

int print_samples(TsdbReader& reader, const Selector& selector, int64_t from_ns, int64_t to_ns, const QueryOptions& options) {
  auto series = reader.select(selector, from_ns / 1'000'000, to_ns / 1'000'000);
  if (!series) {
    std::cerr << "ebpf-agent query: " << series.error().message << "\n";
    return 1;
  }
  if (options.format == "json") {
    json out = json::array();
    for (const SeriesSamples& s : *series) {
      json labels = json::object();
      for (const auto& [name, value] : s.labels) labels[name] = value;
      json samples = json::array();
      for (const Sample& sample : s.samples) samples.push_back(json::array({sample.time_ms, value_json(sample.value)}));
      out.push_back({{"name", s.name}, {"kind", to_string(s.kind)}, {"unit", s.unit}, {"labels", labels}, {"samples", samples}});
    }
    std::cout << dump(out) << "\n";
    return 0;
  }
  if (series->empty()) {
    std::cout << fmt::format("no samples of '{}' between {} and {}\n", options.selector, format_rfc3339(from_ns, 3),
                             format_rfc3339(to_ns, 3));
    return 0;
  }
  size_t total = 0;
  for (const SeriesSamples& s : *series) {
    std::cout << s.name << canonical_labels(s.labels) << "  (" << to_string(s.kind) << (s.unit.empty() ? "" : ", " + s.unit)
              << ")\n";
    for (const Sample& sample : s.samples)
      std::cout << "  " << format_rfc3339(sample.time_ms * 1'000'000, 3) << "  " << format_value(sample.value) << "\n";
    total += s.samples.size();
  }
  std::cout << fmt::format("{} series, {} samples\n", series->size(), total);
  return 0;
}

int print_events(TsdbReader& reader, int64_t from_ns, int64_t to_ns, const QueryOptions& options) {
  EventQuery query;
  if (!options.spec.empty()) query.spec = options.spec;
  query.from_ns = from_ns;
  query.to_ns = to_ns;
  query.limit = options.limit;
  auto result = reader.events(query);
  if (!result) {
    std::cerr << "ebpf-agent query: " << result.error().message << "\n";
    return 1;
  }
  if (options.format == "json") {
    for (const StoredRecord& record : result->records) std::cout << record.line << "\n";
  } else {
    std::cout << fmt::format("{:<27}  {:<16}  {:<16}  {:>7}  {:<16}  {}\n", "TIME", "SPEC", "PROGRAM", "PID", "COMM", "DATA");
    for (const StoredRecord& record : result->records) {
      json envelope = json::parse(record.line, nullptr, false);
      if (envelope.is_discarded() || !envelope.is_object()) {
        std::cout << format_rfc3339(record.time_ns, 6) << "  " << record.spec << "  " << record.line << "\n";
        continue;
      }
      auto text = [&](const char* key) { return envelope.contains(key) && envelope[key].is_string() ? envelope[key].get<std::string>() : "-"; };
      std::string pid = envelope.contains("pid") ? dump(envelope["pid"]) : "-";
      std::string data = envelope.contains("data") ? dump(envelope["data"]) : "";
      std::cout << fmt::format("{:<27}  {:<16}  {:<16}  {:>7}  {:<16}  {}\n", format_rfc3339(record.time_ns, 6), record.spec,
                               text("program"), pid, text("comm"), data);
    }
  }
  if (result->truncated)
    std::cerr << fmt::format("(first {} records shown; raise --limit, 0 for all, or narrow --from/--to)\n", options.limit);
  return 0;
}

int run_query(const QueryOptions& options) {
  bool list = options.selector.empty() && !options.events;
  if (options.events && !options.selector.empty()) {
    std::cerr << "ebpf-agent query: give either a metric selector or --events, not both\n";
    return 2;
  }
  if (!options.spec.empty() && !options.events) {
    std::cerr << "ebpf-agent query: --spec selects events: add --events\n";
    return 2;
  }
  std::optional<Selector> selector;
  if (!options.selector.empty()) {
    auto parsed = parse_selector(options.selector);
    if (!parsed) {
      std::cerr << "ebpf-agent query: " << parsed.error().message << "\n";
      return 2;
    }
    selector = std::move(*parsed);
  }
  auto now = static_cast<int64_t>(wall_clock_ns());
  auto from = parse_time_argument(options.from, now);
  auto to = parse_time_argument(options.to, now);
  for (const auto* time : {&from, &to}) {
    if (!*time) {
      std::cerr << "ebpf-agent query: " << (time == &from ? "--from " : "--to ") << time->error().message << "\n";
      return 2;
    }
  }
  if (*from > *to) {
    std::cerr << fmt::format("ebpf-agent query: --from {} is after --to {}\n", format_rfc3339(*from, 3), format_rfc3339(*to, 3));
    return 2;
  }
  auto reader = TsdbReader::open(options.db);
  if (!reader) {
    std::cerr << "ebpf-agent query: " << reader.error().message << "\n";
    return 1;
  }
  if (list) return list_contents(*reader, options);
  if (options.events) return print_events(*reader, *from, *to, options);
  return print_samples(*reader, *selector, *from, *to, options);
}

}  // namespace

void add_query_command(CLI::App& app) {
  auto options = std::make_shared<QueryOptions>();
  auto* query = app.add_subcommand(
      "query", "Read the embedded store: no argument lists what it holds; a selector prints samples; --events prints records");
  query->add_option("selector", options->selector,
                    "Series selector, Prometheus style: 'METRIC{label=\"v\",other=~\"re.*\",x!=\"y\"}'");
  query->add_option("--db", options->db, "Store directory (as in --output tsdb:DIR)")->capture_default_str();
  query->add_option("--from", options->from, "Start: -1h, now-30m, RFC 3339 (2025-05-01T10:00:00Z) or unix seconds")
      ->capture_default_str();
  query->add_option("--to", options->to, "End, same forms as --from")->capture_default_str();
  query->add_option("-o,--output", options->format, "table or json (events: one JSON envelope per line)")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  query->add_flag("--events", options->events, "Print event records instead of metrics");
  query->add_option("--spec", options->spec, "Only the events of this spec");
  query->add_option("--limit", options->limit, "At most this many events, earliest first (0 = all)")->capture_default_str();
  query->callback([options] { throw CLI::RuntimeError(run_query(*options)); });
}

}  // namespace ea::cli
