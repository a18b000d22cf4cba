// Lock-free single-producer / single-consumer ring of interleaved int16 samples.
//
// Producer: the network thread (bot audio from audio_out). Consumer: the engine's audio render
// thread (USoundWaveProcedural::GeneratePCMData). Positions are monotonically increasing 64-bit
// sample counters, so "how much has been played" is simply the read position.
//
// Flushing (interrupt) is requested by the producer and applied by the consumer on its next read:
// the producer records the write position at the time of the flush and the consumer skips to it.
// The producer never reuses flushed space before the consumer has skipped it, so no sample is ever
// written while the consumer may be reading it.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace cvb {

class AudioRing {
 public:
  explicit AudioRing(size_t capacity_samples) : buffer_(std::max<size_t>(capacity_samples, 16)) {}
  AudioRing(const AudioRing&) = delete;
  AudioRing& operator=(const AudioRing&) = delete;

  size_t Capacity() const { return buffer_.size(); }

  // Producer. Writes all `count` samples or none (returns false when there is no room), so a frame
  // is never split by an overflow.
  bool Write(const int16_t* data, size_t count) {
    const uint64_t w = write_.load(std::memory_order_relaxed);
    const uint64_t r = read_.load(std::memory_order_acquire);
    if (count > buffer_.size() - static_cast<size_t>(w - r)) return false;
    const size_t start = static_cast<size_t>(w % buffer_.size());
    const size_t first = std::min(count, buffer_.size() - start);
    std::memcpy(buffer_.data() + start, data, first * sizeof(int16_t));
    std::memcpy(buffer_.data(), data + first, (count - first) * sizeof(int16_t));
    write_.store(w + count, std::memory_order_release);
    return true;
  }

  // Producer: discard everything written so far (takes effect at the consumer's next Read).
  void RequestFlush() { flush_to_.store(write_.load(std::memory_order_relaxed), std::memory_order_release); }

  uint64_t WritePosition() const { return write_.load(std::memory_order_acquire); }

  // Consumer. Returns the number of samples copied (<= count).
  size_t Read(int16_t* out, size_t count) {
    uint64_t r = read_.load(std::memory_order_relaxed);
    const uint64_t f = flush_to_.load(std::memory_order_acquire);
    if (f > r) r = f;
    const uint64_t w = write_.load(std::memory_order_acquire);
    const size_t n = static_cast<size_t>(std::min<uint64_t>(w - r, count));
    const size_t start = static_cast<size_t>(r % buffer_.size());
    const size_t first = std::min(n, buffer_.size() - start);
    std::memcpy(out, buffer_.data() + start, first * sizeof(int16_t));
    std::memcpy(out + first, buffer_.data(), (n - first) * sizeof(int16_t));
    read_.store(r + n, std::memory_order_release);
    return n;
  }

  // Consumer: drop everything currently buffered.
  void Clear() { read_.store(write_.load(std::memory_order_acquire), std::memory_order_release); }

  // Any thread: samples consumed so far, counting a pending flush as consumed.
  uint64_t PlayedPosition() const {
    return std::max(read_.load(std::memory_order_acquire), flush_to_.load(std::memory_order_acquire));
  }
  // Any thread: samples waiting to be played (approximate while the other side is active).
  size_t Buffered() const {
    const uint64_t w = write_.load(std::memory_order_acquire);
    const uint64_t p = PlayedPosition();
    return w > p ? static_cast<size_t>(w - p) : 0;
  }

 private:
  std::vector<int16_t> buffer_;
  alignas(64) std::atomic<uint64_t> write_{0};
  alignas(64) std::atomic<uint64_t> read_{0};
  alignas(64) std::atomic<uint64_t> flush_to_{0};
};

}  // namespace cvb
