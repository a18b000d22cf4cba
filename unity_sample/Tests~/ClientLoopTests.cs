using System;
using System.Collections.Generic;
using System.Threading;
using ConvaiBridge.Client;
using ConvaiBridge.MsgPack;
using ConvaiBridge.Protocol;
using ConvaiBridge.Transport;

namespace ConvaiBridge.Tests
{
    /// <summary>
    /// An in-memory transport that lets a test play the daemon: inject any bytes (including garbage the
    /// real daemon never sends) and see what the client sent. Used only for fault injection; the real
    /// conversation tests run against the real daemon (Integration.cs).
    /// </summary>
    public sealed class ScriptedTransport : IBridgeTransport
    {
        private readonly Queue<List<byte[]>> _incoming = new Queue<List<byte[]>>();
        private readonly List<Message> _sent = new List<Message>();
        private readonly Codec _codec = new Codec();
        public int Opens;
        public int Closes;

        public string Name { get { return "scripted"; } }

        public void Open(string endpoint) { lock (this) { Opens++; _incoming.Clear(); } }
        public void Close() { lock (this) Closes++; }
        public void Dispose() { }

        public bool TrySend(IList<byte[]> parts)
        {
            var m = _codec.Decode(parts); // the client must only ever send valid messages
            lock (this) { _sent.Add(m); Monitor.PulseAll(this); }
            return true;
        }

        public bool TryReceive(List<byte[]> parts, int timeoutMs)
        {
            parts.Clear();
            lock (this)
            {
                if (_incoming.Count == 0 && timeoutMs > 0) Monitor.Wait(this, timeoutMs);
                if (_incoming.Count == 0) return false;
                parts.AddRange(_incoming.Dequeue());
            }
            var hook = BeforeDeliver;
            BeforeDeliver = null;
            if (hook != null) hook(); // runs on the network thread, just before the client handles the message
            return true;
        }

        /// <summary>One-shot code to run on the network thread when the next message is handed over.</summary>
        public volatile Action BeforeDeliver;

        public void Inject(params byte[][] parts)
        {
            lock (this) { _incoming.Enqueue(new List<byte[]>(parts)); Monitor.PulseAll(this); }
        }

        public void Inject(Message m) { Inject(new Codec().Encode(m).ToArray()); }

        public void InjectMap(MsgMap header, params byte[][] frames)
        {
            var w = new MsgPackWriter();
            w.WriteAny(header);
            var parts = new List<byte[]> { w.ToArray() };
            parts.AddRange(frames);
            Inject(parts.ToArray());
        }

        public T WaitSent<T>(Func<T, bool> match, int timeoutMs = 3000) where T : Message
        {
            var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
            lock (this)
            {
                while (true)
                {
                    foreach (var m in _sent)
                    {
                        var t = m as T;
                        if (t != null && match(t)) { _sent.Remove(m); return t; }
                    }
                    var left = deadline - DateTime.UtcNow;
                    if (left <= TimeSpan.Zero) throw new AssertionException("client never sent the expected " + typeof(T).Name);
                    Monitor.Wait(this, left);
                }
            }
        }
    }

    public static class ClientLoopTests
    {
        private static WelcomeMessage Welcome(long id, string instance)
        {
            return new WelcomeMessage
            {
                Id = id, Protocol = "1.0", DaemonVersion = "test", InstanceId = instance,
                Backends = new List<string> { "interaction" }, Capabilities = new List<string>(),
                Limits = new Limits
                {
                    MaxMessageBytes = 1 << 20, MaxSessions = 8, HeartbeatMs = 300, ClientTimeoutMs = 5000,
                    MaxAudioInMs = 2000, AudioLeadMs = 100,
                },
            };
        }

        private static void PollUntil(BridgeClient client, Func<bool> done, int timeoutMs, string what)
        {
            var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
            while (!done())
            {
                if (DateTime.UtcNow > deadline) throw new AssertionException("timed out waiting for " + what);
                client.Poll();
                Thread.Sleep(2);
            }
        }

        private static BridgeClient Start(ScriptedTransport t, out HelloMessage hello, int requestTimeoutMs = 15000)
        {
            var client = new BridgeClient(new BridgeClientOptions
            {
                Endpoint = "tcp://127.0.0.1:1", Token = "tok", TransportFactory = () => t,
                RequestTimeoutMs = requestTimeoutMs, GracefulCloseMs = 50,
            });
            client.Start();
            hello = t.WaitSent<HelloMessage>(h => true);
            Assert.Equal("tok", hello.Token, "token from options");
            Assert.Equal(Message.ProtocolVersion, hello.Protocol, "protocol");
            return client;
        }

        private static NpcSession OpenSession(BridgeClient client, ScriptedTransport t, string sid)
        {
            var npc = client.OpenSession(new SessionOpenMessage { CharacterId = "c1", Label = "npc", Backend = "interaction" });
            var open = t.WaitSent<SessionOpenMessage>(m => true);
            t.Inject(new AckMessage { Id = open.Id, Sid = sid });
            t.Inject(new SessionOpenedMessage
            {
                Sid = sid, CharacterId = "c1", CharacterSessionId = "cs-1", Backend = "interaction", Resumed = false,
                Audio = new AudioFormat { SampleRate = 16000, Channels = 1, FrameMs = 20 }, Capabilities = new List<string>(),
            });
            PollUntil(client, () => npc.State == SessionState.Open, 2000, "session open");
            return npc;
        }

        [Test]
        public static void MalformedAndUnknownInputNeverStopsTheClient()
        {
            var t = new ScriptedTransport();
            HelloMessage hello;
            var client = Start(t, out hello);
            try
            {
                t.Inject(Welcome(hello.Id.Value, "i-1"));
                PollUntil(client, () => client.State == ConnectionState.Ready, 2000, "ready");
                var npc = OpenSession(client, t, "s-1");
                var malformed = new List<string>();
                var unknown = new List<string>();
                var texts = new List<string>();
                client.MalformedMessage += e => malformed.Add(e.Code);
                npc.UnknownEvent += u => unknown.Add(u.Type);
                npc.BotText += b => texts.Add(b.Text);

                t.Inject(new byte[] { 0xc1, 0xc1 });                                   // not msgpack
                t.Inject(new byte[] { 0x93, 1, 2, 3 });                                // not a map
                t.Inject(new byte[0]);                                                 // empty
                t.InjectMap(new MsgMap { { "v", 2L }, { "type", "bot_text" } });       // other major
                t.InjectMap(new MsgMap { { "v", 1L }, { "type", "bot_text" }, { "sid", "s-1" }, { "turn", "x" }, { "text", "bad" } });
                t.InjectMap(new MsgMap
                {
                    { "v", 1L }, { "type", "audio_out" }, { "sid", "s-1" }, { "turn", 1L }, { "seq", 0L }, { "offset", 0L },
                    { "sample_rate", 16000L }, { "channels", 1L }, { "samples", 10L },
                }, new byte[3]);                                                       // frame size mismatch
                t.InjectMap(new MsgMap { { "v", 1L }, { "type", "hologram" }, { "sid", "s-1" }, { "x", 1L } }, new byte[2]);
                t.InjectMap(new MsgMap
                {
                    { "v", 1L }, { "type", "bot_text" }, { "sid", "s-1" }, { "turn", 1L }, { "text", "still here" },
                    { "future", new MsgMap { { "a", new List<object> { 1L } } } },
                });
                PollUntil(client, () => texts.Count == 1, 2000, "the valid event after the garbage");
                Assert.Equal("bad_message,bad_message,bad_message,version_mismatch,invalid_field,invalid_field",
                    string.Join(",", malformed), "malformed reported with codes");
                Assert.Equal("hologram", string.Join(",", unknown), "unknown event surfaced");
                Assert.Equal("still here", texts[0], "extra fields ignored");
                Assert.Equal(ConnectionState.Ready, client.State, "still connected");
                Assert.Equal(6, client.MalformedCount, "count");
            }
            finally { client.Stop(); }
        }

        [Test]
        public static void PingIsAnsweredAndIdleClientPings()
        {
            var t = new ScriptedTransport();
            HelloMessage hello;
            var client = Start(t, out hello);
            try
            {
                t.Inject(Welcome(hello.Id.Value, "i-1"));
                t.Inject(new PingMessage { Id = 4242 });
                t.WaitSent<PongMessage>(p => p.Id == 4242);
                t.WaitSent<PingMessage>(p => true, 2000); // heartbeat_ms 300 from the welcome
            }
            finally { client.Stop(); }
        }

        [Test]
        public static void HandlerExceptionsAreIsolated()
        {
            var t = new ScriptedTransport();
            HelloMessage hello;
            var client = Start(t, out hello);
            try
            {
                t.Inject(Welcome(hello.Id.Value, "i-1"));
                PollUntil(client, () => client.State == ConnectionState.Ready, 2000, "ready");
                var npc = OpenSession(client, t, "s-1");
                var errors = new List<Exception>();
                client.CallbackException += errors.Add;
                var turns = new List<long>();
                npc.TurnStarted += m => { throw new InvalidOperationException("game bug"); };
                npc.BotReply += m => turns.Add(m.Turn);
                t.Inject(new TurnStartedMessage { Sid = "s-1", Turn = 1, Source = "text" });
                t.Inject(new BotReplyMessage { Sid = "s-1", Turn = 1, Text = "hi" });
                PollUntil(client, () => turns.Count == 1, 2000, "bot_reply after a throwing handler");
                Assert.Equal(1, errors.Count, "exception reported");
            }
            finally { client.Stop(); }
        }

        [Test]
        public static void RequestsGetRepliesTimeoutsAndLocalErrors()
        {
            var t = new ScriptedTransport();
            HelloMessage hello;
            var client = Start(t, out hello, requestTimeoutMs: 300);
            try
            {
                t.Inject(Welcome(hello.Id.Value, "i-1"));
                PollUntil(client, () => client.State == ConnectionState.Ready, 2000, "ready");
                var npc = OpenSession(client, t, "s-1");
                Message reply1 = null, reply2 = null, reply3 = null;
                npc.SendText("hello", r => reply1 = r);
                var text = t.WaitSent<TextMessage>(m => m.Text == "hello");
                Assert.Equal("s-1", text.Sid, "sid filled in");
                t.Inject(new AckMessage { Id = text.Id, Sid = "s-1", Turn = 4 });
                npc.SendText("nobody answers", r => reply2 = r);
                npc.Request(new SessionOpenMessage { CharacterId = "x", Backend = "grpc" }, r => reply3 = r);
                PollUntil(client, () => reply1 != null && reply2 != null && reply3 != null, 3000, "replies");
                Assert.Equal(4L, ((AckMessage)reply1).Turn, "ack turn");
                Assert.Equal(4L, npc.LastTurn, "turn noted");
                Assert.Equal("timeout", ((ErrorMessage)reply2).Code, "local timeout");
                Assert.Equal("invalid_field", ((ErrorMessage)reply3).Code, "refused before sending");
            }
            finally { client.Stop(); }
        }

        [Test]
        public static void NotReadyMeansTheDaemonForgotUsAndSessionsAreReopened()
        {
            var t = new ScriptedTransport();
            HelloMessage hello;
            var client = Start(t, out hello);
            try
            {
                var restarts = new List<bool>();
                client.Connected += (w, restarted) => restarts.Add(restarted);
                t.Inject(Welcome(hello.Id.Value, "i-1"));
                PollUntil(client, () => client.State == ConnectionState.Ready, 2000, "ready");
                var npc = OpenSession(client, t, "s-1");
                int opens = t.Opens;
                t.Inject(new ErrorMessage { Id = 999, Code = "not_ready", Message = "send hello first", Retryable = false, Fatal = false });
                var hello2 = t.WaitSent<HelloMessage>(h => true);
                Assert.True(t.Opens > opens, "a fresh socket");
                t.Inject(Welcome(hello2.Id.Value, "i-2"));
                var reopen = t.WaitSent<SessionOpenMessage>(m => true);
                Assert.Equal("cs-1", reopen.CharacterSessionId, "resumes the conversation");
                t.Inject(new AckMessage { Id = reopen.Id, Sid = "s-2" });
                PollUntil(client, () => npc.Sid == "s-2" && restarts.Count == 2, 2000, "new sid");
                Assert.Equal("False,True", string.Join(",", restarts), "restart noticed by instance id");
            }
            finally { client.Stop(); }
        }

        [Test]
        public static void SessionOpenedDuringTheWelcomeIsOpenedExactlyOnce()
        {
            var t = new ScriptedTransport();
            HelloMessage hello;
            var client = Start(t, out hello);
            try
            {
                // OpenSession lands while the welcome is being handled: both the welcome handler and the
                // queued open action see the session.
                NpcSession npc = null;
                t.BeforeDeliver = () => npc = client.OpenSession(new SessionOpenMessage { CharacterId = "c1", Backend = "interaction" });
                t.Inject(Welcome(hello.Id.Value, "i-1"));
                var open = t.WaitSent<SessionOpenMessage>(m => true);
                Assert.Equal(SessionState.Opening, npc.State, "opening");
                Thread.Sleep(300);
                bool second = true;
                try { t.WaitSent<SessionOpenMessage>(m => true, 1); }
                catch (AssertionException) { second = false; }
                Assert.True(!second, "session_open sent twice");
                Assert.True(open.CharacterSessionId == null, "a new conversation");
            }
            finally { client.Stop(); }
        }

        [Test]
        public static void ConnectionFileIsParsed()
        {
            var info = ConnectionInfo.Parse("{\"endpoint\": \"tcp://127.0.0.1:7301\", \"token\": \"ab\\u00e9\", \"pid\": 42, \"instance_id\": \"i-9\", \"new\": [1, 2.5, null, true]}");
            Assert.Equal("tcp://127.0.0.1:7301", info.Endpoint, "endpoint");
            Assert.Equal("ab\u00e9", info.Token, "token with an escape");
            Assert.Equal(42L, info.Pid, "pid");
            Assert.Equal("i-9", info.InstanceId, "instance");
            foreach (var bad in new[] { "[]", "{\"token\": \"t\"}", "{\"endpoint\": \"tcp://x:1\"}", "{\"endpoint\": ", "" })
            {
                bool refused = false;
                try { ConnectionInfo.Parse(bad); }
                catch (FormatException) { refused = true; }
                Assert.True(refused, "refused: " + bad);
            }
        }

        [Test]
        public static void StopIsBoundedEvenWhenTheDaemonNeverAnswers()
        {
            var t = new ScriptedTransport();
            HelloMessage hello;
            var client = Start(t, out hello);
            t.Inject(Welcome(hello.Id.Value, "i-1"));
            PollUntil(client, () => client.State == ConnectionState.Ready, 2000, "ready");
            OpenSession(client, t, "s-1");
            var sw = System.Diagnostics.Stopwatch.StartNew();
            Assert.True(client.Stop(1000), "joined");
            Assert.True(sw.ElapsedMilliseconds < 900, "stop took " + sw.ElapsedMilliseconds + " ms");
            t.WaitSent<SessionCloseMessage>(m => m.Sid == "s-1", 100);
        }
    }
}
