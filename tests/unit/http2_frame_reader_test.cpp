// HTTP/2 frame reader: preface, frames split anywhere, unknown types, boundary hunting.
#include <gtest/gtest.h>

#include <string>

#include "l7/http2_frame_reader.h"
#include "http2_test_frames.h"

using ea::l7::Http2Frame;
using ea::l7::Http2FrameReader;

namespace {

using ea::l7::test_frames::Bytes;
using ea::l7::test_frames::frame;

std::string summary(const Http2Frame& f) {
  return std::to_string(f.type) + "/" + std::to_string(f.flags) + "/" + std::to_string(f.stream_id) + "/" +
         std::to_string(f.payload.size());
}

std::vector<std::string> read_all(Http2FrameReader& reader, const Bytes& bytes, size_t chunk) {
  std::vector<std::string> out;
  for (size_t pos = 0; pos < bytes.size(); pos += chunk)
    reader.feed(std::span(bytes).subspan(pos, std::min(chunk, bytes.size() - pos)),
                [&](const Http2Frame& f) { out.push_back(summary(f)); });
  return out;
}

Bytes stream_bytes() {
  std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  Bytes b(preface.begin(), preface.end());
  for (const Bytes& f : {frame(4, 0, 0, Bytes(12, 0)), frame(0xfa, 0, 0, Bytes(3, 1)),  // unknown type
                         frame(1, 4, 1, Bytes(20, 0x82)), frame(0, 1, 1, Bytes(100, 7)),
                         frame(8, 0, 0, {0, 0, 1, 0})})
    b.insert(b.end(), f.begin(), f.end());
  return b;
}

const std::vector<std::string> kFrames = {"4/0/0/12", "250/0/0/3", "1/4/1/20", "0/1/1/100", "8/0/0/4"};

}  // namespace

TEST(Http2FrameReader, PrefaceAndFramesInAnyChunks) {
  for (size_t chunk : {size_t{1}, size_t{2}, size_t{7}, size_t{9}, size_t{64}, size_t{10000}}) {
    Http2FrameReader reader(Http2FrameReader::Start::ClientPreface);
    EXPECT_EQ(read_all(reader, stream_bytes(), chunk), kFrames) << "chunk " << chunk;
    EXPECT_EQ(reader.bytes_skipped(), 0u);
    EXPECT_TRUE(reader.synced());
  }
}

TEST(Http2FrameReader, HuntsForABoundaryWhenStartedMidStream) {
  Bytes bytes = stream_bytes();
  // Start 30 bytes in: inside the SETTINGS frame. The unknown-type frame is not trusted as a
  // boundary, so the first frames reported are HEADERS onwards.
  Bytes tail(bytes.begin() + 30, bytes.end());
  Http2FrameReader reader(Http2FrameReader::Start::Unknown);
  auto frames = read_all(reader, tail, 5);
  EXPECT_EQ(frames, (std::vector<std::string>{"1/4/1/20", "0/1/1/100", "8/0/0/4"}));
  EXPECT_EQ(reader.resyncs(), 1u);
  EXPECT_GT(reader.bytes_skipped(), 0u);
}

TEST(Http2FrameReader, NotAPrefaceMeansHunting) {
  Bytes bytes = stream_bytes();
  Bytes no_preface(bytes.begin() + 24, bytes.end());
  Http2FrameReader reader(Http2FrameReader::Start::ClientPreface);
  auto frames = read_all(reader, no_preface, 3);
  // SETTINGS is followed by an unknown type, so it cannot be confirmed; HEADERS can.
  EXPECT_EQ(frames, (std::vector<std::string>{"1/4/1/20", "0/1/1/100", "8/0/0/4"}));
  EXPECT_EQ(reader.sync_losses(), 1u);
  EXPECT_EQ(reader.bytes_skipped(), 9u + 12 + 9 + 3);
}

TEST(Http2FrameReader, OversizedFrameLosesSyncUntilSettingsAllowIt) {
  Bytes big = frame(0, 0, 1, Bytes(20000, 0));
  Http2FrameReader strict(Http2FrameReader::Start::FrameBoundary);
  EXPECT_TRUE(read_all(strict, big, 4096).empty());
  EXPECT_EQ(strict.sync_losses(), 1u);
  Http2FrameReader allowed(Http2FrameReader::Start::FrameBoundary);
  allowed.set_max_frame_size(32768);
  EXPECT_EQ(read_all(allowed, big, 4096), (std::vector<std::string>{"0/0/1/20000"}));
}
