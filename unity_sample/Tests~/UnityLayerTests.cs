using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Reflection;
using System.Text.RegularExpressions;
using System.Threading;
using ConvaiBridge.Unity;
using UnityEngine;
using UnityStub;

namespace ConvaiBridge.Tests
{
    /// <summary>Plays the Animator's part: writes its own blendshape values every frame before LateUpdate.</summary>
    public sealed class FakeAnimator : MonoBehaviour
    {
        public SkinnedMeshRenderer Face;
        public readonly Dictionary<int, float> Pose = new Dictionary<int, float>();
        private void Update() { foreach (var p in Pose) Face.SetBlendShapeWeight(p.Key, p.Value); }
    }

    /// <summary>
    /// Runs the package's MonoBehaviours (ConvaiBridgeClient, ConvaiNpc, ConvaiLipSync) under Mono in the
    /// behaving UnityEngine stub, against the real daemon and emulator: the player loop calls the lifecycle,
    /// the stub's audio thread pulls OnAudioFilterRead in DSP blocks, the stub microphone wraps its clip.
    ///
    /// usage: unity_layer.exe CONNECTION_FILE   (the WebGL build: unity_layer.exe -)
    /// Built three ways by ci/test.sh: desktop with the legacy Input Manager, desktop with only the Input
    /// System (CONVAI_INPUT_SYSTEM), and WebGL (UNITY_WEBGL, no daemon needed).
    /// </summary>
    public static class UnityLayerTests
    {
        private const string Blacksmith = "c0ffee00-0000-4000-8000-000000000001";
        private static GameObject _bridgeGo, _npcGo, _faceGo;
        private static ConvaiBridgeClient _bridge;
        private static ConvaiNpc _npc;
        private static AudioSource _source;
        private static SkinnedMeshRenderer _face;
        private static FakeAnimator _animator;
        private static int _jaw, _smile, _blink;
        private static readonly List<string> BridgeErrors = new List<string>();
        private static readonly List<KeyValuePair<string, string>> NpcErrors = new List<KeyValuePair<string, string>>();
        private static readonly List<string> Transcripts = new List<string>();
        private static readonly List<KeyValuePair<int, bool>> Completed = new List<KeyValuePair<int, bool>>();
        private static int _opened, _started, _stopped;
#if CONVAI_INPUT_SYSTEM
        private static readonly UnityEngine.InputSystem.InputAction TalkAction = new UnityEngine.InputSystem.InputAction("talk");
#endif

        public static int Main(string[] args)
        {
            Log.Echo = false;
            var runner = new TestRunner();
            string connection = args.Length > 0 ? args[0] : "-";
            BuildScene(connection);
#if UNITY_WEBGL
            runner.Add("webgl: the client says WebGL is unsupported and starts nothing", WebGlClientRefusesClearly);
            runner.Add("webgl: push-to-talk and open report unsupported_platform, nothing throws", WebGlNpcReportsUnsupported);
#else
            runner.Add("scene starts: client connects via $CONVAI_BRIDGE_CONNECTION_FILE, NPC opens, carrier plays post-spatializer", SceneStarts);
            runner.Add("silent face (before any speech) is left to the Animator", SilentFaceIsLeftToTheAnimator);
            runner.Add("text turn: voice pulled through OnAudioFilterRead, lip sync drives the mapped blendshape, then lets go", TextTurnPlays);
            runner.Add("headset plugged in mid-sentence: carrier restarted, voice resampled to 44.1 kHz, duration kept", HeadsetPluggedIn);
            runner.Add("push-to-talk across the microphone clip's wrap-around: every sample sent once, daemon hears its length", PushToTalkWraps);
            runner.Add("disable stops mic, carrier and session; enable resumes the conversation", DisableAndEnable);
#endif
            runner.Add("quit stops the network thread; no exception anywhere (lifecycle, audio thread, Debug.LogException)", QuitIsClean);
            runner.Run();
            Console.WriteLine("RESULT passed=" + runner.Passed + " failed=" + runner.Failed);
            Environment.Exit(runner.Failed == 0 ? 0 : 1);
            return 0;
        }

        private static void Set(object target, string field, object value)
        {
            var f = target.GetType().GetField(field, BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public);
            if (f == null) throw new InvalidOperationException(target.GetType().Name + " has no field " + field);
            f.SetValue(target, value); // what Unity's deserialization does before Awake
        }

        private static bool Pump(Func<bool> until, int timeoutMs)
        {
            var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
            while (true)
            {
                Player.Frame();
#if CONVAI_INPUT_SYSTEM
                TalkAction.EndFrame();
#endif
                if (until()) return true;
                if (DateTime.UtcNow > deadline) return false;
                Thread.Sleep(10);
            }
        }

        private static void Frames(int ms) { var end = DateTime.UtcNow.AddMilliseconds(ms); Pump(() => DateTime.UtcNow > end, ms + 1000); }

        private static void BuildScene(string connection)
        {
            // The client's connection file comes from the shared rule, step 1.
            if (connection != "-") Environment.SetEnvironmentVariable("CONVAI_BRIDGE_CONNECTION_FILE", connection);
            Player.Boot(typeof(ConvaiNpc).Assembly);

            _bridgeGo = new GameObject("Bridge");
            _bridgeGo.SetActive(false); // fields first, as a scene load does, then Awake/OnEnable
            _bridge = _bridgeGo.AddComponent<ConvaiBridgeClient>();
            _bridge.onError.AddListener(e => BridgeErrors.Add(e));

            _npcGo = new GameObject("Blacksmith");
            _npcGo.SetActive(false);
            _npc = _npcGo.AddComponent<ConvaiNpc>();
            _source = _npcGo.GetComponent<AudioSource>();
            Set(_npc, "characterId", Blacksmith);
            Set(_npc, "backend", "live");
            Set(_npc, "label", "unity-layer");
            Set(_npc, "talkKey", KeyCode.T);
#if CONVAI_INPUT_SYSTEM
            Set(_npc, "talkAction", new UnityEngine.InputSystem.InputActionReference { action = TalkAction });
#endif
            _npc.onOpened.AddListener(() => _opened++);
            _npc.onStartedSpeaking.AddListener(() => _started++);
            _npc.onStoppedSpeaking.AddListener(() => _stopped++);
            _npc.onUserTranscript.AddListener((t, final) => { if (final) Transcripts.Add(t); });
            _npc.onTurnCompleted.AddListener((turn, interrupted) => Completed.Add(new KeyValuePair<int, bool>(turn, interrupted)));
            _npc.onError.AddListener((code, msg) => NpcErrors.Add(new KeyValuePair<string, string>(code, msg)));

            _faceGo = new GameObject("Face");
            _faceGo.transform.SetParent(_npcGo.transform, false);
            _face = _faceGo.AddComponent<SkinnedMeshRenderer>();
            var mesh = new Mesh { name = "head" };
            mesh.BlendShapeNames.AddRange(new[] { "jawOpen", "mouthSmile", "blink" });
            _face.sharedMesh = mesh;
            _jaw = 0; _smile = 1; _blink = 2;
            _animator = _faceGo.AddComponent<FakeAnimator>();
            _animator.Face = _face;
            _animator.Pose[_smile] = 37f;
            _animator.Pose[_blink] = 12f;

            var lip = _npcGo.AddComponent<ConvaiLipSync>();
            Set(lip, "npc", _npc);
            Set(lip, "face", _face);
            Set(lip, "smoothing", 0f);
            Set(lip, "mappings", new List<ConvaiLipSync.Mapping>
            {
                new ConvaiLipSync.Mapping { source = "aa", blendshape = "jawOpen", scale = 100f },
                new ConvaiLipSync.Mapping { source = "e", blendshape = "mouthSmile", scale = 100f },
            });

            _bridgeGo.SetActive(true);
            _npcGo.SetActive(true);
        }

        private static long Voiced(Dictionary<int, long> d, int rate) { long v; return d.TryGetValue(rate, out v) ? v : 0; }

#if !UNITY_WEBGL
        private static void SceneStarts()
        {
            bool open = Pump(() => _npc.IsOpen, 30000);
            Assert.True(open, "NPC open (bridge " + _bridge.State + ", errors: " + string.Join("; ", BridgeErrors) + ")");
            Assert.True(_bridge.Client.Endpoint != null, "connected to an endpoint");
            Assert.Equal(1, _opened, "onOpened");
            Assert.True(_source.isPlaying, "carrier clip playing after Start");
            Assert.True(_source.spatializePostEffects, "spatializePostEffects (HRTF spatializers see the voice, not the carrier)");
            Assert.Equal(48000, _npc.OutputSampleRate, "device rate");
            Assert.Equal(48000L, _npc.Session.AudioFormat.SampleRate, "session opened at the device rate");
            Pump(() => _npc.Session.Audio != null, 5000);
            Assert.Equal(1024 * 4, _npc.LipSyncLatencyFrames, "lip-sync latency: the whole DSP queue (1024 x 4)");
        }

        private static void SilentFaceIsLeftToTheAnimator()
        {
            Frames(300);
            Assert.Equal(37f, _face.GetBlendShapeWeight(_smile), "mapped shape keeps the Animator's value while silent");
            Assert.Equal(0, _face.Writes[_jaw], "mapped shape never written while silent");
            Assert.Equal(12f, _face.GetBlendShapeWeight(_blink), "unmapped shape");
        }

        /// <summary>One turn: returns (tap block before, audio_out samples received during it).</summary>
        private static long Turn(string text, Action<long> whilePlaying, out int tapFrom)
        {
            tapFrom = _source.Tap.Blocks;
            long before = _npc.Session.AudioOutSamples;
            int done = Completed.Count;
            _npc.SendText(text);
            bool ok = Pump(() =>
            {
                if (whilePlaying != null) whilePlaying(_npc.Session.AudioOutSamples - before);
                // Played out, or nothing can play it (a stopped carrier: the assertions after say so).
                return Completed.Count > done && _npc.Session.Audio != null
                       && (_npc.Session.Audio.AvailableFrames == 0 || !_source.isPlaying);
            }, 60000);
            Assert.True(ok, "turn completed and its audio played (completed " + Completed.Count + ")");
            Frames(400); // the DSP queue drains
            return _npc.Session.AudioOutSamples - before;
        }

        private static void TextTurnPlays()
        {
            var jaw = new List<float>();
            int startedBefore = _started;
            int tapFrom;
            long samples = Turn("Hello there, I am Ada.", n => jaw.Add(_face.GetBlendShapeWeight(_jaw)), out tapFrom);
            Assert.True(samples > 24000, "audio_out received: " + samples);
            var voiced = _source.Tap.VoicedFrames(tapFrom);
            long v = Voiced(voiced, 48000);
            double ratio = (double)v / samples;
            Assert.True(ratio > 0.5 && ratio < 1.03, "voiced output frames " + v + " vs audio_out samples " + samples + " (" + ratio.ToString("F3") + ")");
            Assert.True(_source.Tap.Rms(tapFrom) > 0.005, "audible: rms " + _source.Tap.Rms(tapFrom).ToString("F4"));
            Assert.True(_started > startedBefore && _stopped > 0, "onStartedSpeaking / onStoppedSpeaking");
            float max = jaw.Count > 0 ? jaw.Max() : 0;
            Info("text turn: " + samples + " audio_out samples, " + v + " voiced output frames (" + ratio.ToString("F3")
                 + "), rms " + _source.Tap.Rms(tapFrom).ToString("F3") + ", jawOpen max " + max.ToString("F1"));
            Assert.True(max > 5f && max <= 100.001f, "jawOpen followed the visemes: max " + max);
            Assert.Equal(0f, _face.GetBlendShapeWeight(_jaw), "jawOpen back to rest");
            Assert.Equal(37f, _face.GetBlendShapeWeight(_smile), "mouthSmile handed back to the Animator");
            int writes = _face.Writes[_jaw];
            Frames(300);
            Assert.Equal(writes, _face.Writes[_jaw], "no writes once released");
        }

        private struct RingSample { public double T; public long Received, Available, Underrun; }

        private static void HeadsetPluggedIn()
        {
            bool switched = false;
            int tapFrom;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            double switchedAt = 0;
            var trace = new List<RingSample>();
            long samples = Turn("Tell me about your forge and the iron you work.", received =>
            {
                var ring = _npc.Session.Audio;
                if (switched && ring != null)
                    trace.Add(new RingSample { T = clock.Elapsed.TotalSeconds, Received = _npc.Session.AudioOutSamples,
                                               Available = ring.AvailableFrames, Underrun = ring.UnderrunFrames });
                if (switched || received < 9600) return; // 0.2 s in
                switched = true;
                switchedAt = clock.Elapsed.TotalSeconds;
                AudioEngine.Reconfigure(44100, 512, 4, true); // main thread, as Unity raises the event
            }, out tapFrom);
            Assert.True(switched, "the device changed mid-turn");
            Assert.True(_source.isPlaying, "carrier restarted after the device change");
            Assert.Equal(44100, _npc.OutputSampleRate, "new device rate picked up");
            Assert.Equal(512 * 4 * 48000 / 44100, _npc.LipSyncLatencyFrames, "lip-sync latency of the new device, on the 48 kHz clock");
            long v44 = Voiced(_source.Tap.VoicedFrames(tapFrom), 44100);
            Assert.True(v44 > 44100 / 4, "voice after the change: " + v44 + " frames at 44.1 kHz");
            // How fast the device consumes the 48 kHz session audio: 48000 frames/s when resampled (44100 if
            // played at the wrong rate: slow and low). Longest stretch without underrun with audio queued.
            var settled = trace.Where(x => x.T > switchedAt + 0.2).ToList();
            double bestSpan = 0, rate = 0;
            int start = 0;
            for (int i = 1; i <= settled.Count; i++)
            {
                bool breaks = i == settled.Count || settled[i].Available <= 0 || settled[i].Underrun != settled[start].Underrun;
                if (!breaks) continue;
                var a = settled[start];
                var b = settled[i - 1];
                if (b.T - a.T > bestSpan)
                {
                    bestSpan = b.T - a.T;
                    rate = ((b.Received - a.Received) - (b.Available - a.Available)) / bestSpan;
                }
                start = i;
            }
            Info("headset: " + samples + " samples of 48 kHz audio; after the switch " + v44 + " voiced frames at 44.1 kHz; "
                 + "session audio consumed at " + rate.ToString("F0") + " frames/s over " + bestSpan.ToString("F2") + " s");
            Assert.True(bestSpan >= 0.4, "a steady stretch of playback to measure (" + bestSpan.ToString("F2") + " s)");
            Assert.Near(48000, rate, 48000 * 0.03, "session audio consumed in real time (frames/s) at the new device rate");
        }

        private static void Info(string line) { Console.WriteLine("INFO  " + line); }

        private static void PushToTalkWraps()
        {
            int transcripts = Transcripts.Count;
#if CONVAI_INPUT_SYSTEM
            TalkAction.Press();
#else
            Keys.Press(KeyCode.T);
#endif
            Pump(() => _npc.IsTalking, 2000);
            Assert.True(_npc.IsTalking, "talking after the key/action press");
            Frames(2400); // the 1 s microphone clip wraps twice
#if CONVAI_INPUT_SYSTEM
            TalkAction.Release();
#else
            Keys.Release(KeyCode.T);
#endif
            Player.Frame();
            Assert.True(!_npc.IsTalking, "released");
            var clip = MicrophoneDevice.Clip;
            long recorded = MicrophoneDevice.Written;
            var reads = clip.Reads();
            long total = 0;
            int expect = 0;
            foreach (var r in reads)
            {
                Assert.Equal(expect, r.Key, "read " + total + " starts where the previous ended (mod clip length)");
                total += r.Value;
                expect = (int)((r.Key + r.Value) % clip.samples);
            }
            Assert.True(total > 2L * clip.samples, "wrapped at least twice: " + total + " samples");
            Assert.Near(recorded, total, 0, "every recorded sample sent exactly once");
            bool heard = Pump(() => Transcripts.Count > transcripts, 30000);
            Assert.True(heard, "daemon transcribed the speech");
            var m = Regex.Match(Transcripts.Last(), @"([0-9]+(\.[0-9]+)?) seconds");
            Assert.True(m.Success, "emulator transcript names the duration: " + Transcripts.Last());
            double secs = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            Info("push-to-talk: " + reads.Count + " reads, " + total + " samples over a " + clip.samples
                 + "-sample clip; transcript \"" + Transcripts.Last() + "\"");
            // The live path may cut the tail still in flight at end_of_utterance (the 1 s voice turn of the
            // integration test is heard as 0.9 s): never more than was sent, not much less.
            double sent = total / 16000.0;
            Assert.True(secs <= sent + 0.15 && secs >= sent - 0.6,
                "the daemon heard " + secs + " s of the " + sent.ToString("F2") + " s recorded");
            _npc.Interrupt();
            int done = Completed.Count;
            Pump(() => Completed.Count > done, 20000);
        }

        private static void DisableAndEnable()
        {
            _npc.StartTalking();
            Frames(200);
            Assert.True(MicrophoneDevice.Recording, "recording");
            _npc.enabled = false;
            Assert.True(!MicrophoneDevice.Recording, "mic stopped by OnDisable");
            Assert.True(_npc.Session == null, "session closed by OnDisable");
            Assert.True(!_source.isPlaying, "carrier stopped by OnDisable");
            int blocks = _source.Tap.Blocks;
            Frames(300);
            Assert.Equal(blocks, _source.Tap.Blocks, "a stopped source is not mixed");
            int opened = _opened;
            _npc.enabled = true;
            bool open = Pump(() => _npc.IsOpen && _opened > opened, 30000);
            Assert.True(open, "reopened on enable");
            Assert.True(_npc.Session.Resumed, "the remembered conversation resumed");
            Assert.True(_source.isPlaying, "carrier playing again");
            Assert.Equal(44100, _npc.OutputSampleRate, "rate re-read on enable");
        }
#endif

#if UNITY_WEBGL
        private static void WebGlClientRefusesClearly()
        {
            Frames(100);
            Assert.True(_bridge.Client == null, "no client started");
            Assert.True(BridgeErrors.Any(e => e.StartsWith("unsupported_platform: WebGL")), "onError: " + string.Join("; ", BridgeErrors));
            Assert.True(Log.Of("error").Any(e => e.Contains("WebGL is not supported")), "logged");
        }

        private static void WebGlNpcReportsUnsupported()
        {
            _npc.StartTalking();
            Assert.True(NpcErrors.Any(e => e.Key == ConvaiNpc.UnsupportedPlatform && e.Value.Contains("WebGL")), "push-to-talk refused");
            Assert.True(!_npc.IsTalking && !_npc.IsOpen, "nothing started");
            Assert.True(Log.Of("error").Any(e => e.Contains("Blacksmith") && e.Contains("WebGL")), "open says why");
        }
#endif

        private static void QuitIsClean()
        {
            Player.Quit();
            Assert.True(_bridge.Client == null, "client stopped");
            var all = new List<string>();
            all.AddRange(Player.Exceptions.Select(e => "lifecycle: " + e));
            lock (AudioEngine.Exceptions) all.AddRange(AudioEngine.Exceptions.Select(e => "audio thread: " + e));
            all.AddRange(Log.Of("exception").Select(e => "logged: " + e));
            Assert.True(all.Count == 0, string.Join("\n", all));
        }
    }
}
