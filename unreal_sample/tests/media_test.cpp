// Ring buffer, playback clock and lip-sync timing: the pieces the audio and game threads touch.
#include <atomic>
#include <cmath>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "convai_bridge/audio_ring.h"
#include "convai_bridge/media.h"
#include "test_support.h"

namespace {

void RingBasics() {
  cvb::AudioRing ring(100);
  std::vector<int16_t> in(60), out(100);
  for (int i = 0; i < 60; ++i) in[i] = static_cast<int16_t>(i);
  EXPECT(ring.Write(in.data(), 60));
  EXPECT(!ring.Write(in.data(), 60));  // all or nothing: 60 more do not fit
  EXPECT(ring.Buffered() == 60);
  EXPECT(ring.Read(out.data(), 50) == 50);
  EXPECT(out[0] == 0 && out[49] == 49);
  EXPECT(ring.Write(in.data(), 60));  // wraps around the end
  EXPECT(ring.Read(out.data(), 100) == 70);
  EXPECT(out[0] == 50 && out[9] == 59 && out[10] == 0 && out[69] == 59);
  EXPECT(ring.Read(out.data(), 10) == 0);
  EXPECT(ring.PlayedPosition() == 120 && ring.WritePosition() == 120);
}

void RingFlush() {
  cvb::AudioRing ring(1000);
  std::vector<int16_t> a(300, 1), b(200, 2), out(1000);
  ring.Write(a.data(), a.size());
  ring.RequestFlush();            // producer side: everything written so far goes
  EXPECT(ring.Buffered() == 0);   // already counted as played
  ring.Write(b.data(), b.size());  // written after the flush: kept
  const size_t n = ring.Read(out.data(), out.size());
  EXPECT(n == 200);
  EXPECT(out[0] == 2 && out[199] == 2);
  // The producer must not reuse flushed space before the consumer skipped it.
  cvb::AudioRing small(100);
  std::vector<int16_t> full(100, 7);
  EXPECT(small.Write(full.data(), 100));
  small.RequestFlush();
  EXPECT(!small.Write(full.data(), 10));
  EXPECT(small.Read(out.data(), 10) == 0);  // consumer applies the flush
  EXPECT(small.Write(full.data(), 10));
}

void RingConcurrent() {
  // One producer, one consumer, odd chunk sizes, a small ring: every sample arrives once, in order.
  cvb::AudioRing ring(257);
  constexpr int kTotal = 400000;
  std::atomic<bool> ok{true};
  std::thread producer([&] {
    std::mt19937 rng(1);
    std::vector<int16_t> chunk(97);
    int next = 0;
    while (next < kTotal) {
      const int n = std::min<int>(1 + static_cast<int>(rng() % 97), kTotal - next);
      for (int i = 0; i < n; ++i) chunk[i] = static_cast<int16_t>((next + i) & 0x7fff);
      while (!ring.Write(chunk.data(), static_cast<size_t>(n))) std::this_thread::yield();
      next += n;
    }
  });
  std::mt19937 rng(2);
  std::vector<int16_t> out(128);
  int expected = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (expected < kTotal && std::chrono::steady_clock::now() < deadline) {
    const size_t got = ring.Read(out.data(), 1 + rng() % 128);
    for (size_t i = 0; i < got; ++i, ++expected)
      if (out[i] != static_cast<int16_t>(expected & 0x7fff)) ok = false;
    if (got == 0) std::this_thread::yield();
  }
  producer.join();
  EXPECT(ok.load());
  EXPECT(expected == kTotal);
}

cvb::AudioFormat Mono48k() { return cvb::AudioFormat{48000, 1, 20}; }

std::vector<int16_t> Tone(size_t n) {
  std::vector<int16_t> s(n);
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<int16_t>(1000 * std::sin(0.05 * static_cast<double>(i)));
  return s;
}

void PlaybackClock() {
  cvb::NpcMedia media(Mono48k());
  std::vector<int16_t> out(960);
  EXPECT(!media.Position().playing);
  const auto pcm = Tone(960);
  EXPECT(media.PushAudio(3, 0, pcm.data(), 960, 1));
  EXPECT(media.PushAudio(3, 960, pcm.data(), 960, 1));
  EXPECT(!media.Position().playing);  // queued, nothing handed to the device yet
  EXPECT(media.PullAudio(out.data(), 480) == 480);
  auto pos = media.Position();
  EXPECT(pos.playing && pos.turn == 3 && pos.offset == 479);
  EXPECT(media.PullAudio(out.data(), 960) == 960);
  pos = media.Position();
  EXPECT(pos.playing && pos.offset == 1439);
  // Output latency: the listener hears what was handed out 240 frames ago.
  pos = media.Position(240);
  EXPECT(pos.playing && pos.offset == 1199);
  // Draining: the audio thread asks for more than there is -> silence -> not speaking.
  std::fill(out.begin(), out.end(), int16_t{5});
  EXPECT(media.PullAudio(out.data(), 960) == 480);
  EXPECT(out[480] == 0 && out[959] == 0);  // zero-filled
  EXPECT(!media.Position().playing);
  // Next turn: a fresh offset clock.
  EXPECT(media.PushAudio(4, 0, pcm.data(), 960, 1));
  EXPECT(media.PullAudio(out.data(), 100) == 100);
  pos = media.Position();
  EXPECT(pos.playing && pos.turn == 4 && pos.offset == 99);
  // Wrong channel count is refused and counted, never mis-timed.
  EXPECT(!media.PushAudio(4, 960, pcm.data(), 480, 2));
  EXPECT(media.Stats().frames_overflowed == 1);
}

void Visemes() {
  cvb::NpcMedia media(Mono48k());
  const auto pcm = Tone(960);
  for (int k = 0; k < 4; ++k) media.PushAudio(1, k * 960, pcm.data(), 960, 1);
  auto weights = [](float aa) {
    std::vector<float> w(15, 0.0f);
    w[10] = aa;
    return w;
  };
  media.AddVisemes(1, 0, weights(0.0f));
  media.AddVisemes(1, 960, weights(1.0f));
  media.AddVisemes(1, 1920, weights(0.5f));
  std::vector<int16_t> out(4000);
  media.PullAudio(out.data(), 481);  // clock at offset 480: halfway between the first two frames
  auto lip = media.CurrentLipSync();
  EXPECT(lip.speaking && lip.kind == cvb::LipSyncKind::Visemes && lip.weights.size() == 15);
  EXPECT(std::fabs(lip.weights[10] - 0.5f) < 1e-3f);
  media.PullAudio(out.data(), 960);  // offset 1440: between 1.0 and 0.5
  lip = media.CurrentLipSync();
  EXPECT(std::fabs(lip.weights[10] - 0.75f) < 1e-3f);
  // lipsync_cancel: frames after valid_through go; the clock then holds the last valid frame.
  media.AddVisemes(1, 2880, weights(0.9f));
  media.CancelLipSync(1, 2000);
  media.PullAudio(out.data(), 1440);  // offset 2880
  lip = media.CurrentLipSync();
  EXPECT(lip.speaking && std::fabs(lip.weights[10] - 0.5f) < 1e-3f);
  // Flush (interrupt): audio and lip sync of the turn are gone at once.
  media.Flush(1);
  lip = media.CurrentLipSync();
  EXPECT(!lip.speaking && lip.weights.empty());
  EXPECT(media.BufferedFrames() == 0);
  EXPECT(media.PullAudio(out.data(), 100) == 0);
  EXPECT(media.Stats().flushes == 1);
}

void Blendshapes() {
  cvb::NpcMedia media(cvb::AudioFormat{44100, 2, 20});
  const auto pcm = Tone(44100 * 2);  // one second of stereo
  media.PushAudio(2, 0, pcm.data(), 44100, 2);
  // 3 frames at 60 fps, width 2: rows at offsets 0, 735, 1470.
  const float rows[] = {0.0f, 1.0f, 0.6f, 0.4f, 0.3f, 0.2f};
  media.AddBlendshapes(2, 0, 60, "arkit", 2, rows, 3);
  std::vector<int16_t> out(44100 * 2);
  media.PullAudio(out.data(), 736 * 2);  // clock at offset 735 exactly (stereo: 2 samples per frame)
  auto lip = media.CurrentLipSync();
  EXPECT(lip.speaking && lip.kind == cvb::LipSyncKind::Blendshapes && lip.format == "arkit");
  EXPECT(lip.weights.size() == 2 && std::fabs(lip.weights[0] - 0.6f) < 1e-4f && std::fabs(lip.weights[1] - 0.4f) < 1e-4f);
  EXPECT(lip.offset == 735);
}

void Turns() {
  cvb::TurnTracker t;
  EXPECT(t.Accept(1));
  EXPECT(!t.OnTurnStarted(1));
  EXPECT(!t.OnTurnCompleted(1, false));
  EXPECT(t.Accept(1));                    // a completed turn's tail still plays
  EXPECT(!t.OnTurnStarted(2));
  auto flushed = t.OnTurnStarted(3);      // 3 starts before 2 completed: 2 was interrupted
  EXPECT(flushed && *flushed == 2);
  EXPECT(!t.Accept(2) && t.Accept(3));
  EXPECT(t.OnTurnCompleted(3, true));     // barge-in: flush
  EXPECT(!t.Accept(3));
  t.Announce(4);                          // ack of the next request
  EXPECT(t.OnLocalInterrupt() == 4);      // player interrupts: everything known so far is dropped
  EXPECT(!t.Accept(4) && t.Accept(5));
  t.Reset();                              // new daemon session: turns restart at 1
  EXPECT(t.Accept(1));
}

}  // namespace

// The curve names compiled into the core (generated; packaged games have no Resources/ files).
void CurveNames() {
  EXPECT(cvb::kVisemeNames.size() == 15);
  EXPECT(std::string(cvb::kVisemeNames[0]) == "sil" && std::string(cvb::kVisemeNames[14]) == "ou");
  const cvb::NameTable arkit = cvb::BlendshapeNames("arkit");
  const cvb::NameTable mha = cvb::BlendshapeNames("mha");
  EXPECT(arkit.count == 61 && mha.count == 251);  // the widths blendshapes messages declare
  EXPECT(std::string(arkit.names[0]) == "EyeBlinkLeft");
  EXPECT(std::string(mha.names[0]) == "CTRL_expressions_browDownL");
  EXPECT(cvb::BlendshapeNames("other").count == 0);
}

int main() {
  CurveNames();
  RingBasics();
  RingFlush();
  RingConcurrent();
  PlaybackClock();
  Visemes();
  Blendshapes();
  Turns();
  return cvbtest::Finish("media_test");
}
