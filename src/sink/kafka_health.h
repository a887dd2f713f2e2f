// The Kafka output's spool counters for `ebpf-agent list` and the agent's health metrics.
//
// Wiring (two lines in the runtime): Runtime::list() adds
//     if (const KafkaSink* kafka = as_kafka_sink(*sink)) entry["kafka_spool"] = kafka_spool_json(kafka->spool_counters());
// to each output's entry, and the health collector calls
//     append_kafka_spool_metrics(state["outputs"], out);
#pragma once
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics/metric.h"
#include "sink/kafka_sink.h"

namespace ea {

// The sink as a Kafka output, or null.
const KafkaSink* as_kafka_sink(const Sink& sink);

// {"spooled":..,"replayed":..,"dropped_events":..,"dropped_metric_samples":..,"write_failures":..,
//  "bytes":..,"records":..,"corrupt_bytes_skipped":..,"producer_restarts":..}
nlohmann::json kafka_spool_json(const KafkaSpoolCounters& counters);

// From list()'s "outputs" array: every output with a "kafka_spool" object becomes series labelled
// output="kafka:BROKERS" of
//   ebpf_agent_kafka_spool_bytes (gauge), ebpf_agent_kafka_spool_records (gauge),
//   ebpf_agent_kafka_spooled_records, ebpf_agent_kafka_replayed_records,
//   ebpf_agent_kafka_dropped_records{kind="events"|"metrics"} (over the spool bound),
//   ebpf_agent_kafka_spool_write_failed_records, ebpf_agent_kafka_spool_skipped_bytes (damage),
//   ebpf_agent_kafka_producer_restarts (counters).
void append_kafka_spool_metrics(const nlohmann::json& outputs, std::vector<MetricFamily>& out);

}  // namespace ea
