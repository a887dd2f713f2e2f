#include "sink/kafka_topics.h"

namespace ea {

std::string_view kafka_kind_name(KafkaDataKind kind) {
  switch (kind) {
    case KafkaDataKind::events: return "events";
    case KafkaDataKind::metrics: return "metrics";
  }
  return "unknown";
}

std::optional<KafkaDataKind> kafka_kind_from_byte(uint8_t value) {
  for (KafkaDataKind kind : kKafkaDataKinds)
    if (static_cast<uint8_t>(kind) == value) return kind;
  return std::nullopt;
}

std::string kafka_topic(std::string_view prefix, KafkaDataKind kind) {
  std::string topic(prefix);
  topic += '.';
  topic += kafka_kind_name(kind);
  return topic;
}

}  // namespace ea
