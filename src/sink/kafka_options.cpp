#include "sink/kafka_options.h"

#include <array>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace ea {

namespace {

constexpr std::array<std::string_view, 7> kKnownOptions{"topic_prefix",      "spool", "spool_max_bytes",
                                                         "queue_max_records", "acks",  "stop_timeout",
                                                         "rdkafka.PROPERTY"};
constexpr std::string_view kRdkafkaPrefix = "rdkafka.";

// librdkafka properties the output sets itself because the spool's guarantees depend on them.
struct ReservedProperty {
  std::string_view name;
  std::string_view fix;
};
constexpr std::array<ReservedProperty, 10> kReserved{{
    {"bootstrap.servers", "give the brokers as the target: kafka:host1:9092,host2:9092"},
    {"metadata.broker.list", "give the brokers as the target: kafka:host1:9092,host2:9092"},
    {"enable.idempotence", "use acks=all (idempotent) or acks=1/0 (not idempotent)"},
    {"acks", "use the output's acks= option"},
    {"request.required.acks", "use the output's acks= option"},
    {"message.timeout.ms", "records wait in the spool until delivered; bound them with spool_max_bytes"},
    {"delivery.timeout.ms", "records wait in the spool until delivered; bound them with spool_max_bytes"},
    {"queue.buffering.max.messages", "use queue_max_records="},
    {"dr_cb", "delivery reports are the output's own"},
    {"dr_msg_cb", "delivery reports are the output's own"},
}};

bool valid_topic_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

}  // namespace

Result<KafkaSinkOptions> parse_kafka_options(const OutputDescription& output) {
  KafkaSinkOptions options;
  const std::string& text = output.text;
  options.brokers = output.target;
  if (options.brokers.empty())
    return failf("output '{}': kafka needs its brokers: kafka:host1:9092[,host2:9092] (usage: {})", text, kKafkaUsage);

  for (const auto& [key, value] : output.options) {
    if (key.starts_with(kRdkafkaPrefix)) {
      std::string property = key.substr(kRdkafkaPrefix.size());
      if (property.empty()) return failf("output '{}': 'rdkafka.' needs a librdkafka property name after it", text);
      for (const ReservedProperty& reserved : kReserved)
        if (property == reserved.name)
          return failf("output '{}': rdkafka.{} is set by the kafka output itself: {}", text, property, reserved.fix);
      options.rdkafka.emplace_back(std::move(property), value);
      continue;
    }
    bool known = false;
    for (std::string_view name : kKnownOptions) known = known || name == key;
    if (!known)
      return failf("output '{}': unknown option '{}' (known: {}; usage: {})", text, key, fmt::join(kKnownOptions, ", "),
                   kKafkaUsage);
  }

  options.topic_prefix = output.option("topic_prefix", options.topic_prefix);
  // Kafka topic names: [a-zA-Z0-9._-], at most 249 characters; ".metrics" is the longest suffix.
  if (options.topic_prefix.empty() || options.topic_prefix.size() > 240)
    return failf("output '{}': topic_prefix must be 1 to 240 characters", text);
  for (char c : options.topic_prefix)
    if (!valid_topic_char(c))
      return failf("output '{}': topic_prefix '{}' has '{}': Kafka topic names take letters, digits, '.', '_' and '-'",
                   text, options.topic_prefix, c);

  options.spool_dir = output.option("spool", options.spool_dir);
  if (options.spool_dir.empty()) return failf("output '{}': spool= needs a directory", text);

  auto spool_max = output.size_option("spool_max_bytes", options.spool_max_bytes);
  if (!spool_max) return std::unexpected(spool_max.error());
  if (*spool_max < 4096) return failf("output '{}': spool_max_bytes must be at least 4K", text);
  options.spool_max_bytes = *spool_max;

  auto queue_max = output.size_option("queue_max_records", options.queue_max_records);
  if (!queue_max) return std::unexpected(queue_max.error());
  if (*queue_max < 1 || *queue_max > 10'000'000)
    return failf("output '{}': queue_max_records must be between 1 and 10000000", text);
  options.queue_max_records = *queue_max;

  options.acks = output.option("acks", options.acks);
  if (options.acks == "-1") options.acks = "all";
  if (options.acks != "all" && options.acks != "1" && options.acks != "0")
    return failf("output '{}': acks must be all, 1 or 0 (all keeps order and avoids duplicates)", text);

  auto stop_timeout = output.duration_option("stop_timeout", options.stop_timeout);
  if (!stop_timeout) return std::unexpected(stop_timeout.error());
  options.stop_timeout = *stop_timeout;
  return options;
}

}  // namespace ea
