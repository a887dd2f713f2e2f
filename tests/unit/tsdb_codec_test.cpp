// The store's sample codec: bit stream, delta-of-delta timestamps, XOR and integer values.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>

#include "tsdb/bit_stream.h"
#include "tsdb/chunk_codec.h"

namespace ea::tsdb {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

uint64_t bits_of(double value) { return std::bit_cast<uint64_t>(value); }

// Encodes, decodes and checks every sample bit for bit; returns the chunk bytes.
std::string round_trip(const std::vector<Sample>& samples, ChunkEncoding encoding = ChunkEncoding::Xor) {
  ChunkEncoder encoder(encoding);
  for (const Sample& sample : samples) EXPECT_TRUE(encoder.append(sample.time_ms, sample.value)) << sample.time_ms;
  EXPECT_EQ(encoder.samples(), samples.size());
  std::string bytes = encoder.bytes();
  EXPECT_LE(bytes.size(), encoder.size_bytes());
  auto decoded = decode_chunk(bytes);
  EXPECT_TRUE(decoded.has_value()) << (decoded ? "" : decoded.error().message);
  if (!decoded) return bytes;
  EXPECT_EQ(decoded->size(), samples.size());
  for (size_t i = 0; i < std::min(decoded->size(), samples.size()); ++i) {
    EXPECT_EQ((*decoded)[i].time_ms, samples[i].time_ms) << "sample " << i;
    EXPECT_EQ(bits_of((*decoded)[i].value), bits_of(samples[i].value)) << "sample " << i << ": " << samples[i].value;
  }
  return bytes;
}

TEST(TsdbBitStream, WritesAndReadsEveryWidth) {
  BitWriter writer;
  std::mt19937_64 random(7);
  std::vector<std::pair<uint64_t, unsigned>> written;
  for (int i = 0; i < 2000; ++i) {
    unsigned width = static_cast<unsigned>(random() % 65);
    uint64_t value = width == 64 ? random() : width == 0 ? 0 : random() & ((uint64_t{1} << width) - 1);
    writer.write(value, width);
    written.emplace_back(value, width);
  }
  std::string bytes;
  writer.append_to(bytes);
  EXPECT_EQ(bytes.size(), (writer.bit_count() + 7) / 8);
  BitReader reader(bytes);
  for (auto [value, width] : written) {
    uint64_t read = 0;
    ASSERT_TRUE(reader.read(width, read));
    EXPECT_EQ(read, value) << "width " << width;
  }
  uint64_t past = 0;
  EXPECT_FALSE(reader.read(9, past));  // at most 7 padding bits remain
}

TEST(TsdbBitStream, MasksHighBitsOfNarrowWrites) {
  BitWriter writer;
  writer.write(~uint64_t{0}, 3);
  writer.write(0, 5);
  std::string bytes;
  writer.append_to(bytes);
  ASSERT_EQ(bytes.size(), 1u);
  EXPECT_EQ(static_cast<uint8_t>(bytes[0]), 0b11100000);
}

TEST(TsdbCodec, RegularIntervalsCostOneBitPerTimestamp) {
  std::vector<Sample> samples;
  for (int i = 0; i < 120; ++i) samples.push_back({1'700'000'000'000 + i * 10'000, 42.0});
  std::string bytes = round_trip(samples);
  // Header ~16 bytes, one 24-bit first delta, then 2 bits (time '0', value '0') per sample.
  EXPECT_LE(bytes.size(), 16u + 3 + (118 * 2 + 7) / 8 + 1);
}

TEST(TsdbCodec, IrregularIntervalsAndJitter) {
  std::mt19937_64 random(1);
  std::vector<Sample> samples;
  int64_t time = 1'700'000'000'000;
  for (int i = 0; i < 500; ++i) {
    // Jitter of a few ms, occasional gaps of seconds, minutes, days, and 1 ms steps.
    int64_t step = 10'000 + static_cast<int64_t>(random() % 21) - 10;
    if (i % 37 == 0) step = 1;
    if (i % 53 == 0) step = 3'600'000 * 24 * 3;
    if (i % 71 == 0) step = 7 * 60'000 + 123;
    time += step;
    samples.push_back({time, static_cast<double>(i)});
  }
  round_trip(samples);
}

TEST(TsdbCodec, ExtremeTimestampsWrapWithoutLoss) {
  round_trip({{std::numeric_limits<int64_t>::min(), 1}, {-5, 2}, {0, 3}, {std::numeric_limits<int64_t>::max() - 1, 4},
              {std::numeric_limits<int64_t>::max(), 5}});
  round_trip({{-1'000'000, 1}, {-999'999, 2}, {-10, 3}});
}

TEST(TsdbCodec, SpecialFloatsKeepEveryBit) {
  double quiet_nan = std::numeric_limits<double>::quiet_NaN();
  double payload_nan = std::bit_cast<double>(uint64_t{0x7ff8000000000abcull});
  double stale_nan = std::bit_cast<double>(uint64_t{0x7ff0000000000002ull});  // Prometheus's stale marker
  double negative_nan = -quiet_nan;
  std::vector<double> values = {0.0,
                                -0.0,
                                quiet_nan,
                                quiet_nan,
                                payload_nan,
                                stale_nan,
                                negative_nan,
                                kInf,
                                -kInf,
                                kInf,
                                std::numeric_limits<double>::denorm_min(),
                                -std::numeric_limits<double>::denorm_min(),
                                std::numeric_limits<double>::min(),
                                std::numeric_limits<double>::max(),
                                std::numeric_limits<double>::lowest(),
                                std::numeric_limits<double>::epsilon(),
                                1e-300,
                                1e300,
                                3.141592653589793,
                                -2.718281828459045};
  std::vector<Sample> samples;
  for (size_t i = 0; i < values.size(); ++i) samples.push_back({static_cast<int64_t>(i) * 1000, values[i]});
  round_trip(samples);
  std::reverse(values.begin(), values.end());
  for (size_t i = 0; i < values.size(); ++i) samples[i].value = values[i];
  round_trip(samples);
}

TEST(TsdbCodec, CounterResetsAndLargeSteps) {
  std::vector<Sample> samples;
  double value = 0;
  for (int i = 0; i < 300; ++i) {
    value = i % 100 == 99 ? 0 : value + 1000 + (i % 7);  // reset every 100 samples
    if (i == 150) value = 9007199254740992.0;             // 2^53, the largest exact integer
    if (i == 151) value = 1;
    samples.push_back({int64_t{1'700'000'000'000} + i * 15'000, value});
  }
  round_trip(samples, ChunkEncoding::Xor);
  round_trip(samples, ChunkEncoding::Integer);
}

TEST(TsdbCodec, IntegerChunkRefusesValuesItCannotHold) {
  for (double value : {0.5, -0.0, kInf, -kInf, std::numeric_limits<double>::quiet_NaN(), 9007199254740994.0, 1e300}) {
    ChunkEncoder encoder(ChunkEncoding::Integer);
    ASSERT_TRUE(encoder.append(1000, 7));
    EXPECT_FALSE(encoder.append(2000, value)) << value;
    EXPECT_EQ(encoder.samples(), 1u);
    EXPECT_TRUE(encoder.append(2000, 8));  // the refusal wrote nothing
    auto decoded = decode_chunk(encoder.bytes());
    ASSERT_TRUE(decoded.has_value());
    ASSERT_EQ(decoded->size(), 2u);
    EXPECT_EQ((*decoded)[1].value, 8);
  }
  EXPECT_TRUE(integer_representable(-9007199254740992.0));
  EXPECT_TRUE(integer_representable(0.0));
  EXPECT_FALSE(integer_representable(-0.0));
}

TEST(TsdbCodec, IntegerChunkWithNegativeAndAlternatingValues) {
  std::vector<Sample> samples;
  std::mt19937_64 random(3);
  for (int i = 0; i < 400; ++i) {
    double value = static_cast<double>(static_cast<int64_t>(random() % 2'000'000'001) - 1'000'000'000);
    if (i % 3 == 0) value = -value;
    if (i % 50 == 0) value = -9007199254740992.0;
    if (i % 51 == 0) value = 9007199254740992.0;
    samples.push_back({i * 1000, value});
  }
  round_trip(samples, ChunkEncoding::Integer);
}

TEST(TsdbCodec, TimesMustIncrease) {
  ChunkEncoder encoder(ChunkEncoding::Xor);
  ASSERT_TRUE(encoder.append(1000, 1));
  EXPECT_FALSE(encoder.append(1000, 2));  // same time
  EXPECT_FALSE(encoder.append(999, 2));   // earlier
  EXPECT_TRUE(encoder.append(1001, 2));
  EXPECT_EQ(encoder.first_time(), 1000);
  EXPECT_EQ(encoder.last_time(), 1001);
}

TEST(TsdbCodec, RandomSeriesRoundTrip) {
  std::mt19937_64 random(11);
  for (int round = 0; round < 200; ++round) {
    std::vector<Sample> samples;
    int64_t time = static_cast<int64_t>(random() >> 20);
    size_t count = 1 + random() % 300;
    bool integers = round % 2 == 0;
    for (size_t i = 0; i < count; ++i) {
      time += 1 + static_cast<int64_t>(random() % (round % 5 == 0 ? 1'000'000'000 : 20'000));
      double value;
      if (integers)
        value = static_cast<double>(static_cast<int64_t>(random() % 1'000'000) - 500'000);
      else if (round % 3 == 0)
        value = std::bit_cast<double>(random());  // any bit pattern, NaNs included
      else
        value = std::ldexp(static_cast<double>(random() % 1000), static_cast<int>(random() % 200) - 100);
      samples.push_back({time, value});
    }
    round_trip(samples, integers ? ChunkEncoding::Integer : ChunkEncoding::Xor);
  }
}

TEST(TsdbCodec, ReopenContinuesWithIdenticalBytes) {
  for (ChunkEncoding encoding : {ChunkEncoding::Xor, ChunkEncoding::Integer}) {
    ChunkEncoder whole(encoding);
    ChunkEncoder first_half(encoding);
    for (int i = 0; i < 60; ++i) {
      whole.append(i * 10'000 + (i % 3), i * 17.0);
      if (i < 30) first_half.append(i * 10'000 + (i % 3), i * 17.0);
    }
    auto reopened = reopen_chunk(first_half.bytes());
    ASSERT_TRUE(reopened.has_value()) << reopened.error().message;
    EXPECT_EQ(reopened->bytes(), first_half.bytes());
    for (int i = 30; i < 60; ++i) ASSERT_TRUE(reopened->append(i * 10'000 + (i % 3), i * 17.0));
    EXPECT_EQ(reopened->bytes(), whole.bytes());
    EXPECT_EQ(reopened->encoding(), encoding);
  }
}

TEST(TsdbCodec, SteadyCounterCostsAboutOneBitPerValueInIntegerChunks) {
  ChunkEncoder integer(ChunkEncoding::Integer), xor_encoded(ChunkEncoding::Xor);
  for (int i = 0; i < 120; ++i) {
    integer.append(i * 10'000, 1'000'000.0 + i * 500.0);
    xor_encoded.append(i * 10'000, 1'000'000.0 + i * 500.0);
  }
  EXPECT_LE(integer.bytes().size(), 48u);  // header, first deltas, then 2 bits a sample
  EXPECT_LT(integer.bytes().size(), xor_encoded.bytes().size());
}

TEST(TsdbCodec, MalformedChunksFailCleanly) {
  ChunkEncoder encoder(ChunkEncoding::Xor);
  std::mt19937_64 random(5);
  for (int i = 0; i < 50; ++i) encoder.append(i * 1000 + static_cast<int64_t>(random() % 100), std::bit_cast<double>(random()));
  std::string bytes = encoder.bytes();
  // Every truncation is an error, never a crash or a silent short read.
  for (size_t length = 0; length < bytes.size(); ++length) {
    auto decoded = decode_chunk(std::string_view(bytes).substr(0, length));
    EXPECT_FALSE(decoded.has_value()) << "length " << length;
  }
  EXPECT_FALSE(decode_chunk(std::string("\x07\x01\x00", 3)).has_value());  // unknown encoding
  std::string lying = bytes;
  lying[1] = '\x7f';  // sample count far beyond the data
  EXPECT_FALSE(decode_chunk(lying).has_value());
  // Random garbage: errors or samples, never a crash.
  for (int i = 0; i < 2000; ++i) {
    std::string garbage(1 + random() % 64, '\0');
    for (char& c : garbage) c = static_cast<char>(random());
    garbage[0] = static_cast<char>(1 + random() % 2);
    (void)decode_chunk(garbage);
  }
}

}  // namespace
}  // namespace ea::tsdb
