// Per-NPC media: the bot-audio ring an audio thread pulls from, the mapping from played samples
// back to (turn, sample offset), and the lip-sync frames timed on that same clock.
//
// Threads: the network thread pushes (PushAudio, AddVisemes, ...); the audio thread calls PullAudio;
// the game thread asks CurrentLipSync / Position. The ring is lock-free; the small timeline and
// lip-sync tables are guarded by a mutex the audio thread never takes.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "convai_bridge/audio_ring.h"
#include "convai_bridge/export.h"
#include "convai_bridge/lipsync_names.h"
#include "convai_bridge/schema_types.h"

CVB_SUPPRESS_DLL_INTERFACE_WARNING

namespace cvb {

enum class LipSyncKind : uint8_t { None, Visemes, Blendshapes };

// Curve names: kVisemeNames, BlendshapeNames(format) in lipsync_names.h.

struct PlaybackPosition {
  bool playing = false;  // a sample of bot audio is at the playback clock right now
  int64_t turn = 0;
  int64_t offset = 0;    // sample offset (per channel) within the turn, on the audio_out clock
};

struct LipSyncSample {
  bool speaking = false;
  int64_t turn = 0;
  int64_t offset = 0;
  LipSyncKind kind = LipSyncKind::None;
  std::string format;          // "arkit" / "mha" for blendshapes
  std::vector<float> weights;  // 15 visemes, or the blendshape width; empty when nothing applies
};

struct MediaStats {
  uint64_t frames_pushed = 0;
  uint64_t samples_pushed = 0;   // per channel
  uint64_t frames_overflowed = 0;
  uint64_t flushes = 0;
  uint64_t lipsync_frames = 0;
};

// Decides which turn's media may still play. Network thread only.
class CONVAIBRIDGECORE_API TurnTracker {
 public:
  bool Accept(int64_t turn) const { return turn > dropped_through_; }
  void Announce(int64_t turn) { latest_ = std::max(latest_, turn); }
  // A new turn while an earlier one never completed interrupts it: returns the turn to flush.
  std::optional<int64_t> OnTurnStarted(int64_t turn);
  // Returns true when queued media must be flushed (the turn was interrupted).
  bool OnTurnCompleted(int64_t turn, bool interrupted);
  // The player interrupted: everything known so far is dropped. Returns the dropped-through turn.
  int64_t OnLocalInterrupt();
  void Reset() { *this = TurnTracker(); }
  int64_t latest() const { return latest_; }
  int64_t dropped_through() const { return dropped_through_; }

 private:
  int64_t latest_ = 0;
  int64_t active_ = 0;
  int64_t dropped_through_ = 0;
};

class CONVAIBRIDGECORE_API NpcMedia {
 public:
  // buffer_ms: ring capacity; the daemon sends at most limits.audio_lead_ms ahead, so a second or
  // two covers scheduling hiccups of the audio thread.
  explicit NpcMedia(const AudioFormat& format, int buffer_ms = 2000);
  NpcMedia(const NpcMedia&) = delete;  // explicit: an exported class must not get an implicit copy
  NpcMedia& operator=(const NpcMedia&) = delete;

  int SampleRate() const { return sample_rate_; }
  int Channels() const { return channels_; }

  // ---- audio thread ----
  // Copies up to `samples` interleaved samples, zero-fills the rest; returns the real ones.
  size_t PullAudio(int16_t* out, size_t samples);

  // ---- game thread (any thread) ----
  // latency_frames: how far the device output lags behind what PullAudio handed out.
  PlaybackPosition Position(int64_t latency_frames = 0) const;
  LipSyncSample CurrentLipSync(int64_t latency_frames = 0);
  bool IsSpeaking(int64_t latency_frames = 0) const { return Position(latency_frames).playing; }
  size_t BufferedFrames() const { return ring_.Buffered() / static_cast<size_t>(channels_); }
  MediaStats Stats() const;

  // ---- network thread ----
  // frames = samples per channel. Returns false (and counts an overflow) when the ring is full or
  // the channel count does not match.
  bool PushAudio(int64_t turn, int64_t offset, const int16_t* pcm, size_t frames, int channels);
  void AddVisemes(int64_t turn, int64_t offset, std::vector<float> weights);
  // frames: count rows of width float32 each; row k plays at offset + round(k*sample_rate/fps).
  void AddBlendshapes(int64_t turn, int64_t offset, int64_t fps, const std::string& format, int64_t width,
                      const float* rows, int64_t count);
  // lipsync_cancel: drop the turn's frames after valid_through (all of them when absent).
  void CancelLipSync(int64_t turn, std::optional<int64_t> valid_through);
  // Interrupt: drop queued audio now, and lip-sync of turns <= through_turn.
  void Flush(int64_t through_turn);
  // A new session (after a reconnect): turn numbers restart, forget everything.
  void Reset();

 private:
  struct Segment {
    uint64_t start = 0;  // ring position (interleaved samples) of the first sample
    uint64_t length = 0;
    int64_t turn = 0;
    int64_t offset = 0;  // per-channel offset of the first sample in its turn
  };
  struct LipFrame {
    int64_t offset = 0;
    LipSyncKind kind = LipSyncKind::None;
    std::vector<float> weights;
  };
  struct TurnLips {
    std::string format;
    std::vector<LipFrame> frames;  // sorted by offset
  };

  std::optional<Segment> SegmentAt(uint64_t position) const;  // requires mu_
  void InsertFrame(int64_t turn, LipFrame frame);               // requires mu_
  PlaybackPosition PositionLocked(int64_t latency_frames) const;

  const int sample_rate_;
  const int channels_;
  AudioRing ring_;
  std::atomic<uint64_t> dry_at_{UINT64_MAX};  // ring position where the last pull ran out of audio
  mutable std::mutex mu_;
  std::deque<Segment> segments_;
  std::map<int64_t, TurnLips> lips_;
  MediaStats stats_;
};

}  // namespace cvb

CVB_RESTORE_DLL_INTERFACE_WARNING
