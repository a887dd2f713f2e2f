#include "l7/grpc_calls.h"

#include <algorithm>
#include <charconv>
#include <string_view>

namespace ea::l7 {
namespace {

const std::string* find(const std::vector<HeaderField>& fields, std::string_view name) {
  for (const auto& f : fields)
    if (f.name == name) return &f.value;
  return nullptr;
}

int to_int(const std::string* text, int fallback) {
  if (text == nullptr) return fallback;
  int value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  return ec == std::errc() && end == text->data() + text->size() ? value : fallback;
}

// "/pkg.Service/Method" -> service, method. False if the path is not in gRPC form.
bool split_grpc_path(std::string_view path, std::string& service, std::string& method) {
  if (path.size() < 4 || path[0] != '/') return false;
  size_t slash = path.find('/', 1);
  if (slash == std::string_view::npos || slash == 1 || slash + 1 == path.size()) return false;
  if (path.find('/', slash + 1) != std::string_view::npos) return false;
  service = path.substr(1, slash - 1);
  method = path.substr(slash + 1);
  return true;
}

constexpr int kGrpcCancelled = 1;
constexpr int kGrpcUnknown = 2;

}  // namespace

void GrpcCallTracker::MessageCounter::feed(std::span<const uint8_t> data) {
  while (!data.empty()) {
    if (remaining > 0) {
      size_t n = std::min<uint64_t>(remaining, data.size());
      remaining -= n;
      data = data.subspan(n);
      continue;
    }
    prefix[header_bytes++] = data[0];
    data = data.subspan(1);
    if (header_bytes == 5) {
      header_bytes = 0;
      ++messages;
      remaining = (uint64_t{prefix[1]} << 24) | (uint64_t{prefix[2]} << 16) | (uint64_t{prefix[3]} << 8) | prefix[4];
    }
  }
}

GrpcCallTracker::GrpcCallTracker(CallSide side, size_t max_open_streams)
    : side_(side), max_open_(max_open_streams) {}

void GrpcCallTracker::on_headers(Http2Direction dir, uint32_t stream,
                                 const std::vector<HeaderField>& fields, bool end_stream,
                                 uint64_t time_ns) {
  if (dir == Http2Direction::ClientToServer) {
    auto it = open_.find(stream);
    if (it == open_.end()) {
      const std::string* method = find(fields, ":method");
      if (method == nullptr) {  // request trailers of a stream we never saw start
        ++counters_.streams_untracked;
        return;
      }
      if (open_.size() >= max_open_) {
        ++counters_.streams_dropped;
        return;
      }
      OpenCall call;
      call.start_ns = time_ns;
      call.call.side = side_;
      call.call.http_method = *method;
      if (const std::string* path = find(fields, ":path")) call.call.path = *path;
      const std::string* type = find(fields, "content-type");
      call.call.grpc = type != nullptr && type->starts_with("application/grpc") &&
                       split_grpc_path(call.call.path, call.call.service, call.call.method);
      it = open_.emplace(stream, std::move(call)).first;
    }
    if (end_stream) it->second.request_done = true;
    return;
  }
  auto it = open_.find(stream);
  if (it == open_.end()) {
    ++counters_.streams_untracked;
    return;
  }
  CompletedCall& call = it->second.call;
  if (const std::string* status = find(fields, ":status")) call.http_status = to_int(status, 0);
  if (const std::string* grpc_status = find(fields, "grpc-status")) {
    call.grpc_status = to_int(grpc_status, kGrpcUnknown);
  }
  // Responses end at END_STREAM: gRPC trailers (or a trailers-only response), or the last
  // frame of a plain HTTP/2 response.
  if (end_stream) {
    if (call.grpc && call.grpc_status < 0) call.grpc_status = kGrpcUnknown;  // no grpc-status: UNKNOWN
    finish(stream, time_ns);
  }
}

void GrpcCallTracker::on_undecodable_headers(Http2Direction dir, uint32_t stream, bool end_stream,
                                             uint64_t time_ns) {
  auto it = open_.find(stream);
  if (it == open_.end()) {
    if (dir == Http2Direction::ClientToServer) ++counters_.streams_untracked;
    return;
  }
  // A response we cannot read ends a call we know: its status is unknown, its latency is not.
  if (dir == Http2Direction::ServerToClient && end_stream) {
    if (it->second.call.grpc) it->second.call.grpc_status = kGrpcUnknown;
    finish(stream, time_ns);
  }
}

void GrpcCallTracker::on_data(Http2Direction dir, uint32_t stream, std::span<const uint8_t> data,
                              bool end_stream, uint64_t time_ns) {
  auto it = open_.find(stream);
  if (it == open_.end()) return;
  OpenCall& open = it->second;
  if (dir == Http2Direction::ClientToServer) {
    if (open.call.grpc) open.request.feed(data);
    if (end_stream) open.request_done = true;
    return;
  }
  if (open.call.grpc) open.response.feed(data);
  if (end_stream) {  // gRPC ends with trailers; a DATA END_STREAM means no grpc-status was sent
    if (open.call.grpc && open.call.grpc_status < 0) open.call.grpc_status = kGrpcUnknown;
    finish(stream, time_ns);
  }
}

void GrpcCallTracker::on_reset(Http2Direction, uint32_t stream, uint32_t, uint64_t time_ns) {
  auto it = open_.find(stream);
  if (it == open_.end()) return;
  it->second.call.reset = true;
  if (it->second.call.grpc && it->second.call.grpc_status < 0) it->second.call.grpc_status = kGrpcCancelled;
  finish(stream, time_ns);
}

void GrpcCallTracker::finish(uint32_t stream, uint64_t time_ns) {
  auto it = open_.find(stream);
  OpenCall& open = it->second;
  open.call.duration_ns = time_ns > open.start_ns ? time_ns - open.start_ns : 0;
  open.call.request_messages = open.request.messages;
  open.call.response_messages = open.response.messages;
  completed_.push_back(std::move(open.call));
  open_.erase(it);
  ++counters_.calls_completed;
}

std::vector<CompletedCall> GrpcCallTracker::take_completed() {
  std::vector<CompletedCall> out;
  out.swap(completed_);
  return out;
}

}  // namespace ea::l7
