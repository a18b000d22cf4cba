#include "convai_bridge/media.h"

#include <algorithm>
#include <cmath>

namespace cvb {

namespace {
constexpr size_t kMaxSegments = 4096;
constexpr size_t kMaxLipFramesPerTurn = 20000;
}  // namespace

// ---- TurnTracker ------------------------------------------------------------------------------

std::optional<int64_t> TurnTracker::OnTurnStarted(int64_t turn) {
  std::optional<int64_t> interrupted;
  if (active_ != 0 && active_ < turn) {
    interrupted = active_;
    dropped_through_ = std::max(dropped_through_, active_);
  }
  active_ = turn;
  latest_ = std::max(latest_, turn);
  return interrupted;
}

bool TurnTracker::OnTurnCompleted(int64_t turn, bool interrupted) {
  if (active_ == turn) active_ = 0;
  latest_ = std::max(latest_, turn);
  if (!interrupted) return false;
  dropped_through_ = std::max(dropped_through_, turn);
  return true;
}

int64_t TurnTracker::OnLocalInterrupt() {
  dropped_through_ = std::max({dropped_through_, latest_, active_});
  return dropped_through_;
}

// ---- NpcMedia ---------------------------------------------------------------------------------

NpcMedia::NpcMedia(const AudioFormat& format, int buffer_ms)
    : sample_rate_(format.sample_rate > 0 ? static_cast<int>(format.sample_rate) : 48000),
      channels_(format.channels > 0 ? static_cast<int>(format.channels) : 1),
      ring_(static_cast<size_t>(sample_rate_) * static_cast<size_t>(channels_) *
            static_cast<size_t>(std::max(buffer_ms, 100)) / 1000) {}

size_t NpcMedia::PullAudio(int16_t* out, size_t samples) {
  const size_t got = ring_.Read(out, samples);
  if (got < samples) {
    std::fill(out + got, out + samples, int16_t{0});
    dry_at_.store(ring_.PlayedPosition(), std::memory_order_release);
  }
  return got;
}

bool NpcMedia::PushAudio(int64_t turn, int64_t offset, const int16_t* pcm, size_t frames, int channels) {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t samples = frames * static_cast<size_t>(channels);
  const uint64_t start = ring_.WritePosition();
  if (channels != channels_ || !ring_.Write(pcm, samples)) {
    ++stats_.frames_overflowed;
    return false;
  }
  ++stats_.frames_pushed;
  stats_.samples_pushed += frames;
  // Merge with the previous segment when contiguous (same turn, next offset) to keep the list short.
  if (!segments_.empty()) {
    Segment& last = segments_.back();
    if (last.turn == turn && last.start + last.length == start &&
        last.offset + static_cast<int64_t>(last.length / static_cast<uint64_t>(channels_)) == offset) {
      last.length += samples;
      return true;
    }
  }
  segments_.push_back(Segment{start, samples, turn, offset});
  // Forget segments that have been played.
  const uint64_t played = ring_.PlayedPosition();
  while (segments_.size() > 1 && segments_.front().start + segments_.front().length <= played) segments_.pop_front();
  while (segments_.size() > kMaxSegments) segments_.pop_front();
  return true;
}

void NpcMedia::InsertFrame(int64_t turn, LipFrame frame) {
  auto& frames = lips_[turn].frames;
  auto it = std::upper_bound(frames.begin(), frames.end(), frame.offset,
                             [](int64_t off, const LipFrame& f) { return off < f.offset; });
  frames.insert(it, std::move(frame));
  if (frames.size() > kMaxLipFramesPerTurn) frames.erase(frames.begin());
  ++stats_.lipsync_frames;
}

void NpcMedia::AddVisemes(int64_t turn, int64_t offset, std::vector<float> weights) {
  std::lock_guard<std::mutex> lock(mu_);
  InsertFrame(turn, LipFrame{offset, LipSyncKind::Visemes, std::move(weights)});
}

void NpcMedia::AddBlendshapes(int64_t turn, int64_t offset, int64_t fps, const std::string& format, int64_t width,
                              const float* rows, int64_t count) {
  if (fps <= 0 || width <= 0 || count <= 0 || rows == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  lips_[turn].format = format;
  for (int64_t k = 0; k < count; ++k) {
    const auto at = offset + static_cast<int64_t>(std::llround(static_cast<double>(k) * sample_rate_ / fps));
    const float* row = rows + k * width;
    InsertFrame(turn, LipFrame{at, LipSyncKind::Blendshapes, std::vector<float>(row, row + width)});
  }
}

void NpcMedia::CancelLipSync(int64_t turn, std::optional<int64_t> valid_through) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = lips_.find(turn);
  if (it == lips_.end()) return;
  if (!valid_through) {
    lips_.erase(it);
    return;
  }
  auto& frames = it->second.frames;
  frames.erase(std::remove_if(frames.begin(), frames.end(), [&](const LipFrame& f) { return f.offset > *valid_through; }),
               frames.end());
}

void NpcMedia::Flush(int64_t through_turn) {
  std::lock_guard<std::mutex> lock(mu_);
  ring_.RequestFlush();
  segments_.clear();
  lips_.erase(lips_.begin(), lips_.upper_bound(through_turn));
  ++stats_.flushes;
}

void NpcMedia::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  ring_.RequestFlush();
  segments_.clear();
  lips_.clear();
}

std::optional<NpcMedia::Segment> NpcMedia::SegmentAt(uint64_t position) const {
  for (auto it = segments_.rbegin(); it != segments_.rend(); ++it) {
    if (position >= it->start && position < it->start + it->length) return *it;
    if (it->start + it->length <= position) break;  // segments are in ring order
  }
  return std::nullopt;
}

PlaybackPosition NpcMedia::PositionLocked(int64_t latency_frames) const {
  PlaybackPosition pos;
  const uint64_t played = ring_.PlayedPosition();
  // The audio thread ran out of bot audio at this very position: the device plays silence now.
  if (dry_at_.load(std::memory_order_acquire) == played) return pos;
  const uint64_t lag = static_cast<uint64_t>(std::max<int64_t>(latency_frames, 0)) * static_cast<uint64_t>(channels_);
  if (played <= lag) return pos;  // nothing has reached the speaker yet
  const uint64_t at = played - lag - 1;  // the sample the listener hears now
  auto seg = SegmentAt(at);
  if (!seg) return pos;
  pos.playing = true;
  pos.turn = seg->turn;
  pos.offset = seg->offset + static_cast<int64_t>((at - seg->start) / static_cast<uint64_t>(channels_));
  return pos;
}

PlaybackPosition NpcMedia::Position(int64_t latency_frames) const {
  std::lock_guard<std::mutex> lock(mu_);
  return PositionLocked(latency_frames);
}

LipSyncSample NpcMedia::CurrentLipSync(int64_t latency_frames) {
  std::lock_guard<std::mutex> lock(mu_);
  LipSyncSample out;
  const PlaybackPosition pos = PositionLocked(latency_frames);
  if (!pos.playing) return out;
  out.speaking = true;
  out.turn = pos.turn;
  out.offset = pos.offset;
  // Frames of earlier turns can never play again.
  lips_.erase(lips_.begin(), lips_.lower_bound(pos.turn));
  auto it = lips_.find(pos.turn);
  if (it == lips_.end() || it->second.frames.empty()) return out;
  auto& frames = it->second.frames;
  auto next = std::upper_bound(frames.begin(), frames.end(), pos.offset,
                               [](int64_t off, const LipFrame& f) { return off < f.offset; });
  if (next == frames.begin()) return out;  // before the first frame of the turn
  auto cur = std::prev(next);
  out.kind = cur->kind;
  out.format = it->second.format;
  out.weights = cur->weights;
  if (next != frames.end() && next->kind == cur->kind && next->weights.size() == cur->weights.size() &&
      next->offset > cur->offset) {
    const float t = static_cast<float>(pos.offset - cur->offset) / static_cast<float>(next->offset - cur->offset);
    for (size_t i = 0; i < out.weights.size(); ++i) out.weights[i] += (next->weights[i] - out.weights[i]) * t;
  }
  // Keep the current frame; drop the ones before it.
  frames.erase(frames.begin(), cur);
  return out;
}

MediaStats NpcMedia::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace cvb
