using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Text;
using System.Threading;
using ConvaiBridge.Client;
using ConvaiBridge.Protocol;

namespace ConvaiBridge.Tests
{
    /// <summary>
    /// A headless "game" that talks to the real daemon (and its Convai emulator) through the libzmq
    /// transport: two NPCs on one connection, text and voice turns, actions, emotion, lip sync driven by a
    /// simulated audio thread, interrupt, and a daemon restart in the middle of the conversation.
    ///
    /// usage: integration.exe CONNECTION_FILE DAEMON_CTL BACKEND
    /// DAEMON_CTL is ci/daemon.sh (kill / start). Prints PASS/FAIL/SKIP lines tagged with the backend and
    /// a final "RESULT passed=N failed=M".
    /// </summary>
    public static class Integration
    {
        private const string Blacksmith = "c0ffee00-0000-4000-8000-000000000001";
        private const string Captain = "c0ffee00-0000-4000-8000-000000000002";

        private static int _passed, _failed, _skipped;
        private static string _backend;
        private static BridgeClient _client;
        private static readonly Stopwatch Clock = Stopwatch.StartNew();
        private static readonly List<Probe> Probes = new List<Probe>();
        private static volatile bool _audioStop;
        private static int _callbackErrors;

        private sealed class Received
        {
            public Message Msg;
            public long AtMs;
        }

        /// <summary>One NPC as the game sees it: its session, what arrived, what the audio thread played.</summary>
        private sealed class Probe
        {
            public string Name;
            public NpcSession Session;
            public readonly List<Received> Events = new List<Received>();
            public readonly List<SessionOpenedMessage> Opened = new List<SessionOpenedMessage>();
            public readonly List<ErrorMessage> Errors = new List<ErrorMessage>();
            public int LipSyncHits;
            public float MaxMouth;
            // Written by the audio thread.
            public long PulledFrames;
            public double PulledEnergy;
            public long DeviceFrames;
            public Audio.AudioRingBuffer LastRing;
            public long RingStartMs;

            public void Attach()
            {
                Session.MessageReceived += m => Events.Add(new Received { Msg = m, AtMs = Clock.ElapsedMilliseconds });
                Session.Opened += o => Opened.Add(o);
                Session.Error += e => Errors.Add(e);
            }

            /// <summary>Events of a turn of the current sid (turn ids start again in a reopened session).</summary>
            public List<Received> TurnTimed(long turn)
            {
                string sid = Session.Sid;
                return Events.Where(e => e.Msg.EventTurn == turn && e.Msg.Sid == sid).ToList();
            }

            public List<Message> Turn(long turn)
            {
                return TurnTimed(turn).Select(e => e.Msg).ToList();
            }

            public bool Completed(long turn)
            {
                return TurnTimed(turn).Any(e => e.Msg is TurnCompletedMessage);
            }

            public T First<T>(long turn) where T : Message
            {
                return Turn(turn).OfType<T>().FirstOrDefault();
            }
        }

        public static int Main(string[] args)
        {
            if (args.Length < 3)
            {
                Console.Error.WriteLine("usage: integration.exe CONNECTION_FILE DAEMON_CTL BACKEND");
                return 2;
            }
            string connectionFile = args[0], daemonCtl = args[1];
            _backend = args[2];
            try
            {
                Run(connectionFile, daemonCtl);
            }
            catch (Exception e)
            {
                Fail("program", "crashed: " + e);
            }
            _audioStop = true;
            if (_client != null) _client.Stop(500);
            Console.WriteLine("RESULT passed=" + _passed + " failed=" + _failed + " skipped=" + _skipped);
            Console.Out.Flush();
            Environment.Exit(_failed == 0 ? 0 : 1);
            return 0;
        }

        // -- reporting -----------------------------------------------------------------------------

        private static void Check(string name, bool ok, string detail)
        {
            if (ok) _passed++;
            else _failed++;
            Console.WriteLine((ok ? "PASS  " : "FAIL  ") + "[" + _backend + "] " + name + (detail != null ? ": " + detail : ""));
            Console.Out.Flush();
        }

        private static void Fail(string name, string detail) { Check(name, false, detail); }

        private static void Skip(string name, string reason)
        {
            _skipped++;
            Console.WriteLine("SKIP  [" + _backend + "] " + name + ": " + reason);
        }

        private static void Info(string text) { Console.WriteLine("INFO  " + text); }

        // -- the game loop -------------------------------------------------------------------------

        /// <summary>What Update() does: run the client's queued callbacks and sample lip sync.</summary>
        private static bool PumpUntil(Func<bool> done, int timeoutMs)
        {
            long deadline = Clock.ElapsedMilliseconds + timeoutMs;
            var weights = new float[61];
            int jawOpen = Audio.LipSyncTrack.IndexOf("arkit", "JawOpen");
            while (true)
            {
                _client.Poll();
                foreach (var p in Probes)
                {
                    if (p.Session.SampleLipSync(weights))
                    {
                        p.LipSyncHits++;
                        if (p.Session.LipSync.Format == "arkit") p.MaxMouth = Math.Max(p.MaxMouth, weights[jawOpen]);
                        else for (int i = 1; i < 15; i++) p.MaxMouth = Math.Max(p.MaxMouth, weights[i]);
                    }
                }
                if (done()) return true;
                if (Clock.ElapsedMilliseconds > deadline) return false;
                Thread.Sleep(5);
            }
        }

        private static void Idle(int ms) { PumpUntil(() => false, ms); }

        /// <summary>
        /// The audio device: every ~10 ms it pulls as many frames as real time consumed, like
        /// OnAudioFilterRead on a stereo output, and measures what it got.
        /// </summary>
        private static void AudioThread()
        {
            var buffer = new float[2 * 48000];
            while (!_audioStop)
            {
                Thread.Sleep(10);
                foreach (var p in Probes.ToArray())
                {
                    var ring = p.Session.Audio;
                    if (ring == null) continue;
                    long now = Clock.ElapsedMilliseconds;
                    if (ring != p.LastRing) { p.LastRing = ring; p.RingStartMs = now; p.DeviceFrames = 0; }
                    long due = (now - p.RingStartMs) * ring.SampleRate / 1000 - p.DeviceFrames;
                    int frames = (int)Math.Min(due, buffer.Length / 2);
                    if (frames <= 0) continue;
                    p.DeviceFrames += frames;
                    int got = ring.Read(buffer, 0, frames, 2);
                    double e = 0;
                    for (int i = 0; i < got * 2; i++) e += buffer[i] * buffer[i];
                    p.PulledFrames += got;
                    p.PulledEnergy += e;
                }
            }
        }

        private static Message Ask(Probe p, Message request, int timeoutMs)
        {
            Message reply = null;
            p.Session.Request(request, r => reply = r);
            if (!PumpUntil(() => reply != null, timeoutMs)) return null;
            return reply;
        }

        private static long Say(Probe p, string text)
        {
            var reply = Ask(p, new TextMessage { Text = text }, 20000);
            var ack = reply as AckMessage;
            if (ack == null || !ack.Turn.HasValue)
            {
                Fail("text request on " + p.Name, "no ack with a turn: " + Describe(reply));
                return -1;
            }
            return ack.Turn.Value;
        }

        private static string Describe(Message m)
        {
            var e = m as ErrorMessage;
            if (e != null) return "error " + e.Code + " (" + e.Message + ")";
            return m == null ? "nothing" : m.ToString();
        }

        private static Probe Open(string name, string character, int rate, int channels, string lipsync)
        {
            var request = new SessionOpenMessage
            {
                CharacterId = character,
                Backend = _backend,
                Label = name,
                EndUserId = "unity-ci-player",
                Audio = new AudioFormat { SampleRate = rate, Channels = channels, FrameMs = 20 },
                Voice = true,
                ActionConfig = new ActionConfig
                {
                    Actions = new List<string> { "Move To", "Pick Up", "Wave" },
                    Objects = new List<SceneObject> { new SceneObject { Name = "cube", Description = "a red cube" } },
                },
            };
            if (lipsync == "visemes") request.Lipsync = new LipSync { Provider = WireEnums.LipsyncProvider.Visemes };
            if (lipsync == "arkit")
                request.Lipsync = new LipSync { Provider = WireEnums.LipsyncProvider.Blendshapes, Format = WireEnums.BlendshapeFormat.Arkit, Fps = 60 };
            var p = new Probe { Name = name, Session = _client.OpenSession(request) };
            p.Attach();
            Probes.Add(p);
            return p;
        }

        // -- the scenario --------------------------------------------------------------------------

        private static void Run(string connectionFile, string daemonCtl)
        {
            var restarts = new List<bool>();
            _client = new BridgeClient(new BridgeClientOptions
            {
                ConnectionFile = connectionFile,
                Engine = "unity-ci",
                Log = s => Console.Error.WriteLine(Clock.ElapsedMilliseconds.ToString("D7") + " " + s),
            });
            _client.CallbackException += e => _callbackErrors++;
            _client.Connected += (w, restarted) => restarts.Add(restarted);
            _client.Start();

            // 1. Handshake with the token from the connection file.
            bool ready = PumpUntil(() => _client.State == ConnectionState.Ready || _client.State == ConnectionState.Failed, 20000);
            var file = ConnectionInfo.Load(connectionFile);
            var welcome = _client.Welcome;
            Check("handshake (token from the connection file, version check)",
                ready && _client.State == ConnectionState.Ready && welcome.Protocol == Message.ProtocolVersion && _client.InstanceId == file.InstanceId,
                ready && welcome != null
                    ? "instance " + welcome.InstanceId + ", " + _client.TransportName + ", heartbeat " + welcome.Limits.HeartbeatMs + " ms"
                    : "state " + _client.State + (_client.LastError != null ? " " + Describe(_client.LastError) : ""));
            if (_client.State != ConnectionState.Ready) return;

            var audioThread = new Thread(AudioThread) { IsBackground = true, Name = "fake audio device" };
            audioThread.Start();

            // 2. Two NPCs on one connection, different output formats.
            // Blendshapes come from Convai's live service only; REST sessions get none.
            var a = Open("blacksmith", Blacksmith, 48000, 1, "visemes");
            var b = Open("captain", Captain, 44100, 2, _backend == "live" ? "arkit" : null);
            bool opened = PumpUntil(() => (a.Opened.Count > 0 || a.Errors.Count > 0) && (b.Opened.Count > 0 || b.Errors.Count > 0), 40000);
            Check("two NPC sessions on one connection",
                opened && a.Opened.Count == 1 && b.Opened.Count == 1 && a.Session.Sid != b.Session.Sid
                && a.Opened[0].Backend == _backend && a.Session.Audio != null && a.Session.Audio.SampleRate == 48000
                && b.Session.Audio != null && b.Session.Audio.Channels == 2,
                "sids " + a.Session.Sid + ", " + b.Session.Sid + "; capabilities "
                + (a.Opened.Count > 0 ? string.Join(",", a.Opened[0].Capabilities) : "?")
                + (a.Errors.Count + b.Errors.Count > 0 ? "; errors " + string.Join("; ", a.Errors.Concat(b.Errors).Select(Describe)) : ""));
            if (!opened || a.Opened.Count == 0 || b.Opened.Count == 0) return;

            // A deliberate bug in game code: every bot_text handler call throws. Nothing else may suffer.
            a.Session.BotText += m => { throw new InvalidOperationException("deliberate game-code bug"); };

            // 3. Text turns on both NPCs at once.
            long ta = -1, tb = -1;
            a.Session.SendText("Hello! My name is Ada.", r => ta = r is AckMessage && ((AckMessage)r).Turn.HasValue ? ((AckMessage)r).Turn.Value : -2);
            b.Session.SendText("Good morning, captain. Any news from the harbour?", r => tb = r is AckMessage && ((AckMessage)r).Turn.HasValue ? ((AckMessage)r).Turn.Value : -2);
            bool both = PumpUntil(() => ta > 0 && tb > 0 && a.Completed(ta) && b.Completed(tb) || ta == -2 || tb == -2, 45000);
            Check("text turns on two NPCs at the same time", both && ta > 0 && tb > 0,
                "A: \"" + Reply(a, ta) + "\" / B: \"" + Reply(b, tb) + "\"");
            if (!both || ta <= 0 || tb <= 0) return;
            CheckTurnShape(a, ta);
            CheckTurnShape(b, tb);
            CheckAudioOut(a, ta, 48000, 1);
            CheckAudioOut(b, tb, 44100, 2);

            // 4. Playback: the audio thread pulled what arrived; lip sync followed the playback clock.
            PumpUntil(() => a.Session.Audio.AvailableFrames == 0 && b.Session.Audio.AvailableFrames == 0, 8000);
            foreach (var p in new[] { a, b })
            {
                long received = p.Session.AudioOutSamples;
                double rms = p.PulledFrames > 0 ? Math.Sqrt(p.PulledEnergy / (p.PulledFrames * 2)) : 0;
                Check("audio pulled from the ring buffer by the audio thread (" + p.Name + ")",
                    p.PulledFrames >= received * 0.95 && p.PulledFrames <= received && rms > 0.01,
                    p.PulledFrames + " of " + received + " frames played, rms " + rms.ToString("F3")
                    + ", underrun " + p.Session.Audio.UnderrunFrames + ", overflow " + p.Session.Audio.OverflowFrames);
            }
            var vis = a.Turn(ta).OfType<VisemesMessage>().ToList();
            long total = a.Turn(ta).OfType<AudioOutMessage>().Sum(f => f.Samples);
            bool visOk = vis.Count > 0 && vis.All(v => v.Weights.Length == 15 && v.Offset <= total + 48000)
                         && vis.Select(v => v.Offset).SequenceEqual(vis.Select(v => v.Offset).OrderBy(o => o));
            Check("visemes timed on the audio clock, sampled at the playback position",
                visOk && a.LipSyncHits > 0 && a.MaxMouth > 0.1f,
                vis.Count + " viseme frames over " + total + " samples; " + a.LipSyncHits + " lip-sync samples at the playback clock, max mouth "
                + a.MaxMouth.ToString("F2"));

            if (_backend == "live")
            {
                var shapes = b.Turn(tb).OfType<BlendshapesMessage>().ToList();
                long totalB = b.Turn(tb).OfType<AudioOutMessage>().Sum(f => f.Samples);
                bool shapesOk = shapes.Count > 0 && shapes.All(m => m.Format == "arkit" && m.Width == 61 && m.Fps == 60
                                                                    && m.Payload.Length == m.Width * m.Count * 4);
                Check("ARKit blendshape frames (float32 frame) sampled at the playback clock",
                    shapesOk && b.LipSyncHits > 0 && b.MaxMouth > 0.05f,
                    shapes.Count + " blendshapes events, " + shapes.Sum(m => m.Count) + " frames x 61 over " + totalB + " samples; "
                    + b.LipSyncHits + " samples at the playback clock, max JawOpen " + b.MaxMouth.ToString("F2"));
            }
            else
            {
                Skip("ARKit blendshape frames", "only the live backend delivers blendshapes");
            }

            // 5. Actions (and emotion on live).
            long tAct = Say(a, "Please grab the cube.");
            if (tAct > 0)
            {
                PumpUntil(() => a.Completed(tAct), 30000);
                var actions = a.Turn(tAct).OfType<ActionsMessage>().SelectMany(m => m.Actions).ToList();
                Check("actions received", actions.Any(x => x.Name == "Move To" && x.Target == "cube"),
                    string.Join(", ", actions.Select(x => x.Name + (x.Target != null ? " " + x.Target : ""))));
            }
            var emotions = Probes.SelectMany(p => p.Events).Select(e => e.Msg).OfType<EmotionMessage>().ToList();
            if (_backend == "live")
                Check("emotion received", emotions.Count > 0 && emotions.All(e => e.Name.Length > 0 && e.Scale >= 1 && e.Scale <= 3),
                    string.Join(", ", emotions.Select(e => e.Name + "/" + e.Scale).Distinct()));
            else
                Skip("emotion received", "the " + _backend + " backend has no emotion (Convai REST returns none); run with live");

            // 6. Voice turn: push-to-talk microphone frames, then end_of_utterance.
            VoiceTurn(b);

            // 7. Interrupt while the bot speaks.
            InterruptTurn(a);

            // 8. Heartbeats during silence.
            int pingsIn = _client.PingsReceived, pingsOut = _client.PingsSent, connects = _client.ConnectCount;
            Idle(2600);
            Check("heartbeats keep an idle connection alive",
                _client.State == ConnectionState.Ready && _client.ConnectCount == connects
                && _client.PingsSent + _client.PingsReceived > pingsOut + pingsIn,
                "pings sent " + (_client.PingsSent - pingsOut) + ", daemon pings answered " + (_client.PingsReceived - pingsIn)
                + " in 2.6 s idle (" + _client.PingsReceived + " over the run)");

            // 9. Daemon restart in the middle of the conversation.
            Restart(a, b, daemonCtl, connectionFile, restarts);

            // 10. Robustness: nothing malformed arrived; game-code exceptions were contained.
            Check("game-code exceptions isolated per message",
                _callbackErrors > 0 && a.Events.Any(e => e.Msg is BotTextMessage) && _client.MalformedCount == 0,
                _callbackErrors + " handler exceptions reported, conversation unaffected; " + _client.MalformedCount + " malformed messages");

            // 11. Stop is bounded (what OnDisable / play-mode exit / domain reload rely on).
            var sw = Stopwatch.StartNew();
            bool joined = _client.Stop(2000);
            Check("stop closes sessions and joins the network thread quickly", joined && sw.ElapsedMilliseconds < 1500,
                sw.ElapsedMilliseconds + " ms");
        }

        private static string Reply(Probe p, long turn)
        {
            if (turn <= 0) return "";
            var r = p.First<BotReplyMessage>(turn);
            return r == null ? "" : r.Text;
        }

        private static void CheckTurnShape(Probe p, long turn)
        {
            var events = p.Turn(turn);
            var types = events.Select(m => m.Type).ToList();
            string chunks = string.Concat(events.OfType<BotTextMessage>().Select(m => m.Text));
            var reply = events.OfType<BotReplyMessage>().FirstOrDefault();
            bool routed = events.All(m => m.Sid == p.Session.Sid);
            bool order = types.Count > 2 && types[0] == TurnStartedMessage.TypeName && types[types.Count - 1] == TurnCompletedMessage.TypeName;
            var done = events.OfType<TurnCompletedMessage>().FirstOrDefault();
            Check("turn events in order and routed by sid (" + p.Name + ")",
                routed && order && reply != null && chunks.Trim() == reply.Text.Trim() && done != null && !done.Interrupted,
                string.Join(" ", types.Distinct()));
        }

        private static void CheckAudioOut(Probe p, long turn, int rate, int channels)
        {
            var timed = p.TurnTimed(turn).Where(e => e.Msg is AudioOutMessage).ToList();
            var frames = timed.Select(e => (AudioOutMessage)e.Msg).ToList();
            if (frames.Count == 0)
            {
                Fail("audio_out format and clock (" + p.Name + ")", "no audio_out in turn " + turn);
                return;
            }
            int perFrame = rate * 20 / 1000;
            bool format = frames.All(f => f.SampleRate == rate && f.Channels == channels && f.Payload.Length == f.Samples * channels * 2);
            bool sizes = frames.Take(frames.Count - 1).All(f => f.Samples == perFrame) && frames[frames.Count - 1].Samples <= perFrame;
            bool offsets = true, seq = true;
            long expect = 0;
            for (int i = 0; i < frames.Count; i++)
            {
                offsets &= frames[i].Offset == expect;
                expect += frames[i].Samples;
                if (i > 0) seq &= frames[i].Seq == frames[i - 1].Seq + 1;
            }
            double duration = (double)expect / rate;
            double spread = (timed[timed.Count - 1].AtMs - timed[0].AtMs) / 1000.0;
            Check("audio_out format, frame size, offsets and seq (" + p.Name + ")",
                format && sizes && offsets && seq && duration > 0.3 && spread >= duration * 0.5,
                frames.Count + " frames, " + duration.ToString("F2") + " s of " + rate + " Hz x" + channels
                + ", arrived over " + spread.ToString("F2") + " s (paced)");
        }

        private static void VoiceTurn(Probe p)
        {
            const int rate = 16000, frame = 320; // 20 ms
            var pcm = new short[frame];
            long firstTurn = p.Session.LastTurn + 1; // server VAD (live) may open its own turn for the speech
            int sent = 0;
            long start = Clock.ElapsedMilliseconds;
            for (int k = 0; k < 50; k++) // one second, paced like a microphone
            {
                for (int i = 0; i < frame; i++)
                {
                    double t = (double)(k * frame + i) / rate;
                    pcm[i] = (short)(0.4 * 32767 * Math.Sin(2 * Math.PI * 220 * t) * Math.Min(1.0, 4 * t));
                }
                p.Session.SendAudio(pcm, 0, frame, rate, 1);
                sent++;
                long due = start + (k + 1) * 20;
                PumpUntil(() => Clock.ElapsedMilliseconds >= due, 100);
            }
            Message reply = null;
            p.Session.EndOfUtterance(r => reply = r);
            PumpUntil(() => reply != null, 20000);
            var ack = reply as AckMessage;
            if (ack == null || !ack.Turn.HasValue)
            {
                Fail("voice turn (push-to-talk)", "end_of_utterance: " + Describe(reply));
                return;
            }
            long turn = ack.Turn.Value;
            bool done = PumpUntil(() => p.Completed(turn), 40000);
            Idle(200);
            var turns = new List<long>();
            for (long t = Math.Min(firstTurn, turn); t <= turn; t++) turns.Add(t);
            var events = turns.SelectMany(t => p.TurnTimed(t)).OrderBy(e => e.AtMs).ToList();
            var transcript = events.Select(e => e.Msg).OfType<UserTranscriptMessage>().LastOrDefault(m => m.Final);
            var timed = events.Where(e => e.Msg is AudioOutMessage).ToList();
            var spoken = timed.Select(e => e.Msg.EventTurn.Value).Distinct().ToList();
            if (spoken.Count > 1) timed = timed.Where(e => e.Msg.EventTurn == spoken[spoken.Count - 1]).ToList();
            long samples = timed.Sum(e => ((AudioOutMessage)e.Msg).Samples);
            double duration = (double)samples / p.Session.AudioFormat.SampleRate;
            double spread = timed.Count > 1 ? (timed[timed.Count - 1].AtMs - timed[0].AtMs) / 1000.0 : 0;
            if (!(done && transcript != null && timed.Count > 0))
                Info("voice turn " + turn + " events on " + p.Name + ": " + string.Join(" ", p.Events.Where(e => e.AtMs >= start)
                    .Select(e => e.Msg.Type + (e.Msg.EventTurn.HasValue ? "#" + e.Msg.EventTurn : "")).Distinct()));
            Check("voice turn: mic frames in, end_of_utterance, transcript and bot audio out",
                done && transcript != null && timed.Count > 0 && duration > 0.3 && spread >= duration * 0.5 && spread <= duration + 2,
                sent + " mic frames (1.00 s) → transcript \"" + (transcript != null ? transcript.Text : "") + "\" → "
                + timed.Count + " audio frames, " + duration.ToString("F2") + " s, delivered over " + spread.ToString("F2") + " s"
                + " (ack turn " + turn + (spoken.Count > 0 && spoken[spoken.Count - 1] != turn ? ", reply in VAD turn " + spoken[spoken.Count - 1] : "") + ")");
        }

        private static void InterruptTurn(Probe p)
        {
            long turn = Say(p, "Tell me everything about the dragon attack on the northern gate last winter, every detail.");
            if (turn <= 0) return;
            bool speaking = PumpUntil(() => p.Turn(turn).OfType<AudioOutMessage>().Count() >= 5 || p.Completed(turn), 30000);
            if (!speaking || p.Completed(turn))
            {
                Fail("interrupt", "the bot finished before it could be interrupted");
                return;
            }
            long droppedBefore = p.Session.AudioOutDropped;
            Message reply = null;
            p.Session.Interrupt(r => reply = r);
            bool completed = PumpUntil(() => p.Completed(turn) && reply != null, 8000);
            var done = p.First<TurnCompletedMessage>(turn);
            bool cancel = p.Turn(turn).OfType<LipsyncCancelMessage>().Any();
            Idle(500);
            var pos = p.Session.Audio.GetPlaybackPosition();
            bool silent = p.Session.Audio.AvailableFrames == 0 || pos.Turn != turn;
            var turnEvents = p.TurnTimed(turn);
            var completedAt = turnEvents.Where(e => e.Msg is TurnCompletedMessage).Select(e => e.AtMs).DefaultIfEmpty(long.MaxValue).First();
            int late = turnEvents.Count(e => e.Msg is AudioOutMessage && e.AtMs > completedAt);
            Check("interrupt: turn completes interrupted, queued audio flushed, late audio dropped",
                completed && reply is AckMessage && done != null && done.Interrupted && silent,
                "ack " + Describe(reply) + ", lipsync_cancel " + (cancel ? "yes" : "no") + ", " + late + " late audio frames after completion, "
                + (p.Session.AudioOutDropped - droppedBefore) + " samples dropped by the client");
            if (!cancel) Info("no lipsync_cancel arrived for the interrupted turn on " + _backend + " (PROTOCOL.md §5 says it should)");
            long next = Say(p, "Are you still there?");
            bool ok = next == turn + 1 && PumpUntil(() => p.Completed(next), 30000);
            var nd = next > 0 ? p.First<TurnCompletedMessage>(next) : null;
            Check("next turn after an interrupt is clean", ok && nd != null && !nd.Interrupted && p.Turn(next).OfType<AudioOutMessage>().Any(),
                "turn " + next + ": \"" + Reply(p, next) + "\"");
        }

        private static bool Ctl(string script, string verb)
        {
            var psi = new ProcessStartInfo("bash", "\"" + script + "\" " + verb) { UseShellExecute = false };
            using (var proc = Process.Start(psi))
            {
                if (!proc.WaitForExit(40000)) { try { proc.Kill(); } catch (Exception) { } return false; }
                return proc.ExitCode == 0;
            }
        }

        private static void Restart(Probe a, Probe b, string daemonCtl, string connectionFile, List<bool> restarts)
        {
            string oldInstance = _client.InstanceId;
            string csidA = a.Session.CharacterSessionId, csidB = b.Session.CharacterSessionId;
            int openedA = a.Opened.Count, openedB = b.Opened.Count;
            Info("restart: kill -9 daemon " + oldInstance + "; sessions " + csidA + ", " + csidB);
            long t0 = Clock.ElapsedMilliseconds;
            if (!Ctl(daemonCtl, "kill")) { Fail("daemon restart", "could not kill the daemon"); return; }
            Idle(300); // the game keeps running while the daemon is gone
            if (!Ctl(daemonCtl, "start")) { Fail("daemon restart", "could not start the daemon again"); return; }
            long t1 = Clock.ElapsedMilliseconds;
            bool back = PumpUntil(() => _client.ConnectCount >= 2 && a.Opened.Count > openedA && b.Opened.Count > openedB, 40000);
            long t2 = Clock.ElapsedMilliseconds;
            var file = ConnectionInfo.Load(connectionFile);
            Check("daemon restart noticed (new instance id) and reconnected",
                back && restarts.Count >= 2 && restarts[restarts.Count - 1] && _client.InstanceId != oldInstance && _client.InstanceId == file.InstanceId,
                "instance " + oldInstance + " → " + _client.InstanceId + ", sessions back " + (t2 - t1) + " ms after the new daemon was ready ("
                + (t2 - t0) + " ms after the kill)");
            if (!back) return;
            var oa = a.Opened[a.Opened.Count - 1];
            var ob = b.Opened[b.Opened.Count - 1];
            Check("sessions reopened with the same character_session_id",
                a.Session.CharacterSessionId == csidA && b.Session.CharacterSessionId == csidB && oa.Resumed && ob.Resumed,
                "A " + a.Session.CharacterSessionId + " resumed=" + oa.Resumed + ", B " + b.Session.CharacterSessionId + " resumed=" + ob.Resumed);

            long ta = -1, tb = -1;
            a.Session.SendText("Do you remember my name?", r => ta = r is AckMessage && ((AckMessage)r).Turn.HasValue ? ((AckMessage)r).Turn.Value : -2);
            b.Session.SendText("Still on duty, captain?", r => tb = r is AckMessage && ((AckMessage)r).Turn.HasValue ? ((AckMessage)r).Turn.Value : -2);
            bool done = PumpUntil(() => ta > 0 && tb > 0 && a.Completed(ta) && b.Completed(tb) || ta == -2 || tb == -2, 45000);
            string ra = Reply(a, ta);
            Check("conversation continues after the restart (the NPC still knows the player)",
                done && ra.Contains("Ada") && Reply(b, tb).Length > 0 && a.Turn(ta).OfType<AudioOutMessage>().Any(),
                "A: \"" + ra + "\" / B: \"" + Reply(b, tb) + "\"");
        }
    }
}
