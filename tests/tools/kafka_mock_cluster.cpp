// Test peer for the Kafka output: librdkafka's in-process mock cluster (it speaks the Kafka
// protocol on loopback), driven over stdin so integration tests can cut and restore the brokers
// and read back what the agent produced.
//
//   kafka_mock_cluster [--brokers N]        start N mock brokers (default 3)
//   kafka_mock_cluster --real BOOTSTRAP     use a real cluster (create / consume only)
//
// First line on stdout: {"bootstrap":"127.0.0.1:PORT,..."}. Then one command per stdin line,
// each answered by JSON lines ending with {"ok":true,...} or {"ok":false,"error":"..."}:
//   down [ID]                  brokers (all, or broker ID) drop connections and refuse new ones
//   up [ID]                    brokers accept connections again
//   create TOPIC PARTITIONS    create a topic (an existing one is fine)
//   consume TOPIC [TIMEOUT_MS] every message the topic holds now, one line each:
//                              {"partition":P,"offset":O,"key":"...","value":"..."}
//   quit                       (also on end of input)
#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <nlohmann/json.hpp>

#include "kafka_consume.h"

namespace {

using nlohmann::json;

void print(const json& line) {
  std::cout << line.dump(-1, ' ', false, json::error_handler_t::replace) << "\n" << std::flush;
}
void ok(json extra = json::object()) {
  extra["ok"] = true;
  print(extra);
}
void error(const std::string& message) { print({{"ok", false}, {"error", message}}); }

std::string create_real_topic(rd_kafka_t* rk, const std::string& topic, int partitions) {
  char errstr[512];
  rd_kafka_NewTopic_t* new_topic = rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, errstr, sizeof(errstr));
  if (!new_topic) return errstr;
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_request_timeout(options, 15000, errstr, sizeof(errstr));
  rd_kafka_AdminOptions_set_operation_timeout(options, 10000, errstr, sizeof(errstr));
  rd_kafka_CreateTopics(rk, &new_topic, 1, options, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, 30000);
  rd_kafka_AdminOptions_destroy(options);
  std::string result;
  if (!event) {
    result = "timed out creating the topic";
  } else if (rd_kafka_event_error(event)) {
    result = rd_kafka_event_error_string(event);
  } else {
    size_t count = 0;
    const rd_kafka_topic_result_t** topics =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &count);
    for (size_t i = 0; i < count; ++i) {
      rd_kafka_resp_err_t err = rd_kafka_topic_result_error(topics[i]);
      if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) result = rd_kafka_topic_result_error_string(topics[i]);
    }
  }
  if (event) rd_kafka_event_destroy(event);
  rd_kafka_queue_destroy(queue);
  rd_kafka_NewTopic_destroy(new_topic);
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  int broker_count = 3;
  std::string real;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--brokers" && i + 1 < argc) {
      broker_count = std::atoi(argv[++i]);
    } else if (arg == "--real" && i + 1 < argc) {
      real = argv[++i];
    } else {
      std::cerr << "usage: kafka_mock_cluster [--brokers N] | --real BOOTSTRAP\n";
      return 2;
    }
  }

  // A client handle: the mock cluster lives on it, and admin requests go through it.
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
  if (!real.empty()) rd_kafka_conf_set(conf, "bootstrap.servers", real.c_str(), errstr, sizeof(errstr));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (!rk) {
    std::cerr << "kafka_mock_cluster: " << errstr << "\n";
    return 1;
  }
  rd_kafka_mock_cluster_t* cluster = nullptr;
  std::string bootstrap = real;
  if (real.empty()) {
    cluster = rd_kafka_mock_cluster_new(rk, broker_count);
    if (!cluster) {
      std::cerr << "kafka_mock_cluster: cannot start the mock cluster\n";
      return 1;
    }
    bootstrap = rd_kafka_mock_cluster_bootstraps(cluster);
  }
  print({{"bootstrap", bootstrap}, {"mock", cluster != nullptr}});

  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream words(line);
    std::string command;
    words >> command;
    if (command.empty()) continue;
    if (command == "quit") break;
    if (command == "down" || command == "up") {
      if (!cluster) {
        error("a real cluster cannot be cut from here");
        continue;
      }
      int32_t id = -1;
      words >> id;
      rd_kafka_resp_err_t err = command == "down" ? rd_kafka_mock_broker_set_down(cluster, id)
                                                  : rd_kafka_mock_broker_set_up(cluster, id);
      if (err)
        error(rd_kafka_err2str(err));
      else
        ok();
    } else if (command == "create") {
      std::string topic;
      int partitions = 0;
      words >> topic >> partitions;
      if (topic.empty() || partitions <= 0) {
        error("usage: create TOPIC PARTITIONS");
        continue;
      }
      std::string failure;
      if (cluster) {
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster, topic.c_str(), partitions, 1);
        if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) failure = rd_kafka_err2str(err);
      } else {
        failure = create_real_topic(rk, topic, partitions);
      }
      if (failure.empty())
        ok();
      else
        error(failure);
    } else if (command == "consume") {
      std::string topic;
      int timeout_ms = 10000;
      words >> topic >> timeout_ms;
      auto messages = ea::test::consume_topic(bootstrap, topic, timeout_ms);
      if (!messages) {
        error(messages.error().message);
        continue;
      }
      for (const auto& message : *messages)
        print({{"partition", message.partition},
               {"offset", message.offset},
               {"key", message.key},
               {"value", message.value}});
      ok({{"count", messages->size()}});
    } else {
      error("unknown command '" + command + "' (down, up, create, consume, quit)");
    }
  }
  if (cluster) rd_kafka_mock_cluster_destroy(cluster);
  rd_kafka_destroy(rk);
  return 0;
}
