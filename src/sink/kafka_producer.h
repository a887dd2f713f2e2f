// A librdkafka producer set up for the Kafka output: idempotent (acks=all), messages that never
// time out (the spool bounds them instead), one topic handle per data kind, and its events
// (delivery reports, errors) signalled on a file descriptor so one thread can wait for them and
// for new spool data together.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <librdkafka/rdkafka.h>

#include "core/result.h"
#include "sink/kafka_options.h"
#include "sink/kafka_topics.h"

namespace ea {

// Called from KafkaProducer::poll(), on the polling thread.
class KafkaProducerEvents {
 public:
  virtual ~KafkaProducerEvents() = default;
  virtual void on_delivery(uint64_t id, rd_kafka_resp_err_t error, KafkaDataKind kind, size_t bytes) = 0;
  virtual void on_error(rd_kafka_resp_err_t error, std::string_view reason) = 0;
};

class KafkaProducer {
 public:
  // `context` prefixes errors and logs ("output 'kafka:b1:9092'"). librdkafka writes to
  // `wake_fd` (an eventfd) whenever events wait for poll().
  static Result<std::unique_ptr<KafkaProducer>> create(const KafkaSinkOptions& options, std::string context,
                                                       int wake_fd, KafkaProducerEvents& events);
  ~KafkaProducer();
  KafkaProducer(const KafkaProducer&) = delete;
  KafkaProducer& operator=(const KafkaProducer&) = delete;

  // Hands one record to librdkafka (copied). `id` comes back in on_delivery.
  rd_kafka_resp_err_t produce(KafkaDataKind kind, std::string_view key, std::string_view value, uint64_t id);
  // Serves waiting delivery reports and errors.
  void poll();
  // Waits up to `settle_ms` for what is in flight to be acknowledged, then drops what librdkafka
  // still holds (reported as __PURGE_QUEUE / __PURGE_INFLIGHT) and serves the reports.
  void purge_and_drain(int settle_ms);
  // The reason of a fatal error (the producer cannot continue and must be recreated).
  std::string fatal_reason();
  // librdkafka's own fault injection: raises a fatal error as a broker could.
  void raise_test_fatal_error();
  const std::string& topic(KafkaDataKind kind) const { return topics_[kafka_kind_index(kind)]; }

 private:
  KafkaProducer(std::string context, KafkaProducerEvents& events);
  static void delivery_callback(rd_kafka_t* rk, const rd_kafka_message_t* message, void* opaque);
  static void error_callback(rd_kafka_t* rk, int error, const char* reason, void* opaque);
  static void log_callback(const rd_kafka_t* rk, int level, const char* facility, const char* message);

  std::string context_;
  KafkaProducerEvents& events_;
  rd_kafka_t* rk_ = nullptr;
  std::array<rd_kafka_topic_t*, kKafkaDataKinds.size()> handles_{};
  std::array<std::string, kKafkaDataKinds.size()> topics_;
};

}  // namespace ea
