#include "tsdb/chunk_codec.h"

#include <bit>
#include <cmath>

#include "tsdb/varint.h"

namespace ea::tsdb {

namespace {

struct Bucket {
  unsigned prefix_ones;  // the code is this many 1 bits then a 0 (none after the last bucket)
  unsigned bits;
};
constexpr Bucket kTimeBuckets[] = {{1, 5}, {2, 14}, {3, 20}, {4, 64}};
constexpr Bucket kIntegerBuckets[] = {{1, 6}, {2, 13}, {3, 20}, {4, 32}, {5, 64}};

bool fits_signed(int64_t value, unsigned bits) {
  if (bits >= 64) return true;
  int64_t limit = int64_t{1} << (bits - 1);
  return value >= -limit && value < limit;
}

int64_t sign_extend(uint64_t value, unsigned bits) {
  if (bits >= 64) return static_cast<int64_t>(value);
  uint64_t sign = uint64_t{1} << (bits - 1);
  return static_cast<int64_t>((value ^ sign) - sign);
}

// '0' for zero, else the first bucket the value fits: prefix of ones, a closing 0 unless it is
// the last bucket, then the value in the bucket's width.
template <size_t N>
void write_dod(BitWriter& bits, int64_t dod, const Bucket (&buckets)[N]) {
  if (dod == 0) {
    bits.write_bit(false);
    return;
  }
  for (size_t i = 0; i < N; ++i) {
    const Bucket& bucket = buckets[i];
    if (!fits_signed(dod, bucket.bits)) continue;
    bool last = i + 1 == N;
    uint64_t prefix = ((uint64_t{1} << bucket.prefix_ones) - 1) << (last ? 0 : 1);
    bits.write(prefix, bucket.prefix_ones + (last ? 0 : 1));
    bits.write(static_cast<uint64_t>(dod), bucket.bits);
    return;
  }
}

template <size_t N>
bool read_dod(BitReader& bits, int64_t& dod, const Bucket (&buckets)[N]) {
  unsigned ones = 0;
  if (!bits.read_ones(buckets[N - 1].prefix_ones, ones)) return false;
  if (ones == 0) {
    dod = 0;
    return true;
  }
  const Bucket& bucket = buckets[ones - 1];
  uint64_t raw = 0;
  if (!bits.read(bucket.bits, raw)) return false;
  dod = sign_extend(raw, bucket.bits);
  return true;
}

Error malformed(std::string_view what) { return Error{std::string("malformed chunk: ") + std::string(what)}; }

}  // namespace

bool integer_representable(double value) {
  constexpr double kLimit = 9007199254740992.0;  // 2^53: every integer up to here is exact
  if (!std::isfinite(value) || std::fabs(value) > kLimit) return false;
  if (value == 0 && std::signbit(value)) return false;
  return std::trunc(value) == value;
}

void ChunkEncoder::write_time(int64_t time_ms) {
  uint64_t delta = static_cast<uint64_t>(time_ms) - static_cast<uint64_t>(last_time_);
  write_dod(bits_, static_cast<int64_t>(delta - last_time_delta_), kTimeBuckets);
  last_time_delta_ = delta;
  last_time_ = time_ms;
}

void ChunkEncoder::write_xor_value(double value) {
  uint64_t value_bits = std::bit_cast<uint64_t>(value);
  uint64_t xor_bits = value_bits ^ last_value_bits_;
  last_value_bits_ = value_bits;
  if (xor_bits == 0) {
    bits_.write_bit(false);
    return;
  }
  auto leading = static_cast<unsigned>(std::countl_zero(xor_bits));
  auto trailing = static_cast<unsigned>(std::countr_zero(xor_bits));
  if (leading_ != 0xff && leading >= leading_ && trailing >= trailing_) {
    bits_.write(0b10, 2);
    bits_.write(xor_bits >> trailing_, 64 - leading_ - trailing_);
    return;
  }
  unsigned meaningful = 64 - leading - trailing;
  bits_.write(0b11, 2);
  bits_.write(leading, 6);
  bits_.write(meaningful - 1, 6);
  bits_.write(xor_bits >> trailing, meaningful);
  leading_ = leading;
  trailing_ = trailing;
}

void ChunkEncoder::write_integer_value(int64_t value) {
  uint64_t delta = static_cast<uint64_t>(value) - last_value_bits_;
  write_dod(bits_, static_cast<int64_t>(delta - last_value_delta_), kIntegerBuckets);
  last_value_delta_ = delta;
  last_value_bits_ = static_cast<uint64_t>(value);
}

bool ChunkEncoder::append(int64_t time_ms, double value) {
  if (encoding_ == ChunkEncoding::Integer && !integer_representable(value)) return false;
  if (samples_ > 0 && time_ms <= last_time_) return false;
  if (samples_ == 0) {
    first_time_ = last_time_ = time_ms;
    put_varint(header_, zigzag(time_ms));
    if (encoding_ == ChunkEncoding::Xor) {
      last_value_bits_ = std::bit_cast<uint64_t>(value);
      for (int shift = 56; shift >= 0; shift -= 8) header_.push_back(static_cast<char>(last_value_bits_ >> shift));
    } else {
      auto integer = static_cast<int64_t>(value);
      last_value_bits_ = static_cast<uint64_t>(integer);
      put_varint(header_, zigzag(integer));
    }
  } else {
    write_time(time_ms);
    if (encoding_ == ChunkEncoding::Xor)
      write_xor_value(value);
    else
      write_integer_value(static_cast<int64_t>(value));
  }
  ++samples_;
  return true;
}

std::string ChunkEncoder::bytes() const {
  std::string out;
  out.reserve(size_bytes());
  out.push_back(static_cast<char>(encoding_));
  put_varint(out, samples_);
  out.append(header_);
  bits_.append_to(out);
  return out;
}

Result<std::vector<Sample>> decode_chunk(std::string_view bytes) {
  if (bytes.empty()) return std::unexpected(malformed("empty"));
  auto encoding = static_cast<ChunkEncoding>(bytes[0]);
  if (encoding != ChunkEncoding::Xor && encoding != ChunkEncoding::Integer)
    return std::unexpected(malformed("unknown encoding " + std::to_string(static_cast<uint8_t>(bytes[0]))));
  std::string_view rest = bytes.substr(1);
  uint64_t count = 0;
  if (!get_varint(rest, count)) return std::unexpected(malformed("truncated sample count"));
  std::vector<Sample> samples;
  if (count == 0) return samples;
  // Each sample after the first takes at least 2 bits: a count past that is a lie.
  if (count > 1 + rest.size() * 4) return std::unexpected(malformed("sample count larger than the data"));
  samples.reserve(count);
  uint64_t raw_time = 0;
  if (!get_varint(rest, raw_time)) return std::unexpected(malformed("truncated first timestamp"));
  int64_t time = unzigzag(raw_time);
  uint64_t value_bits = 0;
  if (encoding == ChunkEncoding::Xor) {
    if (rest.size() < 8) return std::unexpected(malformed("truncated first value"));
    for (int i = 0; i < 8; ++i) value_bits = (value_bits << 8) | static_cast<uint8_t>(rest[i]);
    rest.remove_prefix(8);
    samples.push_back({time, std::bit_cast<double>(value_bits)});
  } else {
    uint64_t raw_value = 0;
    if (!get_varint(rest, raw_value)) return std::unexpected(malformed("truncated first value"));
    value_bits = static_cast<uint64_t>(unzigzag(raw_value));
    samples.push_back({time, static_cast<double>(static_cast<int64_t>(value_bits))});
  }
  BitReader bits(rest);
  uint64_t time_delta = 0;
  uint64_t value_delta = 0;
  unsigned leading = 0xff, trailing = 0;
  for (uint64_t i = 1; i < count; ++i) {
    int64_t dod = 0;
    if (!read_dod(bits, dod, kTimeBuckets)) return std::unexpected(malformed("truncated timestamp"));
    time_delta += static_cast<uint64_t>(dod);
    time = static_cast<int64_t>(static_cast<uint64_t>(time) + time_delta);
    if (encoding == ChunkEncoding::Integer) {
      if (!read_dod(bits, dod, kIntegerBuckets)) return std::unexpected(malformed("truncated value"));
      value_delta += static_cast<uint64_t>(dod);
      value_bits += value_delta;
      samples.push_back({time, static_cast<double>(static_cast<int64_t>(value_bits))});
      continue;
    }
    unsigned ones = 0;
    if (!bits.read_ones(2, ones)) return std::unexpected(malformed("truncated value"));
    if (ones == 1) {
      if (leading == 0xff) return std::unexpected(malformed("value reuses a window before one was set"));
      uint64_t meaningful_bits = 0;
      if (!bits.read(64 - leading - trailing, meaningful_bits)) return std::unexpected(malformed("truncated value"));
      value_bits ^= meaningful_bits << trailing;
    } else if (ones == 2) {
      uint64_t new_leading = 0, meaningful = 0, meaningful_bits = 0;
      if (!bits.read(6, new_leading) || !bits.read(6, meaningful)) return std::unexpected(malformed("truncated value"));
      meaningful += 1;
      if (new_leading + meaningful > 64) return std::unexpected(malformed("value window past 64 bits"));
      if (!bits.read(static_cast<unsigned>(meaningful), meaningful_bits)) return std::unexpected(malformed("truncated value"));
      leading = static_cast<unsigned>(new_leading);
      trailing = static_cast<unsigned>(64 - new_leading - meaningful);
      value_bits ^= meaningful_bits << trailing;
    }
    samples.push_back({time, std::bit_cast<double>(value_bits)});
  }
  return samples;
}

Result<ChunkEncoder> reopen_chunk(std::string_view bytes) {
  auto samples = decode_chunk(bytes);
  if (!samples) return std::unexpected(samples.error());
  ChunkEncoder encoder(static_cast<ChunkEncoding>(bytes[0]));
  for (const Sample& sample : *samples)
    if (!encoder.append(sample.time_ms, sample.value)) return std::unexpected(malformed("timestamps not increasing"));
  return encoder;
}

}  // namespace ea::tsdb
