#include "sink/kafka_producer.h"

#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/record.h"

namespace ea {

namespace {

struct RdkafkaConf {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  ~RdkafkaConf() {
    if (conf) rd_kafka_conf_destroy(conf);
  }
  rd_kafka_conf_t* release() {
    rd_kafka_conf_t* out = conf;
    conf = nullptr;
    return out;
  }
};

// What the output sets before the operator's rdkafka.* settings (which may override the tuning
// ones but not the reserved ones, see kafka_options.cpp).
std::vector<std::pair<std::string, std::string>> base_settings(const KafkaSinkOptions& options) {
  bool idempotent = options.acks == "all";
  std::vector<std::pair<std::string, std::string>> settings{
      {"bootstrap.servers", options.brokers},
      {"client.id", "ebpf-agent@" + host_name()},
      {"enable.idempotence", idempotent ? "true" : "false"},
      {"acks", idempotent ? "all" : options.acks},
      {"message.timeout.ms", "0"},  // never give up on a record: the spool bounds what waits
      {"queue.buffering.max.messages", std::to_string(options.queue_max_records)},
      {"partitioner", "murmur2_random"},  // same key -> same partition as Java clients
      {"reconnect.backoff.ms", "100"},
      {"reconnect.backoff.max.ms", "2000"},  // come back within ~2 s of the brokers
  };
  // Without idempotence one request at a time keeps retries from reordering records.
  if (!idempotent) settings.emplace_back("max.in.flight.requests.per.connection", "1");
  return settings;
}

}  // namespace

KafkaProducer::KafkaProducer(std::string context, KafkaProducerEvents& events)
    : context_(std::move(context)), events_(events) {}

Result<std::unique_ptr<KafkaProducer>> KafkaProducer::create(const KafkaSinkOptions& options, std::string context,
                                                             int wake_fd, KafkaProducerEvents& events) {
  std::unique_ptr<KafkaProducer> producer(new KafkaProducer(std::move(context), events));
  RdkafkaConf conf;
  char error[512];
  for (const auto& [name, value] : base_settings(options)) {
    if (rd_kafka_conf_set(conf.conf, name.c_str(), value.c_str(), error, sizeof(error)) != RD_KAFKA_CONF_OK)
      return failf("{}: librdkafka refused {}={}: {}", producer->context_, name, value, error);
  }
  for (const auto& [name, value] : options.rdkafka) {
    if (rd_kafka_conf_set(conf.conf, name.c_str(), value.c_str(), error, sizeof(error)) != RD_KAFKA_CONF_OK)
      return failf("{}: rdkafka.{}={}: {} (see librdkafka's CONFIGURATION.md for the property)", producer->context_,
                   name, value, error);
  }
  rd_kafka_conf_set_opaque(conf.conf, producer.get());
  rd_kafka_conf_set_dr_msg_cb(conf.conf, &KafkaProducer::delivery_callback);
  rd_kafka_conf_set_error_cb(conf.conf, &KafkaProducer::error_callback);
  rd_kafka_conf_set_log_cb(conf.conf, &KafkaProducer::log_callback);

  producer->rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf.conf, error, sizeof(error));
  if (!producer->rk_) return failf("{}: librdkafka cannot create the producer: {}", producer->context_, error);
  conf.release();  // rd_kafka_new owns it now

  rd_kafka_queue_t* main_queue = rd_kafka_queue_get_main(producer->rk_);
  static const uint64_t one = 1;  // an eventfd takes 8-byte counter increments
  rd_kafka_queue_io_event_enable(main_queue, wake_fd, &one, sizeof(one));
  rd_kafka_queue_destroy(main_queue);

  for (KafkaDataKind kind : kKafkaDataKinds) {
    size_t index = kafka_kind_index(kind);
    producer->topics_[index] = kafka_topic(options.topic_prefix, kind);
    producer->handles_[index] = rd_kafka_topic_new(producer->rk_, producer->topics_[index].c_str(), nullptr);
    if (!producer->handles_[index])
      return failf("{}: topic {}: {}", producer->context_, producer->topics_[index],
                   rd_kafka_err2str(rd_kafka_last_error()));
  }
  return producer;
}

KafkaProducer::~KafkaProducer() {
  for (rd_kafka_topic_t*& handle : handles_) {
    if (handle) rd_kafka_topic_destroy(handle);
    handle = nullptr;
  }
  if (rk_) {
    rd_kafka_queue_t* main_queue = rd_kafka_queue_get_main(rk_);
    rd_kafka_queue_io_event_enable(main_queue, -1, nullptr, 0);
    rd_kafka_queue_destroy(main_queue);
    rd_kafka_destroy(rk_);
  }
}

rd_kafka_resp_err_t KafkaProducer::produce(KafkaDataKind kind, std::string_view key, std::string_view value,
                                           uint64_t id) {
  return rd_kafka_producev(rk_, RD_KAFKA_V_RKT(handles_[kafka_kind_index(kind)]),
                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                           RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                           RD_KAFKA_V_KEY(key.data(), key.size()),
                           RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<uintptr_t>(id))), RD_KAFKA_V_END);
}

void KafkaProducer::poll() {
  // Each call serves everything queued; the eventfd fires again only once the queue was empty.
  for (int round = 0; round < 64 && rd_kafka_poll(rk_, 0) > 0; ++round) {
  }
}

void KafkaProducer::purge_and_drain(int settle_ms) {
  // A record purged while its request is at the broker may be stored there all the same, and it is
  // sent again later: letting in-flight requests finish first keeps such duplicates rare.
  if (settle_ms > 0) rd_kafka_flush(rk_, settle_ms);
  rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_flush(rk_, 1000);
  poll();
}

std::string KafkaProducer::fatal_reason() {
  char reason[512] = {};
  rd_kafka_resp_err_t error = rd_kafka_fatal_error(rk_, reason, sizeof(reason));
  return fmt::format("{}: {}", rd_kafka_err2name(error), reason);
}

void KafkaProducer::raise_test_fatal_error() {
  rd_kafka_test_fatal_error(rk_, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, "injected by a test");
}

void KafkaProducer::delivery_callback(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  auto* self = static_cast<KafkaProducer*>(opaque);
  KafkaDataKind kind = KafkaDataKind::events;
  for (KafkaDataKind candidate : kKafkaDataKinds)
    if (self->handles_[kafka_kind_index(candidate)] == message->rkt) kind = candidate;
  self->events_.on_delivery(static_cast<uint64_t>(reinterpret_cast<uintptr_t>(message->_private)), message->err,
                            kind, message->len);
}

void KafkaProducer::error_callback(rd_kafka_t*, int error, const char* reason, void* opaque) {
  auto* self = static_cast<KafkaProducer*>(opaque);
  self->events_.on_error(static_cast<rd_kafka_resp_err_t>(error), reason ? reason : "");
}

void KafkaProducer::log_callback(const rd_kafka_t* rk, int level, const char* facility, const char* message) {
  // librdkafka logs from its own threads; syslog levels: <=4 warning and worse, 7 debug.
  const auto* self = static_cast<const KafkaProducer*>(rd_kafka_opaque(rk));
  std::string_view context = self ? std::string_view(self->context_) : std::string_view("kafka output");
  if (level <= 4)
    spdlog::warn("{}: librdkafka {}: {}", context, facility, message);
  else if (level <= 6)
    spdlog::info("{}: librdkafka {}: {}", context, facility, message);
  else
    spdlog::debug("{}: librdkafka {}: {}", context, facility, message);
}

}  // namespace ea
