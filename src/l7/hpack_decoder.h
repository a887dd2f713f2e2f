// HPACK header block decoder (RFC 7541) with a per-connection dynamic table. Hostile input is
// bounded (string length, header list size, table size) and reported as a status, never a crash.
// A decoder whose table history is unknown (connection first seen mid-stream, or after an error)
// decodes only blocks that use static and literal entries plus entries it saw inserted.
#pragma once
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ea::l7 {

struct HeaderField {
  std::string name;
  std::string value;
  bool operator==(const HeaderField&) const = default;
};

struct HpackLimits {
  size_t max_string_length = 16 * 1024;
  size_t max_header_list_size = 64 * 1024;  // sum of name + value + 32 per field (RFC 7540 6.5.2)
  size_t max_table_size = 64 * 1024;        // cap on any SETTINGS_HEADER_TABLE_SIZE we honour
};

enum class HpackStatus {
  Ok,
  Truncated,            // block ends inside a representation
  IntegerOverflow,      // integer longer than 32 bits
  StringTooLong,        // over HpackLimits::max_string_length
  HeaderListTooLarge,   // over HpackLimits::max_header_list_size
  BadHuffman,           // invalid padding or EOS inside a string
  IndexZero,            // index 0 is not a valid reference
  IndexOutOfRange,      // past the static + dynamic table of a decoder that knows its table
  UnknownDynamicIndex,  // table history unknown: the entry was inserted before we started seeing
  BadTableSizeUpdate,   // over the allowed maximum, or after the first field of a block
};

std::string_view describe(HpackStatus status);

class HpackDecoder {
 public:
  // `table_known` = false for a connection first seen mid-stream.
  explicit HpackDecoder(bool table_known = true, HpackLimits limits = {});

  // Decodes one complete header block into `out` (cleared first). On any error the dynamic table
  // is no longer trustworthy: it is dropped and the decoder becomes table-unknown.
  HpackStatus decode(std::span<const uint8_t> block, std::vector<HeaderField>& out);

  // SETTINGS_HEADER_TABLE_SIZE announced by the receiving side (bounds size updates).
  void set_max_table_size_setting(uint32_t size);
  // Forget the table (e.g. the byte stream lost sync).
  void mark_table_unknown();

  bool table_known() const { return table_known_; }
  // True once a block decoded cleanly since the decoder was created or lost its table.
  bool reliable() const { return reliable_; }
  size_t dynamic_entries() const { return table_.size(); }
  size_t dynamic_size() const { return table_bytes_; }
  size_t dynamic_capacity() const { return capacity_; }

 private:
  HpackStatus decode_block(std::span<const uint8_t> block, std::vector<HeaderField>& out);
  HpackStatus lookup(uint64_t index, const HeaderField*& field) const;
  void insert(HeaderField field);
  void evict_to(size_t capacity);

  HpackLimits limits_;
  bool table_known_;
  bool reliable_;
  uint32_t setting_max_ = 4096;
  size_t capacity_ = 4096;
  size_t table_bytes_ = 0;
  std::deque<HeaderField> table_;  // front = newest = index 62
};

}  // namespace ea::l7
