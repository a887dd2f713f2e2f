// JSON lines on standard output, for `ebpf-agent run` in a terminal or a pipe.
#pragma once
#include <mutex>

#include "sink/sink.h"

namespace ea {

class StdoutSink : public Sink {
 public:
  std::string name() const override { return "stdout"; }
  void write(const RecordBatch& batch, std::string_view jsonl) override;
  void flush() override;
  void stop() override { flush(); }

 private:
  std::mutex mutex_;
};

}  // namespace ea
