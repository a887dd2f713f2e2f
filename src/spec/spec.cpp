#include "spec/spec.h"

#include <algorithm>

#include <fmt/format.h>

namespace ea {

std::string SourcePos::str() const {
  if (line <= 0) return file;
  if (column <= 0) return fmt::format("{}:{}", file, line);
  return fmt::format("{}:{}:{}", file, line, column);
}

std::string_view to_string(ProgramType type) {
  switch (type) {
    case ProgramType::EbpfObject: return "ebpf_object";
    case ProgramType::Bpftrace: return "bpftrace";
    case ProgramType::UserSo: return "user_so";
  }
  return "unknown";
}

std::string_view to_string(ChannelType type) {
  switch (type) {
    case ChannelType::RingBuffer: return "ring_buffer";
    case ChannelType::PerfBuffer: return "perf_buffer";
    case ChannelType::Pipe: return "pipe";
  }
  return "unknown";
}

std::string_view to_string(LabelDecoderKind kind) {
  switch (kind) {
    case LabelDecoderKind::Uint: return "uint";
    case LabelDecoderKind::Int: return "int";
    case LabelDecoderKind::String: return "string";
    case LabelDecoderKind::Hex: return "hex";
    case LabelDecoderKind::InetIp: return "inet_ip";
    case LabelDecoderKind::Ksym: return "ksym";
    case LabelDecoderKind::StaticMap: return "static_map";
    case LabelDecoderKind::Regexp: return "regexp";
  }
  return "unknown";
}

std::string_view to_string(BucketType type) {
  switch (type) {
    case BucketType::Exp2: return "exp2";
    case BucketType::Linear: return "linear";
    case BucketType::Fixed: return "fixed";
  }
  return "unknown";
}

const ProgramSpec* Spec::find_program(std::string_view wanted) const {
  auto it = std::ranges::find(programs, wanted, &ProgramSpec::name);
  return it == programs.end() ? nullptr : &*it;
}

const ChannelSpec* Spec::find_channel(std::string_view wanted) const {
  auto it = std::ranges::find(channels, wanted, &ChannelSpec::name);
  return it == channels.end() ? nullptr : &*it;
}

const std::vector<EventSpec>& Spec::events_for(const ChannelSpec& channel) const {
  return channel.events.empty() ? events : channel.events;
}

}  // namespace ea
