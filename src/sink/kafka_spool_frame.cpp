#include "sink/kafka_spool_frame.h"

#include <array>
#include <cstring>

namespace ea {

namespace {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), slice-by-8 tables built once.
using CrcTables = std::array<std::array<uint32_t, 256>, 8>;

CrcTables make_crc_tables() {
  CrcTables tables{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    tables[0][i] = crc;
  }
  for (uint32_t i = 0; i < 256; ++i)
    for (size_t t = 1; t < 8; ++t) tables[t][i] = (tables[t - 1][i] >> 8) ^ tables[0][tables[t - 1][i] & 0xff];
  return tables;
}

const CrcTables& crc_tables() {
  static const CrcTables tables = make_crc_tables();
  return tables;
}

void put_u16(std::string& out, uint16_t value) {
  char bytes[2] = {static_cast<char>(value), static_cast<char>(value >> 8)};
  out.append(bytes, 2);
}
void put_u32(std::string& out, uint32_t value) {
  char bytes[4];
  for (int i = 0; i < 4; ++i) bytes[i] = static_cast<char>(value >> (8 * i));
  out.append(bytes, 4);
}
void put_u64(std::string& out, uint64_t value) {
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(value >> (8 * i));
  out.append(bytes, 8);
}
uint32_t get_u32(const char* p) {
  uint32_t value = 0;
  for (int i = 3; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(p[i]);
  return value;
}
uint64_t get_u64(const char* p) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(p[i]);
  return value;
}

}  // namespace

uint32_t crc32c(uint32_t crc, const void* data, size_t size) {
  const CrcTables& t = crc_tables();
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  while (size >= 8) {
    uint32_t low = crc ^ (uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24);
    crc = t[7][low & 0xff] ^ t[6][(low >> 8) & 0xff] ^ t[5][(low >> 16) & 0xff] ^ t[4][low >> 24] ^ t[3][p[4]] ^
          t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    size -= 8;
  }
  while (size--) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
  return ~crc;
}

void append_spool_frame(const SpoolFrame& frame, std::string& out) {
  size_t start = out.size();
  auto body_size = static_cast<uint32_t>(kSpoolBodyHeader + frame.key.size() + frame.value.size());
  put_u32(out, kSpoolFrameMagic);
  put_u32(out, body_size);
  put_u32(out, 0);  // CRC, filled in below
  out.push_back(static_cast<char>(frame.kind));
  out.push_back(static_cast<char>(frame.flags));
  put_u16(out, 0);
  put_u32(out, static_cast<uint32_t>(frame.key.size()));
  put_u64(out, frame.time_ns);
  out.append(frame.key);
  out.append(frame.value);
  uint32_t crc = crc32c(0, out.data() + start + kSpoolFramePrefix, body_size);
  for (int i = 0; i < 4; ++i) out[start + 8 + i] = static_cast<char>(crc >> (8 * i));
}

FrameParse parse_spool_frame(std::string_view bytes) {
  FrameParse result;
  if (bytes.size() < kSpoolFramePrefix) {
    // A short prefix can still be told apart from damage by the magic bytes it has.
    char magic[4];
    for (int i = 0; i < 4; ++i) magic[i] = static_cast<char>(kSpoolFrameMagic >> (8 * i));
    if (std::memcmp(bytes.data(), magic, std::min<size_t>(bytes.size(), 4)) != 0) return result;
    result.status = FrameStatus::incomplete;
    result.size = kSpoolFramePrefix;
    return result;
  }
  const char* p = bytes.data();
  if (get_u32(p) != kSpoolFrameMagic) return result;
  uint32_t body_size = get_u32(p + 4);
  if (body_size < kSpoolBodyHeader || body_size > kSpoolMaxBody) return result;
  size_t frame_size = kSpoolFramePrefix + body_size;
  if (bytes.size() < frame_size) {
    result.status = FrameStatus::incomplete;
    result.size = frame_size;
    return result;
  }
  const char* body = p + kSpoolFramePrefix;
  if (crc32c(0, body, body_size) != get_u32(p + 8)) return result;
  uint32_t key_size = get_u32(body + 4);
  if (key_size > body_size - kSpoolBodyHeader) return result;
  result.status = FrameStatus::ok;
  result.size = frame_size;
  result.frame.kind = static_cast<uint8_t>(body[0]);
  result.frame.flags = static_cast<uint8_t>(body[1]);
  result.frame.time_ns = get_u64(body + 8);
  result.frame.key = std::string_view(body + kSpoolBodyHeader, key_size);
  result.frame.value = std::string_view(body + kSpoolBodyHeader + key_size, body_size - kSpoolBodyHeader - key_size);
  return result;
}

size_t find_spool_magic(std::string_view bytes, size_t from) {
  char magic[4];
  for (int i = 0; i < 4; ++i) magic[i] = static_cast<char>(kSpoolFrameMagic >> (8 * i));
  if (from >= bytes.size()) return std::string_view::npos;
  return bytes.find(std::string_view(magic, 4), from);
}

}  // namespace ea
