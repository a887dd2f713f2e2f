#include "l7/hpack_decoder.h"

#include <algorithm>
#include <array>

#include "l7/hpack_huffman.h"

namespace ea::l7 {
namespace {

struct StaticEntry {
  std::string_view name;
  std::string_view value;
};

// RFC 7541 Appendix A, index 1..61.
constexpr std::array<StaticEntry, 61> kStaticTable{{
    {":authority", ""}, {":method", "GET"}, {":method", "POST"}, {":path", "/"},
    {":path", "/index.html"}, {":scheme", "http"}, {":scheme", "https"}, {":status", "200"},
    {":status", "204"}, {":status", "206"}, {":status", "304"}, {":status", "400"},
    {":status", "404"}, {":status", "500"}, {"accept-charset", ""},
    {"accept-encoding", "gzip, deflate"}, {"accept-language", ""}, {"accept-ranges", ""},
    {"accept", ""}, {"access-control-allow-origin", ""}, {"age", ""}, {"allow", ""},
    {"authorization", ""}, {"cache-control", ""}, {"content-disposition", ""},
    {"content-encoding", ""}, {"content-language", ""}, {"content-length", ""},
    {"content-location", ""}, {"content-range", ""}, {"content-type", ""}, {"cookie", ""},
    {"date", ""}, {"etag", ""}, {"expect", ""}, {"expires", ""}, {"from", ""}, {"host", ""},
    {"if-match", ""}, {"if-modified-since", ""}, {"if-none-match", ""}, {"if-range", ""},
    {"if-unmodified-since", ""}, {"last-modified", ""}, {"link", ""}, {"location", ""},
    {"max-forwards", ""}, {"proxy-authenticate", ""}, {"proxy-authorization", ""},
    {"range", ""}, {"referer", ""}, {"refresh", ""}, {"retry-after", ""}, {"server", ""},
    {"set-cookie", ""}, {"strict-transport-security", ""}, {"transfer-encoding", ""},
    {"user-agent", ""}, {"vary", ""}, {"via", ""}, {"www-authenticate", ""},
}};

constexpr size_t kEntryOverhead = 32;  // RFC 7541 4.1

size_t entry_size(const HeaderField& f) { return f.name.size() + f.value.size() + kEntryOverhead; }

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> data) : data_(data) {}
  bool done() const { return pos_ >= data_.size(); }
  uint8_t peek() const { return data_[pos_]; }

  // RFC 7541 5.1, values up to 2^32.
  HpackStatus integer(int prefix_bits, uint64_t& value) {
    if (done()) return HpackStatus::Truncated;
    uint8_t mask = static_cast<uint8_t>((1u << prefix_bits) - 1);
    value = data_[pos_++] & mask;
    if (value < mask) return HpackStatus::Ok;
    for (int shift = 0;; shift += 7) {
      if (done()) return HpackStatus::Truncated;
      if (shift > 28) return HpackStatus::IntegerOverflow;
      uint8_t b = data_[pos_++];
      value += static_cast<uint64_t>(b & 0x7f) << shift;
      if (value > 0xffffffffull) return HpackStatus::IntegerOverflow;
      if ((b & 0x80) == 0) return HpackStatus::Ok;
    }
  }

  // RFC 7541 5.2.
  HpackStatus string(const HpackLimits& limits, std::string& out) {
    if (done()) return HpackStatus::Truncated;
    bool huffman = (peek() & 0x80) != 0;
    uint64_t length = 0;
    if (auto s = integer(7, length); s != HpackStatus::Ok) return s;
    if (length > data_.size() - pos_) return HpackStatus::Truncated;
    auto bytes = data_.subspan(pos_, length);
    pos_ += length;
    out.clear();
    if (!huffman) {
      if (length > limits.max_string_length) return HpackStatus::StringTooLong;
      out.assign(bytes.begin(), bytes.end());
      return HpackStatus::Ok;
    }
    switch (huffman_decode(bytes, out, limits.max_string_length)) {
      case HuffmanStatus::Ok: return HpackStatus::Ok;
      case HuffmanStatus::TooLong: return HpackStatus::StringTooLong;
      default: return HpackStatus::BadHuffman;
    }
  }

 private:
  std::span<const uint8_t> data_;
  size_t pos_ = 0;
};

}  // namespace

std::string_view describe(HpackStatus status) {
  switch (status) {
    case HpackStatus::Ok: return "ok";
    case HpackStatus::Truncated: return "header block truncated inside a field";
    case HpackStatus::IntegerOverflow: return "HPACK integer exceeds 32 bits";
    case HpackStatus::StringTooLong: return "header string exceeds the length limit";
    case HpackStatus::HeaderListTooLarge: return "header list exceeds the size limit";
    case HpackStatus::BadHuffman: return "invalid Huffman padding or EOS in a string";
    case HpackStatus::IndexZero: return "header index 0";
    case HpackStatus::IndexOutOfRange: return "header index past the static and dynamic table";
    case HpackStatus::UnknownDynamicIndex: return "dynamic table entry inserted before capture started";
    case HpackStatus::BadTableSizeUpdate: return "invalid dynamic table size update";
  }
  return "unknown";
}

HpackDecoder::HpackDecoder(bool table_known, HpackLimits limits)
    : limits_(limits), table_known_(table_known), reliable_(table_known) {}

void HpackDecoder::set_max_table_size_setting(uint32_t size) {
  setting_max_ = static_cast<uint32_t>(std::min<size_t>(size, limits_.max_table_size));
  if (capacity_ > setting_max_) {
    capacity_ = setting_max_;
    evict_to(capacity_);
  }
}

void HpackDecoder::mark_table_unknown() {
  table_.clear();
  table_bytes_ = 0;
  table_known_ = false;
  reliable_ = false;
}

HpackStatus HpackDecoder::decode(std::span<const uint8_t> block, std::vector<HeaderField>& out) {
  out.clear();
  HpackStatus status = decode_block(block, out);
  if (status != HpackStatus::Ok) {
    // Part of the block may have changed the table in ways we did not follow.
    mark_table_unknown();
    out.clear();
    return status;
  }
  reliable_ = true;
  return status;
}

HpackStatus HpackDecoder::lookup(uint64_t index, const HeaderField*& field) const {
  if (index == 0) return HpackStatus::IndexZero;
  uint64_t dyn = index - kStaticTable.size() - 1;
  if (dyn < table_.size()) {
    field = &table_[dyn];
    return HpackStatus::Ok;
  }
  return table_known_ ? HpackStatus::IndexOutOfRange : HpackStatus::UnknownDynamicIndex;
}

void HpackDecoder::evict_to(size_t capacity) {
  while (table_bytes_ > capacity && !table_.empty()) {
    table_bytes_ -= entry_size(table_.back());
    table_.pop_back();
  }
}

void HpackDecoder::insert(HeaderField field) {
  size_t size = entry_size(field);
  // RFC 7541 4.4: an entry larger than the table empties it and is not added.
  evict_to(size > capacity_ ? 0 : capacity_ - size);
  if (size > capacity_) return;
  table_bytes_ += size;
  table_.push_front(std::move(field));
  // With an unknown history, entries we never saw fill the rest of the table; ours stay the
  // newest and are evicted last, so lookups into them remain correct.
}

HpackStatus HpackDecoder::decode_block(std::span<const uint8_t> block, std::vector<HeaderField>& out) {
  Reader in(block);
  size_t list_size = 0;
  bool field_seen = false;
  auto emit = [&](HeaderField field) {
    list_size += entry_size(field);
    if (list_size > limits_.max_header_list_size) return HpackStatus::HeaderListTooLarge;
    out.push_back(std::move(field));
    return HpackStatus::Ok;
  };
  while (!in.done()) {
    uint8_t first = in.peek();
    HpackStatus s = HpackStatus::Ok;
    if (first & 0x80) {  // 6.1 indexed field
      uint64_t index = 0;
      if ((s = in.integer(7, index)) != HpackStatus::Ok) return s;
      if (index >= 1 && index <= kStaticTable.size()) {
        const auto& e = kStaticTable[index - 1];
        s = emit({std::string(e.name), std::string(e.value)});
      } else {
        const HeaderField* f = nullptr;
        if ((s = lookup(index, f)) != HpackStatus::Ok) return s;
        s = emit(*f);
      }
      if (s != HpackStatus::Ok) return s;
      field_seen = true;
      continue;
    }
    if ((first & 0xe0) == 0x20) {  // 6.3 dynamic table size update, only before the first field
      uint64_t size = 0;
      if ((s = in.integer(5, size)) != HpackStatus::Ok) return s;
      if (field_seen || size > std::max<size_t>(setting_max_, table_known_ ? 0 : 4096) ||
          size > limits_.max_table_size)
        return HpackStatus::BadTableSizeUpdate;
      capacity_ = size;
      evict_to(capacity_);
      continue;
    }
    // 6.2 literals: with incremental indexing (01), without (0000), never indexed (0001).
    bool incremental = (first & 0xc0) == 0x40;
    int prefix = incremental ? 6 : 4;
    uint64_t index = 0;
    if ((s = in.integer(prefix, index)) != HpackStatus::Ok) return s;
    HeaderField field;
    if (index == 0) {
      if ((s = in.string(limits_, field.name)) != HpackStatus::Ok) return s;
    } else if (index <= kStaticTable.size()) {
      field.name = kStaticTable[index - 1].name;
    } else {
      const HeaderField* f = nullptr;
      if ((s = lookup(index, f)) != HpackStatus::Ok) return s;
      field.name = f->name;
    }
    if ((s = in.string(limits_, field.value)) != HpackStatus::Ok) return s;
    if (incremental) insert(field);
    if ((s = emit(std::move(field))) != HpackStatus::Ok) return s;
    field_seen = true;
  }
  return HpackStatus::Ok;
}

}  // namespace ea::l7
