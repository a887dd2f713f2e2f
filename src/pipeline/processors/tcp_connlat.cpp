// "tcp_connlat": decodes the connect-latency records of bpf/tcp_connlat.bpf.c.
#include <arpa/inet.h>
#include <sys/socket.h>

#include <charconv>
#include <cstddef>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "tcp_connlat.h"
#include "metrics/registry.h"
#include "pipeline/processor.h"

namespace ea {
namespace {

static_assert(sizeof(connlat_event) == 88, "connlat_event must match bpf/tcp_connlat.bpf.c");

// Connect latency as a histogram, labelled in OpenTelemetry's terms (process.executable.name,
// server.address, server.port) plus the outcome. Buckets from 10 us (loopback) to 10 s (SYN retries).
MetricDesc connect_duration_desc(const std::string& spec) {
  return MetricDesc{.name = "tcp_connect_duration_seconds",
                    .help = "Time from connect() to the TCP handshake's end (established or failed)",
                    .unit = "seconds",
                    .kind = MetricKind::Histogram,
                    .spec = spec,
                    .label_names = {"process_executable_name", "server_address", "server_port", "result"},
                    .bounds = {1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1,
                               0.25, 0.5, 1, 2.5, 5, 10}};
}

class TcpConnlatProcessor final : public Processor {
 public:
  explicit TcpConnlatProcessor(std::shared_ptr<Metric> connect_duration)
      : connect_duration_(std::move(connect_duration)) {}

  ProcessOutcome process(std::span<const std::byte> input, RecordMeta& meta, std::string& fields) override {
    // The object and this processor ship together, so any other size is a foreign record.
    if (input.size() != sizeof(connlat_event)) {
      return failed(fmt::format("record of {} bytes, expected {} (struct connlat_event); is the channel fed by "
                                "tcp_connlat.bpf.o from this agent version?",
                                input.size(), sizeof(connlat_event)));
    }
    connlat_event event;  // copied: batch bytes carry no alignment guarantee
    std::memcpy(&event, input.data(), sizeof(event));

    const char* family_name;
    switch (event.family) {
      case AF_INET: family_name = "ipv4"; break;
      case AF_INET6: family_name = "ipv6"; break;
      default: return failed(fmt::format("unknown address family {}", event.family));
    }
    if (event.result != CONNLAT_ESTABLISHED && event.result != CONNLAT_FAILED)
      return failed(fmt::format("unknown connect result {}", event.result));

    // The envelope copies comm before the input goes away; point into the input, not the copy.
    const char* comm = reinterpret_cast<const char*>(input.data()) + offsetof(connlat_event, comm);
    meta.pid = event.pid;
    meta.tgid = event.tgid;
    meta.comm = std::string_view(comm, strnlen(comm, sizeof(event.comm)));

    // Plain appends, not fmt::format_to or inet_ntop for IPv4 (sprintf inside): this runs for
    // every connect on the host, and those two doubled the pipeline's CPU per record
    // (bench/pipeline_bench).
    fields += R"({"pid":)";
    append_number(event.pid, fields);
    fields += R"(,"tgid":)";
    append_number(event.tgid, fields);
    fields += R"(,"comm":")";
    append_json_escaped(meta.comm, fields);
    fields += R"(","family":")";
    fields += family_name;
    fields += R"(","saddr":")";
    append_address(event.family, event.saddr, fields);
    fields += R"(","daddr":")";
    append_address(event.family, event.daddr, fields);
    fields += R"(","sport":)";
    append_number(event.sport, fields);
    fields += R"(,"dport":)";
    append_number(event.dport, fields);
    fields += R"(,"latency_us":)";
    append_number(event.latency_ns / 1000, fields);
    append_three_decimals(event.latency_ns % 1000, fields);
    fields += R"(,"latency_ns":)";
    append_number(event.latency_ns, fields);
    if (connect_duration_) observe(event, meta.comm);
    if (event.result == CONNLAT_ESTABLISHED) {
      fields += R"(,"result":"established"})";
    } else {
      fields += R"(,"result":"failed")";
      if (event.error != 0) append_error_name(event.error, fields);
      fields += '}';
    }
    return ProcessOutcome::Emitted;
  }

  std::string_view error() const override { return error_; }

 private:
  ProcessOutcome failed(std::string message) {
    error_ = std::move(message);
    return ProcessOutcome::Failed;
  }

  static void append_number(uint64_t value, std::string& out) {
    char digits[20];
    auto end = std::to_chars(digits, digits + sizeof(digits), value).ptr;
    out.append(digits, end);
  }

  // ".NNN" (the fraction of a microsecond, so the float stays exact in text).
  static void append_three_decimals(uint64_t thousandths, std::string& out) {
    char text[4] = {'.', static_cast<char>('0' + thousandths / 100), static_cast<char>('0' + thousandths / 10 % 10),
                    static_cast<char>('0' + thousandths % 10)};
    out.append(text, sizeof(text));
  }

  static void append_address(uint32_t family, const uint8_t* address, std::string& out) {
    if (family == AF_INET) {
      for (int i = 0; i < 4; ++i) {
        if (i != 0) out += '.';
        append_number(address[i], out);
      }
      return;
    }
    char text[INET6_ADDRSTRLEN];
    out += inet_ntop(AF_INET6, address, text, sizeof(text));
  }

  // ,"error":"ECONNREFUSED" (the socket error that ended the connect; a number if unnamed).
  static void append_error_name(int error, std::string& out) {
    out += R"(,"error":")";
    if (const char* name = strerrorname_np(error)) {
      out += name;
    } else {
      out += "errno ";
      out += std::to_string(error);
    }
    out += '"';
  }

  void observe(const connlat_event& event, std::string_view comm) {
    address_.clear();
    append_address(event.family, event.daddr, address_);
    port_.clear();
    append_number(event.dport, port_);
    std::string_view result = event.result == CONNLAT_ESTABLISHED ? "established" : "failed";
    connect_duration_->observe({comm, address_, port_, result}, static_cast<double>(event.latency_ns) / 1e9);
  }

  std::shared_ptr<Metric> connect_duration_;
  std::string address_, port_;  // label scratch, reused per record
  std::string error_;
};

Result<std::unique_ptr<Processor>> make_tcp_connlat(const ProcessorContext& context) {
  std::shared_ptr<Metric> connect_duration;
  if (context.metrics && context.spec) {
    auto metric = context.metrics->metric(connect_duration_desc(context.spec->name));
    if (!metric) return std::unexpected(metric.error());
    connect_duration = std::move(*metric);
  }
  return std::make_unique<TcpConnlatProcessor>(std::move(connect_duration));
}

const BuiltinRegistration registration("tcp_connlat", make_tcp_connlat);

}  // namespace
}  // namespace ea
