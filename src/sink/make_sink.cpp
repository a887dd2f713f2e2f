#include <fmt/format.h>

#include "sink/clickhouse_sink.h"
#include "sink/file_sink.h"
#include "sink/kafka_sink.h"
#include "sink/output_description.h"
#include "sink/sink.h"
#include "sink/stdout_sink.h"
#include "tsdb/tsdb_sink.h"

namespace ea {

namespace {

constexpr std::string_view kUsage =
    "stdout | file:PATH[,max_bytes=SIZE][,keep=N] | tmpfs[:DIR][,max_bytes=SIZE][,keep=N]"
    " | kafka:BROKER[,BROKER...][,topic_prefix=P][,spool=DIR][,spool_max_bytes=SIZE][,queue_max_records=N][,acks=all|1|0][,stop_timeout=D][,rdkafka.PROP=V]"
    " | clickhouse:http://HOST:8123[,database=DB][,user=U][,password=P][,batch_records=N][,flush=2s][,queue_max=N]"
    " | tsdb[:DIR][,retention=15d][,max_size=1G][,flush=5s][,queue=64M]";

Result<std::unique_ptr<Sink>> make_file_sink(const OutputDescription& output, FileSinkOptions options) {
  if (auto checked = output.check_options({"max_bytes", "keep"}, kUsage); !checked)
    return std::unexpected(checked.error());
  auto max_bytes = output.size_option("max_bytes", options.max_bytes);
  if (!max_bytes) return std::unexpected(max_bytes.error());
  auto keep = output.size_option("keep", options.keep);
  if (!keep) return std::unexpected(keep.error());
  options.max_bytes = *max_bytes;
  options.keep = static_cast<unsigned>(*keep);
  auto sink = FileSink::open(std::move(options));
  if (!sink) return std::unexpected(sink.error());
  return std::unique_ptr<Sink>(std::move(*sink));
}

}  // namespace

std::string_view output_usage() { return kUsage; }

Result<std::unique_ptr<Sink>> make_sink(std::string_view description) {
  if (description == "-") description = "stdout";
  auto output = parse_output_description(description);
  if (!output) return std::unexpected(output.error());
  const std::string& kind = output->kind;
  if (kind == "stdout") {
    if (!output->target.empty() || !output->options.empty()) return failf("output 'stdout' takes no target or options");
    return std::unique_ptr<Sink>(new StdoutSink());
  }
  if (kind == "file") {
    if (output->target.empty()) return failf("output '{}': file needs a path (file:/var/log/ebpf-agent.jsonl)", description);
    return make_file_sink(*output, FileSinkOptions{.path = output->target});
  }
  if (kind == "clickhouse") return make_clickhouse_sink(*output);
  if (kind == "kafka") return make_kafka_sink(*output);
  if (kind == "tsdb") return tsdb::make_tsdb_sink(*output);
  if (kind == "tmpfs") {
    // Records kept in memory-backed files, as the talk's `storage: {tmpfs: true}`.
    std::string dir = output->target.empty() ? "/run/ebpf-agent/records" : output->target;
    return make_file_sink(*output, FileSinkOptions{.path = dir + "/records.jsonl", .kind = "tmpfs", .max_bytes = 16ull << 20});
  }
  return failf("unknown output kind '{}' in '{}': use {}", kind, description, kUsage);
}

}  // namespace ea
