// The on-disk record format of the Kafka spool. Every record is one self-checking frame, so a
// write torn by a crash (or any damaged byte) is detected and skipped, and reading can find the
// next good frame again by its magic:
//
//   u32 magic "EASP" | u32 body length | u32 CRC-32C of the body
//   body: u8 data kind | u8 flags | u16 zero | u32 key length | u64 time (ns) | key | value
//
// All integers little-endian.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ea {

inline constexpr uint32_t kSpoolFrameMagic = 0x50534145;  // "EASP" in file order
inline constexpr size_t kSpoolFramePrefix = 12;           // magic, body length, CRC
inline constexpr size_t kSpoolBodyHeader = 16;            // kind, flags, zero, key length, time
inline constexpr size_t kSpoolFrameOverhead = kSpoolFramePrefix + kSpoolBodyHeader;
// Larger bodies are refused when writing and treated as damage when reading (a corrupt length
// must not make the reader allocate gigabytes).
inline constexpr uint32_t kSpoolMaxBody = 64u << 20;

// flags
inline constexpr uint8_t kSpoolFlagWaited = 1;  // written while Kafka was behind (the spool buffered it)

struct SpoolFrame {
  uint8_t kind = 0;
  uint8_t flags = 0;
  uint64_t time_ns = 0;
  std::string_view key;
  std::string_view value;
};

inline size_t spool_frame_size(size_t key_size, size_t value_size) {
  return kSpoolFrameOverhead + key_size + value_size;
}

// Appends the encoded frame. The caller keeps key + value + kSpoolBodyHeader <= kSpoolMaxBody.
void append_spool_frame(const SpoolFrame& frame, std::string& out);

enum class FrameStatus { ok, incomplete, corrupt };

struct FrameParse {
  FrameStatus status = FrameStatus::corrupt;
  size_t size = 0;    // ok: the whole frame; incomplete: bytes needed to decide
  SpoolFrame frame;   // ok only; views into the parsed bytes
};

// Reads the frame at the start of `bytes`.
FrameParse parse_spool_frame(std::string_view bytes);

// Where the next frame magic starts in `bytes` at or after `from` (npos if none).
size_t find_spool_magic(std::string_view bytes, size_t from);

uint32_t crc32c(uint32_t crc, const void* data, size_t size);

}  // namespace ea
