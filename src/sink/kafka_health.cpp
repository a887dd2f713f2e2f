#include "sink/kafka_health.h"

namespace ea {

namespace {

double number(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number() ? it->get<double>() : 0;
}

struct SpoolMetric {
  const char* key;  // in kafka_spool_json
  const char* name;
  const char* help;
  const char* unit;
  MetricKind kind;
};

constexpr SpoolMetric kSpoolMetrics[] = {
    {"bytes", "ebpf_agent_kafka_spool_bytes", "Bytes in the Kafka output's spool, not yet acknowledged by Kafka",
     "bytes", MetricKind::Gauge},
    {"records", "ebpf_agent_kafka_spool_records", "Records in the Kafka output's spool, not yet acknowledged by Kafka",
     "", MetricKind::Gauge},
    {"spooled", "ebpf_agent_kafka_spooled_records",
     "Records that waited in the spool because Kafka was unreachable or behind", "", MetricKind::Counter},
    {"replayed", "ebpf_agent_kafka_replayed_records",
     "Records delivered after waiting in the spool (or left there by an earlier run)", "", MetricKind::Counter},
    {"write_failures", "ebpf_agent_kafka_spool_write_failed_records",
     "Records lost because the spool could not be written", "", MetricKind::Counter},
    {"corrupt_bytes_skipped", "ebpf_agent_kafka_spool_skipped_bytes",
     "Damaged or torn spool bytes skipped (left by a crash)", "bytes", MetricKind::Counter},
    {"producer_restarts", "ebpf_agent_kafka_producer_restarts",
     "librdkafka producers replaced after a fatal error", "", MetricKind::Counter},
};

}  // namespace

const KafkaSink* as_kafka_sink(const Sink& sink) { return dynamic_cast<const KafkaSink*>(&sink); }

nlohmann::json kafka_spool_json(const KafkaSpoolCounters& counters) {
  return {{"spooled", counters.spooled},
          {"replayed", counters.replayed},
          {"dropped_events", counters.dropped_events},
          {"dropped_metric_samples", counters.dropped_metric_samples},
          {"write_failures", counters.spool_write_failures},
          {"bytes", counters.spool_bytes},
          {"records", counters.spool_records},
          {"corrupt_bytes_skipped", counters.corrupt_bytes_skipped},
          {"producer_restarts", counters.producer_restarts}};
}

void append_kafka_spool_metrics(const nlohmann::json& outputs, std::vector<MetricFamily>& out) {
  if (!outputs.is_array()) return;
  std::vector<MetricFamily> families;
  for (const SpoolMetric& metric : kSpoolMetrics)
    families.push_back(MetricFamily{.name = metric.name, .help = metric.help, .unit = metric.unit, .kind = metric.kind});
  MetricFamily dropped{.name = "ebpf_agent_kafka_dropped_records",
                       .help = "Records refused because the Kafka output's spool was full, by data kind",
                       .kind = MetricKind::Counter};
  for (const auto& output : outputs) {
    if (!output.is_object()) continue;
    auto spool = output.find("kafka_spool");
    auto name = output.find("name");
    if (spool == output.end() || !spool->is_object() || name == output.end() || !name->is_string()) continue;
    std::string output_name = name->get<std::string>();
    for (size_t i = 0; i < std::size(kSpoolMetrics); ++i)
      families[i].series.push_back(
          MetricSeries{.labels = {{"output", output_name}}, .value = number(*spool, kSpoolMetrics[i].key)});
    dropped.series.push_back(MetricSeries{.labels = {{"kind", "events"}, {"output", output_name}},
                                          .value = number(*spool, "dropped_events")});
    dropped.series.push_back(MetricSeries{.labels = {{"kind", "metrics"}, {"output", output_name}},
                                          .value = number(*spool, "dropped_metric_samples")});
  }
  if (dropped.series.empty()) return;
  for (auto& family : families) out.push_back(std::move(family));
  out.push_back(std::move(dropped));
}

}  // namespace ea
