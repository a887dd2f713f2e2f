// "tcp_connlat": decodes the connect-latency records of bpf/tcp_connlat.bpf.c.
#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstring>
#include <iterator>
#include <string>

#include <fmt/format.h>

#include "../../../bpf/include/tcp_connlat.h"
#include "pipeline/processor.h"

namespace ea {
namespace {

static_assert(sizeof(connlat_event) == 88, "connlat_event must match bpf/tcp_connlat.bpf.c");

class TcpConnlatProcessor final : public Processor {
 public:
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
    int family;
    switch (event.family) {
      case AF_INET: family_name = "ipv4", family = AF_INET; break;
      case AF_INET6: family_name = "ipv6", family = AF_INET6; break;
      default: return failed(fmt::format("unknown address family {}", event.family));
    }
    if (event.result != CONNLAT_ESTABLISHED && event.result != CONNLAT_FAILED)
      return failed(fmt::format("unknown connect result {}", event.result));
    char saddr[INET6_ADDRSTRLEN];
    char daddr[INET6_ADDRSTRLEN];
    inet_ntop(family, event.saddr, saddr, sizeof(saddr));
    inet_ntop(family, event.daddr, daddr, sizeof(daddr));

    // The envelope copies comm before the input goes away; point into the input, not the copy.
    const char* comm = reinterpret_cast<const char*>(input.data()) + offsetof(connlat_event, comm);
    meta.pid = event.pid;
    meta.tgid = event.tgid;
    meta.comm = std::string_view(comm, strnlen(comm, sizeof(event.comm)));

    auto out = std::back_inserter(fields);
    fmt::format_to(out, R"({{"pid":{},"tgid":{},"comm":")", event.pid, event.tgid);
    append_json_escaped(meta.comm, fields);
    fmt::format_to(out,
                   R"(","family":"{}","saddr":"{}","daddr":"{}","sport":{},"dport":{},"latency_us":{}.{:03},)"
                   R"("latency_ns":{},"result":"{}")",
                   family_name, saddr, daddr, event.sport, event.dport, event.latency_ns / 1000,
                   event.latency_ns % 1000, event.latency_ns,
                   event.result == CONNLAT_ESTABLISHED ? "established" : "failed");
    if (event.result == CONNLAT_FAILED && event.error != 0) append_error_name(event.error, fields);
    fields += '}';
    return ProcessOutcome::Emitted;
  }

  std::string_view error() const override { return error_; }

 private:
  ProcessOutcome failed(std::string message) {
    error_ = std::move(message);
    return ProcessOutcome::Failed;
  }

  // ,"error":"ECONNREFUSED" (the socket error that ended the connect; a number if unnamed).
  static void append_error_name(int error, std::string& fields) {
    if (const char* name = strerrorname_np(error)) {
      fmt::format_to(std::back_inserter(fields), R"(,"error":"{}")", name);
    } else {
      fmt::format_to(std::back_inserter(fields), R"(,"error":"errno {}")", error);
    }
  }

  std::string error_;
};

const BuiltinRegistration registration("tcp_connlat",
                                       [](const ProcessorContext&) -> Result<std::unique_ptr<Processor>> {
                                         return std::make_unique<TcpConnlatProcessor>();
                                       });

}  // namespace
}  // namespace ea
