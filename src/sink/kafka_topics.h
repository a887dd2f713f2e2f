// What kinds of data the Kafka output carries and which topic each goes to: <prefix>.<kind>.
// The numeric values are stored in the spool's frames, so they never change meaning; a new kind
// (profiles, topology) gets the next number and one line in kafka_topics.cpp.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ea {

enum class KafkaDataKind : uint8_t {
  events = 1,
  metrics = 2,
};

inline constexpr std::array<KafkaDataKind, 2> kKafkaDataKinds{KafkaDataKind::events, KafkaDataKind::metrics};

// "events", "metrics": the topic suffix and the name used in logs.
std::string_view kafka_kind_name(KafkaDataKind kind);
// The kind a spool frame names, or nothing for a byte this version does not know.
std::optional<KafkaDataKind> kafka_kind_from_byte(uint8_t value);
// "<prefix>.<kind>", e.g. "ebpf-agent.events".
std::string kafka_topic(std::string_view prefix, KafkaDataKind kind);
// Index into per-kind arrays (0-based, dense).
inline size_t kafka_kind_index(KafkaDataKind kind) { return static_cast<size_t>(kind) - 1; }

}  // namespace ea
