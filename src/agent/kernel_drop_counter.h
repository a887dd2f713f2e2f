// Reads a BPF program's own count of records it could not reserve in its ring buffer.
#pragma once
#include <cstdint>
#include <string>

namespace ea {

class EbpfObject;

// Convention: a global `__u64 <channel>_dropped` in the object's .bss (or .data), incremented
// when bpf_ringbuf_reserve fails. Returns a pointer into the mmaped global data, or null.
const volatile uint64_t* find_kernel_drop_counter(const EbpfObject& object, const std::string& variable);

}  // namespace ea
