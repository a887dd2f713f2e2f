#include "loader/libbpf_log.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <vector>

#include <spdlog/spdlog.h>

namespace ea {
namespace {

// libbpf has one process-wide print hook; captures are per thread so that specs loading in
// parallel do not see each other's verifier logs.
thread_local LibbpfLogCapture* active_capture = nullptr;

constexpr std::string_view kLibbpfPrefix = "libbpf: ";
// Verifier logs can be megabytes; an error message needs the tail, so bound what is kept.
constexpr size_t kMaxCapturedBytes = 4u << 20;
constexpr size_t kMaxSummaryWarnings = 12;

int print_hook(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG && !spdlog::should_log(spdlog::level::trace)) return 0;
  va_list copy;
  va_copy(copy, args);
  int length = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  if (length <= 0) return 0;
  std::string message(static_cast<size_t>(length) + 1, '\0');
  std::vsnprintf(message.data(), message.size(), format, args);
  message.resize(static_cast<size_t>(length));

  if (level != LIBBPF_DEBUG && active_capture) {
    active_capture->append(message);
    spdlog::debug("{}", message);
    return length;
  }
  while (!message.empty() && message.back() == '\n') message.pop_back();
  switch (level) {
    case LIBBPF_WARN: spdlog::warn("{}", message); break;
    case LIBBPF_INFO: spdlog::debug("{}", message); break;
    case LIBBPF_DEBUG: spdlog::trace("{}", message); break;
  }
  return length;
}

void install_print_hook() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(print_hook); });
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    if (!line.empty()) lines.push_back(line);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

std::string_view without_prefix(std::string_view line) {
  if (line.starts_with(kLibbpfPrefix)) line.remove_prefix(kLibbpfPrefix.size());
  return line;
}

}  // namespace

LibbpfLogCapture::LibbpfLogCapture() : outer_(active_capture) {
  install_print_hook();
  active_capture = this;
}

LibbpfLogCapture::~LibbpfLogCapture() { active_capture = outer_; }

void LibbpfLogCapture::append(std::string_view message) {
  text_ += message;
  if (!text_.ends_with('\n')) text_ += '\n';
  if (text_.size() > kMaxCapturedBytes) {
    size_t cut = text_.find('\n', text_.size() - kMaxCapturedBytes / 2);
    text_.erase(0, cut == std::string::npos ? text_.size() - kMaxCapturedBytes / 2 : cut + 1);
  }
}

std::string LibbpfLogCapture::failure_summary(size_t max_log_lines) const {
  static constexpr std::string_view kBegin = "-- BEGIN PROG LOAD LOG --";
  static constexpr std::string_view kEnd = "-- END PROG LOAD LOG --";
  static constexpr std::string_view kLoadFailed = "BPF program load failed";
  std::string summary;
  std::string_view text = text_;
  size_t begin = text.rfind(kBegin);
  if (begin != std::string_view::npos) {
    std::string_view before = text.substr(0, begin);
    if (size_t failed = before.rfind(kLoadFailed); failed != std::string_view::npos) {
      size_t line_start = before.rfind('\n', failed);
      line_start = line_start == std::string_view::npos ? 0 : line_start + 1;
      size_t line_end = before.find('\n', failed);
      summary += "  ";
      summary += without_prefix(before.substr(line_start, line_end - line_start));
      summary += '\n';
    }
    std::string_view log = text.substr(begin + kBegin.size());
    if (size_t end = log.find(kEnd); end != std::string_view::npos) log = log.substr(0, end);
    auto lines = split_lines(log);
    size_t first = lines.size() > max_log_lines ? lines.size() - max_log_lines : 0;
    summary += lines.size() > max_log_lines
                   ? fmt::format("  verifier log (last {} of {} lines):\n", max_log_lines, lines.size())
                   : std::string("  verifier log:\n");
    for (size_t i = first; i < lines.size(); ++i) {
      summary += "    ";
      summary += lines[i];
      summary += '\n';
    }
    return summary;
  }
  auto lines = split_lines(text);
  size_t first = lines.size() > kMaxSummaryWarnings ? lines.size() - kMaxSummaryWarnings : 0;
  for (size_t i = first; i < lines.size(); ++i) {
    summary += "  ";
    summary += without_prefix(lines[i]);
    summary += '\n';
  }
  return summary;
}

std::string LibbpfLogCapture::failed_program() const {
  static constexpr std::string_view kPrefix = "prog '";
  static constexpr std::string_view kSuffix = "': BPF program load failed";
  std::string_view text = text_;
  size_t suffix = text.rfind(kSuffix);
  if (suffix == std::string_view::npos) return {};
  size_t prefix = text.rfind(kPrefix, suffix);
  if (prefix == std::string_view::npos) return {};
  return std::string(text.substr(prefix + kPrefix.size(), suffix - prefix - kPrefix.size()));
}

}  // namespace ea
