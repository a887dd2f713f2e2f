// An `ebpf_object` program: a CO-RE .bpf.o opened, configured, loaded and attached through libbpf.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "loader/fetch.h"
#include "spec/spec.h"

struct bpf_object;
struct bpf_map;
struct bpf_link;
struct btf;

namespace ea {

class EbpfObject {
 public:
  // Opens the object and applies the spec's `progs`, `variables` and map `max_entries`
  // (not loaded yet). Errors name the spec position of the offending property.
  static Result<std::unique_ptr<EbpfObject>> open(const ProgramSpec& program, FetchedFile file);
  ~EbpfObject();  // detaches and closes everything

  const std::string& name() const { return name_; }

  // Between open() and load(): used by the spec properties and by user_so preload hooks.
  Result<void> set_variable(std::string_view name, std::span<const std::byte> bytes);
  Result<void> set_map_max_entries(std::string_view map, uint32_t max_entries);

  // Loads into the kernel (a verifier rejection returns the tail of the verifier log), then
  // writes the spec's initial map entries (typed through BTF).
  Result<void> load();

  // After load(): used by user_so postload hooks and channels.
  Result<void> map_update(std::string_view map, std::span<const std::byte> key, std::span<const std::byte> value);
  int map_fd(std::string_view map) const;  // -1 when absent
  bool has_map(std::string_view map) const;
  int map_type(std::string_view map) const;  // enum bpf_map_type, -1 when absent

  // Attaches every loaded program (SEC() name plus `attach` options). A hook type this kernel
  // lacks gives an error that says so. Idempotent; detach() too.
  Result<void> attach();
  void detach();
  std::vector<std::string> attach_points() const;  // "tracepoint/oom/mark_victim", "uprobe /usr/lib/..:SSL_read"

  bpf_object* object() const { return object_; }
  const struct btf* btf() const;
  // BTF type id of `struct NAME` in this object, 0 when absent.
  int find_struct(std::string_view name) const;

  // Sum of kernel run counts/time (bpf_stats) over this object's programs, when enabled.
  struct RunStats {
    uint64_t run_count = 0;
    uint64_t run_time_ns = 0;
  };
  RunStats run_stats() const;

 private:
  EbpfObject() = default;
  std::string name_;
  ProgramSpec spec_;
  FetchedFile file_;
  bpf_object* object_ = nullptr;
  std::vector<bpf_link*> links_;  // perf-event links own their perf event fds
  std::vector<std::function<void()>> detachers_;  // attachments that are not links (TC filters, XDP modes)
  std::vector<std::string> attach_points_;
  bool loaded_ = false;
  bool attached_ = false;
  friend struct EbpfObjectAccess;
};

}  // namespace ea
