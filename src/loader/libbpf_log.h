// libbpf's print output, captured per thread while a capture is alive (so a failed open, load or
// attach can report what libbpf and the verifier said) and sent to the agent's log otherwise.
#pragma once
#include <string>
#include <string_view>

namespace ea {

class LibbpfLogCapture {
 public:
  LibbpfLogCapture();  // starts capturing this thread's libbpf warnings (nests: the inner one wins)
  ~LibbpfLogCapture();
  LibbpfLogCapture(const LibbpfLogCapture&) = delete;
  LibbpfLogCapture& operator=(const LibbpfLogCapture&) = delete;

  const std::string& text() const { return text_; }
  void append(std::string_view message);  // called by the libbpf print hook

  // The part of what was captured that explains a failure: for a verifier rejection, libbpf's
  // error line plus the last `max_log_lines` lines of the verifier log; otherwise the last libbpf
  // warnings. Each line is indented; empty when nothing was captured.
  std::string failure_summary(size_t max_log_lines = 40) const;

  // The program libbpf reported as failing to load ("prog 'NAME': BPF program load failed"),
  // empty when none did.
  std::string failed_program() const;

 private:
  std::string text_;
  LibbpfLogCapture* outer_ = nullptr;
};

}  // namespace ea
