// Splits one direction of an HTTP/2 byte stream into frames. Bytes may arrive in any chunks.
// A stream first seen mid-way (or one that turns implausible) is hunted for a frame boundary:
// a plausible 9-byte header whose payload is followed by another plausible header.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace ea::l7 {

enum class Http2FrameType : uint8_t {
  Data = 0, Headers = 1, Priority = 2, RstStream = 3, Settings = 4, PushPromise = 5, Ping = 6,
  GoAway = 7, WindowUpdate = 8, Continuation = 9,
};

namespace http2_flags {
inline constexpr uint8_t kEndStream = 0x1;
inline constexpr uint8_t kAck = 0x1;
inline constexpr uint8_t kEndHeaders = 0x4;
inline constexpr uint8_t kPadded = 0x8;
inline constexpr uint8_t kPriority = 0x20;
}  // namespace http2_flags

struct Http2Frame {
  uint8_t type = 0;  // Http2FrameType, or an unknown extension type
  uint8_t flags = 0;
  uint32_t stream_id = 0;
  std::span<const uint8_t> payload;  // valid during the callback only
};

class Http2FrameReader {
 public:
  enum class Start { ClientPreface, FrameBoundary, Unknown };
  using FrameCallback = std::function<void(const Http2Frame&)>;

  explicit Http2FrameReader(Start start);

  void feed(std::span<const uint8_t> bytes, const FrameCallback& on_frame);
  // The upper layer found the stream inconsistent: hunt for the next frame boundary.
  void lose_sync();
  // Bytes of this direction were lost (the capture was truncated): the buffered partial frame can
  // never complete, and how far the stream moved on is unknown. Drops the buffer and hunts.
  void note_gap();
  // SETTINGS_MAX_FRAME_SIZE announced by the receiver of this direction (default 16384); a
  // longer frame means we are not at a frame boundary.
  void set_max_frame_size(uint32_t size);

  bool synced() const { return state_ == State::Synced; }
  uint64_t bytes_skipped() const { return bytes_skipped_; }
  uint64_t resyncs() const { return resyncs_; }
  uint64_t sync_losses() const { return sync_losses_; }

  static constexpr uint32_t kDefaultMaxFrameSize = 16384;  // RFC 9113 6.5.2; also used while hunting
  static constexpr uint32_t kHuntMaxFrameSize = kDefaultMaxFrameSize;

 private:
  enum class State { Preface, Synced, Hunting };
  void run(const FrameCallback& on_frame);
  bool hunt();

  State state_;
  uint32_t max_frame_size_ = kDefaultMaxFrameSize;
  std::vector<uint8_t> buffer_;
  size_t pos_ = 0;
  uint64_t bytes_skipped_ = 0;
  uint64_t resyncs_ = 0;
  uint64_t sync_losses_ = 0;
};

}  // namespace ea::l7
