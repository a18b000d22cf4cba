// A headless "game": two NPCs in conversation at once against the real daemon + emulator.
//
//   conversation_test <connection-file> -- <daemon command...>
//
// ci/test.sh starts the daemon and passes the command it used, so this program can kill the daemon
// and start it again on the same endpoint (the restart check). The main thread plays the game
// thread (Poll, lip sync reads); a second thread plays the audio device, pulling bot audio from
// every NPC in real time. Backends come from CONVAI_BRIDGE_TEST_BACKEND (default "live,interaction":
// the blacksmith on live, the guard on interaction; a single name puts both NPCs on it).
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "convai_bridge/client.h"
#include "test_support.h"

using cvb::Message;
using cvb::NpcId;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kCharacter = "c0ffee00-0000-4000-8000-000000000001";

// ---- what the game saw, per NPC and turn ---------------------------------------------------------

struct TurnLog {
  bool started = false;
  std::string source;
  std::string transcript;
  bool transcript_final = false;
  std::string bot_text;
  std::string bot_reply;
  std::vector<std::string> actions;
  std::string emotion;
  int visemes = 0;
  bool lipsync_cancel = false;
  bool started_speaking = false;
  bool stopped_speaking = false;
  bool audio_before_started_speaking = false;
  bool audio_after_stopped_speaking = false;
  int64_t frames = 0;
  int64_t samples = 0;
  int64_t next_offset = 0;
  bool offsets_contiguous = true;
  bool format_ok = true;
  int64_t short_frames = 0;
  bool short_frame_not_last = false;
  bool completed = false;
  bool interrupted = false;
};

struct NpcLog {
  std::string name;
  cvb::AudioFormat format;
  std::map<int64_t, TurnLog> turns;
  int64_t last_seq = -1;
  bool seq_contiguous = true;
  int opened = 0;
  std::optional<cvb::msg::SessionOpened> last_opened;
  std::vector<cvb::msg::Error> errors;
  std::vector<std::string> closed_reasons;
};

struct Game {
  cvb::Client* client = nullptr;
  std::map<NpcId, NpcLog> npcs;
  std::vector<cvb::ConnectionEvent> connection;
  std::vector<std::string> problems;
  // lip sync as read by the "animation" every frame
  int lip_reads_speaking = 0;
  int lip_reads_with_visemes = 0;
  bool lip_offsets_monotonic = true;
  int64_t lip_last_turn = 0, lip_last_offset = -1;
  NpcId lip_npc = 0;
};

void OnMessage(Game& g, NpcId npc, const Message& m) {
  auto it = g.npcs.find(npc);
  if (it == g.npcs.end()) return;
  NpcLog& n = it->second;
  if (const auto* o = m.As<cvb::msg::SessionOpened>()) {
    ++n.opened;
    n.last_opened = *o;
    n.last_seq = -1;  // a new daemon session numbers its audio from scratch
    n.turns.clear();
  } else if (const auto* e = m.As<cvb::msg::Error>()) {
    n.errors.push_back(*e);
    std::fprintf(stderr, "[%s] error %s: %s\n", n.name.c_str(), e->code.c_str(), e->message.c_str());
  } else if (const auto* c = m.As<cvb::msg::SessionClosed>()) {
    n.closed_reasons.push_back(c->reason);
  } else if (const auto* t = m.As<cvb::msg::TurnStarted>()) {
    n.turns[t->turn].started = true;
    n.turns[t->turn].source = t->source;
  } else if (const auto* t = m.As<cvb::msg::UserTranscript>()) {
    n.turns[t->turn].transcript = t->text;
    n.turns[t->turn].transcript_final = t->final;
  } else if (const auto* t = m.As<cvb::msg::BotText>()) {
    n.turns[t->turn].bot_text += t->text;
  } else if (const auto* t = m.As<cvb::msg::BotReply>()) {
    n.turns[t->turn].bot_reply = t->text;
  } else if (const auto* t = m.As<cvb::msg::Actions>()) {
    for (const auto& a : t->actions) n.turns[t->turn].actions.push_back(a.name);
  } else if (const auto* t = m.As<cvb::msg::Emotion>()) {
    n.turns[t->turn].emotion = t->name;
  } else if (const auto* t = m.As<cvb::msg::Visemes>()) {
    ++n.turns[t->turn].visemes;
  } else if (const auto* t = m.As<cvb::msg::LipsyncCancel>()) {
    n.turns[t->turn].lipsync_cancel = true;
  } else if (const auto* t = m.As<cvb::msg::BotStartedSpeaking>()) {
    n.turns[t->turn].started_speaking = true;
  } else if (const auto* t = m.As<cvb::msg::BotStoppedSpeaking>()) {
    n.turns[t->turn].stopped_speaking = true;
  } else if (const auto* a = m.As<cvb::msg::AudioOut>()) {
    TurnLog& t = n.turns[a->turn];
    if (n.last_seq >= 0 && a->seq != n.last_seq + 1) n.seq_contiguous = false;
    n.last_seq = a->seq;
    if (!t.started_speaking) t.audio_before_started_speaking = true;
    if (t.stopped_speaking) t.audio_after_stopped_speaking = true;
    if (a->offset != t.next_offset) t.offsets_contiguous = false;
    if (a->sample_rate != n.format.sample_rate || a->channels != n.format.channels) t.format_ok = false;
    const int64_t full = n.format.sample_rate * n.format.frame_ms / 1000;
    if (t.short_frames > 0) t.short_frame_not_last = true;  // a frame after a short one
    if (a->samples != full) ++t.short_frames;
    ++t.frames;
    t.samples += a->samples;
    t.next_offset = a->offset + a->samples;
  } else if (const auto* t = m.As<cvb::msg::TurnCompleted>()) {
    n.turns[t->turn].completed = true;
    n.turns[t->turn].interrupted = t->interrupted;
  }
}

// ---- the audio device -----------------------------------------------------------------------------

class AudioDevice {
 public:
  void Add(NpcId npc, std::shared_ptr<cvb::NpcMedia> media) {
    std::lock_guard<std::mutex> lock(mu_);
    outputs_[npc].media = std::move(media);
  }
  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  uint64_t Played(NpcId npc) {
    std::lock_guard<std::mutex> lock(mu_);
    return outputs_[npc].played_frames;
  }

 private:
  struct Output {
    std::shared_ptr<cvb::NpcMedia> media;
    uint64_t due_frames = 0;
    uint64_t played_frames = 0;
  };
  void Run() {
    const auto t0 = Clock::now();
    std::vector<int16_t> buffer;
    while (!stop_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [npc, out] : outputs_) {
        if (!out.media) continue;
        const auto due = static_cast<uint64_t>(elapsed * out.media->SampleRate());
        if (out.due_frames == 0) out.due_frames = due;  // the device starts now
        const uint64_t want = due - out.due_frames;
        if (want == 0) continue;
        out.due_frames = due;
        const size_t channels = static_cast<size_t>(out.media->Channels());
        buffer.resize(want * channels);
        out.played_frames += out.media->PullAudio(buffer.data(), buffer.size()) / channels;
      }
    }
  }
  std::mutex mu_;
  std::map<NpcId, Output> outputs_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// ---- the game loop --------------------------------------------------------------------------------

bool Pump(Game& g, const std::function<bool()>& pred, int timeout_ms) {
  const auto end = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    g.client->Poll();
    if (g.lip_npc != 0) {
      if (auto media = g.client->Media(g.lip_npc)) {
        const cvb::LipSyncSample lip = media->CurrentLipSync();
        if (lip.speaking) {
          ++g.lip_reads_speaking;
          if (lip.kind == cvb::LipSyncKind::Visemes && lip.weights.size() == 15) ++g.lip_reads_with_visemes;
          if (lip.turn == g.lip_last_turn && lip.offset < g.lip_last_offset) g.lip_offsets_monotonic = false;
          g.lip_last_turn = lip.turn;
          g.lip_last_offset = lip.offset;
        }
      }
    }
    if (pred()) return true;
    if (Clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void Sleep(Game& g, int ms) { Pump(g, [] { return false; }, ms); }

template <class F>
cvb::Reply Await(Game& g, std::future<cvb::Reply>& f, int timeout_ms, F&& label) {
  const bool ready = Pump(g, [&] { return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }, timeout_ms);
  if (!ready) {
    std::fprintf(stderr, "no reply to %s within %d ms\n", label, timeout_ms);
    cvb::Reply r;
    r.code = "test_timeout";
    return r;
  }
  cvb::Reply r = f.get();
  if (!r.ok) std::fprintf(stderr, "%s failed: %s %s\n", label, r.code.c_str(), r.message.c_str());
  return r;
}

// Checks one finished, uninterrupted turn: text, audio framing and accounting, speaking markers.
void CheckTurn(Game& g, NpcId npc, int64_t turn, const char* what, AudioDevice& device, uint64_t played_before) {
  NpcLog& n = g.npcs[npc];
  const std::string tag = n.name + " " + what + " turn " + std::to_string(turn);
  const TurnLog& t = n.turns[turn];
  EXPECT_MSG(t.started, tag);
  EXPECT_MSG(t.completed && !t.interrupted, tag);
  EXPECT_MSG(!t.bot_reply.empty(), tag);
  EXPECT_MSG(t.bot_text == t.bot_reply, tag + ": bot_text chunks '" + t.bot_text + "' vs reply '" + t.bot_reply + "'");
  EXPECT_MSG(t.frames > 0 && t.samples > n.format.sample_rate / 5, tag + ": audio frames " + std::to_string(t.frames));
  EXPECT_MSG(t.offsets_contiguous, tag + ": audio_out offsets have gaps");
  EXPECT_MSG(t.format_ok, tag + ": audio_out format differs from the session's");
  EXPECT_MSG(t.short_frames <= 1 && !t.short_frame_not_last, tag + ": only the last frame may be short");
  EXPECT_MSG(t.started_speaking && t.stopped_speaking, tag);
  EXPECT_MSG(!t.audio_before_started_speaking && !t.audio_after_stopped_speaking, tag + ": speaking markers out of order");
  EXPECT_MSG(n.seq_contiguous, tag + ": audio_out seq has gaps");
  // Everything announced reaches the speaker: wait for the device to drain the ring.
  auto media = g.client->Media(npc);
  Pump(g, [&] { return media && media->BufferedFrames() == 0; }, 3000);
  Sleep(g, 50);
  const uint64_t played = device.Played(npc) - played_before;
  EXPECT_MSG(static_cast<int64_t>(played) == t.samples,
             tag + ": played " + std::to_string(played) + " frames, announced " + std::to_string(t.samples));
  std::printf("  %s: %lld audio frames, %.2f s, reply \"%s\"\n", tag.c_str(), static_cast<long long>(t.frames),
              static_cast<double>(t.samples) / static_cast<double>(n.format.sample_rate), t.bot_reply.c_str());
}

bool TurnDone(Game& g, NpcId npc, int64_t turn) {
  auto& turns = g.npcs[npc].turns;
  auto it = turns.find(turn);
  return it != turns.end() && it->second.completed;
}

// ---- the daemon process ---------------------------------------------------------------------------

bool ProcessAlive(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'Z';  // zombie = dead
}

pid_t StartDaemon(const std::vector<std::string>& argv, const std::string& log_path) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

bool WaitForReady(const std::string& log_path, int timeout_ms) {
  const auto end = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < end) {
    std::string text;
    if (cvbtest::ReadFile(log_path, &text) && text.find("READY ") != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::vector<int16_t> SpeechLikeFrame(int index, int samples, int rate) {
  // Vowel-ish: a gliding 120-180 Hz buzz with three formant-ish partials, syllable envelope.
  std::vector<int16_t> out(static_cast<size_t>(samples));
  for (int i = 0; i < samples; ++i) {
    const double t = static_cast<double>(index * samples + i) / rate;
    const double f0 = 150 + 30 * std::sin(2 * M_PI * 0.7 * t);
    const double env = 0.5 + 0.5 * std::sin(2 * M_PI * 4 * t);
    const double v = std::sin(2 * M_PI * f0 * t) + 0.5 * std::sin(2 * M_PI * 700 * t) + 0.3 * std::sin(2 * M_PI * 1200 * t);
    out[static_cast<size_t>(i)] = static_cast<int16_t>(6000 * env * v / 1.8);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4 || std::string(argv[2]) != "--") {
    std::fprintf(stderr, "usage: %s <connection-file> -- <daemon command...>\n", argv[0]);
    return 2;
  }
  const std::string connection_file = argv[1];
  const std::vector<std::string> daemon_cmd(argv + 3, argv + argc);
  // "X" puts both NPCs on backend X; "X,Y" puts the blacksmith on X and the guard on Y. The default
  // covers both: live for actions, emotion, visemes and interrupt; interaction for push-to-talk and
  // resuming a conversation across a daemon restart.
  const char* env_backend = std::getenv("CONVAI_BRIDGE_TEST_BACKEND");
  const std::string backends = env_backend && *env_backend ? env_backend : "live,interaction";
  const auto comma = backends.find(',');
  const std::string backend_a = backends.substr(0, comma);
  const std::string backend_b = comma == std::string::npos ? backend_a : backends.substr(comma + 1);
  const bool live_b = backend_b == "live";
  std::printf("conversation_test: backend=%s (blacksmith: %s, guard: %s)\n", backends.c_str(), backend_a.c_str(),
              backend_b.c_str());
  std::vector<std::string> skipped;

  cvb::ClientOptions options;
  options.connection_file = connection_file;
  options.engine = "unreal-headless-test";
  cvb::Client client(options);
  Game g;
  g.client = &client;
  client.SetMessageHandler([&g](NpcId npc, const Message& m) { OnMessage(g, npc, m); });
  client.SetConnectionHandler([&g](const cvb::ConnectionEvent& e) {
    g.connection.push_back(e);
    std::printf("  connection: %s %s%s (%s)\n", cvb::ToString(e.state), e.instance_id.c_str(),
                e.instance_changed ? " [new instance]" : "", e.detail.c_str());
  });
  client.SetProblemHandler([&g](const std::string& w) {
    g.problems.push_back(w);
    std::fprintf(stderr, "  problem: %s\n", w.c_str());
  });
  AudioDevice device;
  client.Start();
  device.Start();

  // ---- connect, open two NPCs ----
  EXPECT(Pump(g, [&] { return client.State() == cvb::ConnectionState::Ready; }, 20000));
  const std::string first_instance = client.InstanceId();

  cvb::msg::SessionOpen smith;
  smith.character_id = kCharacter;
  smith.backend = backend_a;
  smith.label = "blacksmith";
  smith.end_user_id = "player-1";
  cvb::ActionConfig actions;
  actions.actions = std::vector<std::string>{"Wave", "Move To", "Pick Up"};
  actions.objects = std::vector<cvb::SceneObject>{{"cube", std::string("a red cube")}, {"anvil", std::nullopt}};
  smith.action_config = actions;
  smith.lipsync = cvb::LipSync{"visemes", std::nullopt, std::nullopt};
  smith.audio = cvb::AudioFormat{48000, 1, 20};

  cvb::msg::SessionOpen guard;
  guard.character_id = kCharacter;
  guard.backend = backend_b;
  guard.label = "guard";
  guard.audio = cvb::AudioFormat{24000, 1, 40};  // a second output format on the same connection

  auto open_a = client.OpenNpc(smith);
  auto open_b = client.OpenNpc(guard);
  const NpcId a = open_a.npc, b = open_b.npc;
  g.npcs[a].name = "blacksmith";
  g.npcs[a].format = *smith.audio;
  g.npcs[b].name = "guard";
  g.npcs[b].format = *guard.audio;
  g.lip_npc = a;
  device.Add(a, client.Media(a));
  device.Add(b, client.Media(b));
  const bool opened_a = EXPECT(Await(g, open_a.reply, 20000, "open blacksmith").ok);
  const bool opened_b = EXPECT(Await(g, open_b.reply, 20000, "open guard").ok);
  if (!EXPECT(opened_a && opened_b && Pump(g, [&] { return g.npcs[a].opened == 1 && g.npcs[b].opened == 1; }, 20000))) {
    std::fprintf(stderr, "the NPC sessions did not open on %s; nothing else can be checked\n", backends.c_str());
    device.Stop();
    client.Stop();
    return cvbtest::Finish("conversation_test");
  }
  EXPECT(g.npcs[a].last_opened->backend == backend_a && g.npcs[b].last_opened->backend == backend_b);
  EXPECT(client.Status(a)->sid != client.Status(b)->sid);
  EXPECT(client.Media(a)->SampleRate() == 48000 && client.Media(b)->SampleRate() == 24000);

  // ---- turn 1 on both NPCs at once (text) ----
  std::printf("text turns on both NPCs\n");
  uint64_t played_a = device.Played(a), played_b = device.Played(b);
  auto ta = client.SendText(a, "Hello! Please wave at me and go grab the cube.");
  auto tb = client.SendText(b, "Good evening, guard. Anything to report tonight?");
  const cvb::Reply ra = Await(g, ta, 20000, "text blacksmith");
  const cvb::Reply rb = Await(g, tb, 20000, "text guard");
  EXPECT(ra.ok && ra.turn && rb.ok && rb.turn);
  const int64_t a1 = ra.turn.value_or(-1), b1 = rb.turn.value_or(-1);
  EXPECT(Pump(g, [&] { return TurnDone(g, a, a1) && TurnDone(g, b, b1); }, 30000));
  CheckTurn(g, a, a1, "text", device, played_a);
  CheckTurn(g, b, b1, "text", device, played_b);
  EXPECT(g.npcs[a].turns[a1].source == "text");
  const auto& acts = g.npcs[a].turns[a1].actions;
  EXPECT_MSG(!acts.empty(), "blacksmith: no actions although action_config was given");
  for (const auto& name : acts) EXPECT_MSG(name == "Wave" || name == "Move To" || name == "Pick Up", "unexpected action " + name);
  if (backend_a == "live") EXPECT_MSG(!g.npcs[a].turns[a1].emotion.empty(), "blacksmith: no emotion on live");
  if (backend_b == "live") EXPECT_MSG(!g.npcs[b].turns[b1].emotion.empty(), "guard: no emotion on live");
  if (backend_a != "live" && backend_b != "live")
    skipped.push_back("emotion (only the live backend delivers emotion)");
  const int64_t visemes = g.npcs[a].turns[a1].visemes;
  EXPECT_MSG(visemes > 0, "blacksmith asked for visemes and got none");
  EXPECT_MSG(g.lip_reads_with_visemes > 0,
             "lip sync at the playback clock never had viseme weights (" + std::to_string(g.lip_reads_speaking) + " speaking reads)");
  EXPECT(g.lip_offsets_monotonic);
  EXPECT(g.npcs[b].turns[b1].visemes == 0);  // the guard did not ask for lip sync

  // ---- turn 2 on the blacksmith: the conversation goes on ----
  played_a = device.Played(a);
  auto ta2 = client.SendText(a, "My name is Alice. What do you sell here?");
  const cvb::Reply ra2 = Await(g, ta2, 20000, "text blacksmith 2");
  EXPECT(ra2.ok && ra2.turn.value_or(0) == a1 + 1);
  EXPECT(Pump(g, [&] { return TurnDone(g, a, ra2.turn.value_or(-1)); }, 30000));
  CheckTurn(g, a, ra2.turn.value_or(-1), "second text", device, played_a);

  // ---- a voice turn on the guard: mic frames, end_of_utterance ----
  std::printf("voice turn on the guard\n");
  played_b = device.Played(b);
  const int rate = 16000, frame = 320, frames = 75;  // 1.5 s in 20 ms frames, paced like a microphone
  int sent = 0;
  for (int i = 0; i < frames; ++i) {
    const auto pcm = SpeechLikeFrame(i, frame, rate);
    if (client.SendAudio(b, pcm.data(), pcm.size(), rate, 1)) ++sent;
    Sleep(g, 20);
  }
  EXPECT(sent == frames);
  if (live_b) {
    // Server-side voice activity detection ends the utterance on silence.
    const std::vector<int16_t> silence(static_cast<size_t>(frame), 0);
    for (int i = 0; i < 25; ++i) {
      client.SendAudio(b, silence.data(), silence.size(), rate, 1);
      Sleep(g, 20);
    }
  }
  auto eou = client.EndOfUtterance(b);
  const cvb::Reply rv = Await(g, eou, 20000, "end_of_utterance");
  int64_t bv = rv.turn.value_or(-1);
  if (!rv.ok && rv.code == "unsupported") {
    // A backend without push-to-talk starts the voice turn itself (turn_started source=voice).
    Pump(g, [&] {
      for (const auto& [turn, t] : g.npcs[b].turns)
        if (t.source == "voice") return (bv = turn) > 0;
      return false;
    }, 15000);
  } else {
    EXPECT(rv.ok && rv.turn);
  }
  EXPECT(Pump(g, [&] { return TurnDone(g, b, bv); }, 30000));
  {
    const TurnLog& t = g.npcs[b].turns[bv];
    EXPECT(t.source == "voice");
    EXPECT_MSG(t.transcript_final && !t.transcript.empty(), "no final user transcript");
    if (!live_b) {
      // The emulator "transcribes" non-speech as its duration: all 1.5 s of mic audio arrived.
      EXPECT_MSG(t.transcript.find("1.5 s") != std::string::npos, "transcript: " + t.transcript);
    }
    std::printf("  guard heard: \"%s\"\n", t.transcript.c_str());
  }
  CheckTurn(g, b, bv, "voice", device, played_b);
  EXPECT(client.Stats().audio_in_sent >= static_cast<uint64_t>(frames));

  // ---- interrupt the blacksmith mid-sentence ----
  std::printf("interrupt\n");
  auto ti = client.SendText(a, "Tell me everything about the forge, the town, the road north and the old mine, in detail.");
  const cvb::Reply ri = Await(g, ti, 20000, "text before interrupt");
  const int64_t ai = ri.turn.value_or(-1);
  auto media_a = client.Media(a);
  EXPECT(Pump(g, [&] { return g.npcs[a].turns[ai].frames >= 10 && media_a->IsSpeaking(); }, 20000));
  auto interrupt = client.Interrupt(a);
  const cvb::Reply rint = Await(g, interrupt, 10000, "interrupt");
  if (!rint.ok && rint.code == "unsupported") {
    skipped.push_back("interrupt (the " + backend_a + " backend answered unsupported)");
  } else {
    EXPECT(rint.ok);
    // Silence at once: the ring was flushed before the request even left.
    EXPECT(media_a->BufferedFrames() == 0);
    EXPECT(Pump(g, [&] { return !media_a->IsSpeaking(); }, 200));
    EXPECT(Pump(g, [&] { return TurnDone(g, a, ai); }, 10000));
    EXPECT_MSG(g.npcs[a].turns[ai].interrupted, "turn_completed.interrupted should be true");
    const uint64_t pushed = media_a->Stats().frames_pushed;
    Sleep(g, 500);
    EXPECT_MSG(media_a->Stats().frames_pushed == pushed, "audio of the interrupted turn kept arriving in the ring");
    EXPECT(!media_a->IsSpeaking());
    std::printf("  interrupted after %lld audio frames (lipsync_cancel %s)\n",
                static_cast<long long>(g.npcs[a].turns[ai].frames), g.npcs[a].turns[ai].lipsync_cancel ? "yes" : "no");
  }

  // ---- the daemon dies and comes back on the same endpoint ----
  std::printf("daemon restart\n");
  const std::string csid_a = client.Status(a)->character_session_id;
  const std::string csid_b = client.Status(b)->character_session_id;
  EXPECT(!csid_a.empty() && !csid_b.empty());
  cvb::ConnectionInfo info;
  std::string why;
  EXPECT_MSG(cvb::ReadConnectionFile(connection_file, &info, &why), why);
  const pid_t old_pid = static_cast<pid_t>(info.pid);
  EXPECT(old_pid > 0 && ProcessAlive(old_pid));
  ::kill(old_pid, SIGKILL);
  EXPECT(Pump(g, [&] { return !ProcessAlive(old_pid); }, 5000));
  EXPECT(Pump(g, [&] { return client.State() != cvb::ConnectionState::Ready; }, 12000));
  const std::string restart_log = connection_file + ".restart.log";
  const pid_t new_pid = StartDaemon(daemon_cmd, restart_log);
  EXPECT(new_pid > 0);
  EXPECT_MSG(WaitForReady(restart_log, 20000), "the restarted daemon did not print READY");
  EXPECT(Pump(g, [&] { return client.State() == cvb::ConnectionState::Ready && client.InstanceId() != first_instance; }, 20000));
  bool saw_new_instance = false;
  for (const auto& e : g.connection) saw_new_instance |= e.state == cvb::ConnectionState::Ready && e.instance_changed;
  EXPECT(saw_new_instance);
  EXPECT(Pump(g, [&] { return g.npcs[a].opened == 2 && g.npcs[b].opened == 2; }, 20000));
  int fresh_restarts = 0;
  for (NpcId npc : {a, b}) {
    const auto& opened = g.npcs[npc].last_opened;
    const std::string& want = npc == a ? csid_a : csid_b;
    bool forgotten = false;  // the character service answered "session not found" to the resume
    for (const auto& e : g.npcs[npc].errors) forgotten |= e.code == "convai_not_found";
    // Since protocol 1.1 the daemon itself falls back once to a fresh conversation when Convai
    // refuses the id as stale (PROTOCOL.md 3.1): session_opened says resumed:false, no error.
    if (opened && !opened->resumed && (forgotten || opened->character_session_id.value_or(want) != want)) {
      // The client did ask to resume (the daemon tried that session id) and then started a fresh
      // conversation, as designed. Only a backend whose Convai side outlives the daemon can resume.
      EXPECT_MSG((npc == a ? backend_a : backend_b) == "live",
                 g.npcs[npc].name + ": only live's embedded emulator forgets conversations on a restart");
      ++fresh_restarts;
      continue;
    }
    EXPECT_MSG(client.Status(npc)->character_session_id == want, g.npcs[npc].name + ": character_session_id changed");
    EXPECT_MSG(opened && opened->resumed, g.npcs[npc].name + ": session_opened.resumed should be true");
    if (opened && opened->character_session_id) EXPECT(*opened->character_session_id == want);
  }
  if (fresh_restarts > 0)
    std::printf("  %d NPC(s) on live: the embedded emulator forgot its sessions with the daemon; the client asked "
                "to resume, got convai_not_found and opened a fresh conversation\n", fresh_restarts);

  // ---- and the conversation continues ----
  std::printf("text turns after the restart\n");
  played_a = device.Played(a);
  played_b = device.Played(b);
  auto pa = client.SendText(a, "Are you still there? Please wave again.");
  auto pb = client.SendText(b, "Guard, is the gate closed?");
  const cvb::Reply rpa = Await(g, pa, 20000, "text blacksmith after restart");
  const cvb::Reply rpb = Await(g, pb, 20000, "text guard after restart");
  EXPECT(rpa.ok && rpb.ok);
  EXPECT(Pump(g, [&] { return TurnDone(g, a, rpa.turn.value_or(-1)) && TurnDone(g, b, rpb.turn.value_or(-1)); }, 30000));
  CheckTurn(g, a, rpa.turn.value_or(-1), "after restart", device, played_a);
  CheckTurn(g, b, rpb.turn.value_or(-1), "after restart", device, played_b);

  // ---- goodbye ----
  auto ca = client.CloseNpc(a);
  auto cb = client.CloseNpc(b);
  EXPECT(Await(g, ca, 10000, "close blacksmith").ok);
  EXPECT(Await(g, cb, 10000, "close guard").ok);
  Pump(g, [&] { return g.npcs[a].closed_reasons.size() + g.npcs[b].closed_reasons.size() >= 2; }, 3000);
  const cvb::ClientStats stats = client.Stats();
  device.Stop();
  client.Stop();
  EXPECT_MSG(stats.decode_errors == 0, "decode errors: " + std::to_string(stats.decode_errors));
  EXPECT(stats.handler_exceptions == 0);
  EXPECT(stats.reconnects >= 1);
  for (NpcId npc : {a, b})
    for (const auto& e : g.npcs[npc].errors)
      EXPECT_MSG(fresh_restarts > 0 && e.code == "convai_not_found", g.npcs[npc].name + ": error " + e.code);
  std::printf("stats: in=%llu out=%llu audio_out=%llu dropped(stale/overflow)=%llu mic_frames=%llu pings_answered=%llu unknown=%llu\n",
              static_cast<unsigned long long>(stats.messages_in), static_cast<unsigned long long>(stats.messages_out),
              static_cast<unsigned long long>(stats.audio_out_received), static_cast<unsigned long long>(stats.audio_out_dropped),
              static_cast<unsigned long long>(stats.audio_in_sent), static_cast<unsigned long long>(stats.pings_answered),
              static_cast<unsigned long long>(stats.unknown_messages));
  for (const auto& s : skipped) std::printf("skipped: %s\n", s.c_str());

  if (new_pid > 0) {
    ::kill(new_pid, SIGTERM);
    for (int i = 0; i < 100 && ::waitpid(new_pid, nullptr, WNOHANG) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (ProcessAlive(new_pid)) ::kill(new_pid, SIGKILL);
  }
  return cvbtest::Finish("conversation_test");
}
