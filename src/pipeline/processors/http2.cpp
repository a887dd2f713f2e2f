// "http2": HTTP/2 and gRPC calls from the payload the kernel captures (bpf/l7.bpf.c, channel
// `l7_payload`: struct l7_payload_header + `len` bytes). Every record is consumed into a
// per-connection decoder; completed calls become the rpc_* / http_* duration histograms, and the
// decoder's health becomes ebpf_agent_http2_* metrics. No event is emitted per record.
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "l7.h"
#include "l7/grpc_recorder.h"
#include "l7/http2_connection_table.h"
#include "metrics/registry.h"
#include "pipeline/processor.h"

namespace ea {
namespace {

static_assert(sizeof(l7_payload_header) == 48, "l7_payload_header must match bpf/include/l7.h");
constexpr std::span<const std::string_view> kNoLabels;
constexpr uint8_t kKnownFlags = L7_PAYLOAD_FROM_START | L7_PAYLOAD_TRUNCATED | L7_PAYLOAD_CLOSED;

// A health counter and where its value lives in the table's counters.
struct HealthCounter {
  const char* name;
  const char* help;
  const char* unit;
  uint64_t l7::CaptureTableCounters::*field;
};

constexpr HealthCounter kHealthCounters[] = {
    {"ebpf_agent_http2_connections_opened", "HTTP/2 connections the http2 processor started tracking", "",
     &l7::CaptureTableCounters::opened},
    {"ebpf_agent_http2_header_blocks_undecodable",
     "HTTP/2 header blocks not decoded (HPACK table unknown after a late start or a gap, corrupt block)", "",
     &l7::CaptureTableCounters::header_blocks_undecodable},
    {"ebpf_agent_http2_malformed_frames", "HTTP/2 frames that broke the protocol's rules (bad padding, stray "
     "CONTINUATION, ...)", "", &l7::CaptureTableCounters::malformed_frames},
    {"ebpf_agent_http2_skipped_bytes", "Captured HTTP/2 bytes skipped while hunting for a frame boundary", "bytes",
     &l7::CaptureTableCounters::bytes_skipped},
    {"ebpf_agent_http2_resyncs", "HTTP/2 frame boundaries found again after hunting", "",
     &l7::CaptureTableCounters::resyncs},
    {"ebpf_agent_http2_capture_gaps", "Captured HTTP/2 chunks followed by bytes the kernel did not capture", "",
     &l7::CaptureTableCounters::gaps},
    {"ebpf_agent_http2_streams_untracked", "HTTP/2 streams not reported: their request headers were never decoded",
     "", &l7::CaptureTableCounters::streams_untracked},
    {"ebpf_agent_http2_streams_dropped", "HTTP/2 streams not tracked: over the open-stream cap of a connection", "",
     &l7::CaptureTableCounters::streams_dropped},
    {"ebpf_agent_http2_calls_unfinished", "HTTP/2 calls still open when their connection was closed or forgotten",
     "", &l7::CaptureTableCounters::calls_unfinished},
    {"ebpf_agent_http2_role_unknown_bytes",
     "Captured HTTP/2 bytes dropped because nothing told whether the process was client or server", "bytes",
     &l7::CaptureTableCounters::role_unknown_bytes},
};

struct RemovalReason {
  const char* label;
  uint64_t l7::CaptureTableCounters::*field;
};
constexpr RemovalReason kRemovalReasons[] = {
    {"closed", &l7::CaptureTableCounters::closed},
    {"evicted", &l7::CaptureTableCounters::evicted},  // over the connection cap
    {"idle", &l7::CaptureTableCounters::expired},
    {"replaced", &l7::CaptureTableCounters::replaced},  // a client preface under a tracked key
};

enum class Rejection { Short, LengthMismatch, TooLong, BadField };  // kRejectionLabels order
constexpr const char* kRejectionLabels[] = {"short", "length_mismatch", "too_long", "bad_field"};

class Http2Processor final : public Processor {
 public:
  explicit Http2Processor(l7::Http2CallRecorder recorder) : recorder_(std::move(recorder)) {}

  ~Http2Processor() override {
    // The gauge is shared by every shard's instance: take back what this one added.
    if (connections_) connections_->add(-static_cast<double>(published_.connections));
  }

  Result<void> register_health(MetricRegistry& registry, const std::string& spec) {
    auto counter = [&](std::string name, std::string help, std::string unit,
                       std::vector<std::string> labels) -> Result<std::shared_ptr<Metric>> {
      return registry.metric(MetricDesc{.name = std::move(name),
                                        .help = std::move(help),
                                        .unit = std::move(unit),
                                        .kind = MetricKind::Counter,
                                        .spec = spec,
                                        .label_names = std::move(labels)});
    };
    auto connections = registry.metric(MetricDesc{.name = "ebpf_agent_http2_connections",
                                                  .help = "HTTP/2 connections the http2 processor tracks",
                                                  .kind = MetricKind::Gauge,
                                                  .spec = spec});
    if (!connections) return std::unexpected(connections.error());
    metrics_.push_back(*connections);
    connections_ = &(*connections)->with(kNoLabels);
    for (const HealthCounter& health : kHealthCounters) {
      auto metric = counter(health.name, health.help, health.unit, {});
      if (!metric) return std::unexpected(metric.error());
      metrics_.push_back(*metric);
      counter_cells_.push_back(&(*metric)->with(kNoLabels));
    }
    auto removed = counter("ebpf_agent_http2_connections_removed",
                           "HTTP/2 connections the http2 processor stopped tracking: closed by the process, "
                           "evicted over the connection cap, idle past the timeout, or replaced by a new "
                           "connection under the same key",
                           "", {"reason"});
    if (!removed) return std::unexpected(removed.error());
    metrics_.push_back(*removed);
    for (const RemovalReason& reason : kRemovalReasons) removal_cells_.push_back(&(*removed)->with({reason.label}));
    auto rejected = counter("ebpf_agent_http2_rejected_records",
                            "l7_payload records the http2 processor refused as malformed, by reason", "", {"reason"});
    if (!rejected) return std::unexpected(rejected.error());
    metrics_.push_back(*rejected);
    for (const char* label : kRejectionLabels) rejection_cells_.push_back(&(*rejected)->with({label}));
    return {};
  }

  ProcessOutcome process(std::span<const std::byte> input, RecordMeta& meta, std::string& /*fields*/) override {
    if (input.size() < sizeof(l7_payload_header))
      return reject(Rejection::Short, fmt::format("record of {} bytes, shorter than struct l7_payload_header ({})",
                                                  input.size(), sizeof(l7_payload_header)));
    l7_payload_header header;  // copied: batch bytes carry no alignment guarantee
    std::memcpy(&header, input.data(), sizeof(header));
    size_t data_size = input.size() - sizeof(header);
    if (header.len != data_size)
      return reject(Rejection::LengthMismatch,
                    fmt::format("record says {} payload bytes but carries {}", header.len, data_size));
    if (header.len > L7_CAPTURE_MAX)
      return reject(Rejection::TooLong,
                    fmt::format("{} payload bytes, more than L7_CAPTURE_MAX ({})", header.len, L7_CAPTURE_MAX));
    if (header.egress > 1 || header.tls > 1 || header.role > L7_ROLE_CLIENT || (header.flags & ~kKnownFlags))
      return reject(Rejection::BadField, fmt::format("egress {}, tls {}, role {}, flags {:#x}: not values "
                                                     "bpf/include/l7.h defines",
                                                     header.egress, header.tls, header.role, header.flags));

    const char* comm = reinterpret_cast<const char*>(input.data()) + offsetof(l7_payload_header, comm);
    meta.tgid = header.tgid;
    meta.comm = std::string_view(comm, strnlen(comm, sizeof(header.comm)));

    l7::CaptureChunk chunk;
    chunk.key = {header.tgid, header.fd, header.tls != 0, header.conn_id};
    chunk.time_ns = header.ts_ns;
    chunk.egress = header.egress != 0;
    if (header.role == L7_ROLE_SERVER) chunk.side = l7::CallSide::Server;
    if (header.role == L7_ROLE_CLIENT) chunk.side = l7::CallSide::Client;
    chunk.from_start = header.flags & L7_PAYLOAD_FROM_START;
    chunk.gap_after = header.flags & L7_PAYLOAD_TRUNCATED;
    chunk.closed = header.flags & L7_PAYLOAD_CLOSED;
    chunk.data = {reinterpret_cast<const uint8_t*>(input.data()) + sizeof(header), data_size};

    calls_.clear();
    table_.feed(chunk, calls_);
    for (const l7::CompletedCall& call : calls_) recorder_.record(call, meta.comm, chunk.key.tls);
    publish_health();
    return ProcessOutcome::Skipped;  // consumed: its output is the metrics
  }

  std::string_view error() const override { return error_; }

 private:
  ProcessOutcome reject(Rejection reason, std::string message) {
    rejection_cells_[static_cast<size_t>(reason)]->add(1);
    error_ = std::move(message);
    return ProcessOutcome::Failed;
  }

  // Adds what changed since the last record (the table's counters are cumulative).
  void publish_health() {
    const l7::CaptureTableCounters& now = table_.counters();
    if (now.connections != published_.connections)
      connections_->add(static_cast<double>(now.connections) - static_cast<double>(published_.connections));
    for (size_t i = 0; i < std::size(kHealthCounters); ++i) {
      auto field = kHealthCounters[i].field;
      if (now.*field != published_.*field) counter_cells_[i]->add(static_cast<double>(now.*field - published_.*field));
    }
    for (size_t i = 0; i < std::size(kRemovalReasons); ++i) {
      auto field = kRemovalReasons[i].field;
      if (now.*field != published_.*field) removal_cells_[i]->add(static_cast<double>(now.*field - published_.*field));
    }
    published_ = now;
  }

  l7::Http2CallRecorder recorder_;
  l7::Http2ConnectionTable table_;
  std::vector<l7::CompletedCall> calls_;  // scratch, reused per record
  std::vector<std::shared_ptr<Metric>> metrics_;  // keep the cells below alive
  SeriesCell* connections_ = nullptr;
  std::vector<SeriesCell*> counter_cells_;  // kHealthCounters order
  std::vector<SeriesCell*> removal_cells_;  // kRemovalReasons order
  std::vector<SeriesCell*> rejection_cells_;  // Rejection order
  l7::CaptureTableCounters published_;
  std::string error_;
};

Result<std::unique_ptr<Processor>> make_http2(const ProcessorContext& context) {
  // Calls are only ever reported as metrics: without a registry this processor has no output.
  if (!context.metrics || !context.spec)
    return failf("the http2 processor reports through the metric registry, and none was given");
  auto recorder = l7::Http2CallRecorder::create(*context.metrics, context.spec->name);
  if (!recorder) return std::unexpected(recorder.error());
  auto processor = std::make_unique<Http2Processor>(std::move(*recorder));
  if (auto health = processor->register_health(*context.metrics, context.spec->name); !health)
    return std::unexpected(health.error());
  return processor;
}

const BuiltinRegistration registration("http2", make_http2);

}  // namespace
}  // namespace ea
