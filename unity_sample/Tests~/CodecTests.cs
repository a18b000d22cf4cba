using System;
using System.Collections.Generic;
using System.IO;
using ConvaiBridge.MsgPack;
using ConvaiBridge.Protocol;

namespace ConvaiBridge.Tests
{
    /// <summary>Building messages through the typed API, tolerance rules, and malformed-input robustness.</summary>
    public static class CodecTests
    {
        public static string VectorDir;

        private static byte[] Vector(string name) { return File.ReadAllBytes(Path.Combine(VectorDir, name + ".msgpack")); }

        [Test]
        public static void HelloBuiltByHandIsCanonical()
        {
            var hello = new HelloMessage
            {
                Id = 1, Protocol = "1.0", Token = "4f1c2a9e7b3d", Client = "convai-bridge-cs",
                ClientVersion = "0.1.0", Engine = "unity",
            };
            Assert.Bytes(Vector("hello"), new Codec().EncodeHeader(hello), "hello");
        }

        [Test]
        public static void SessionOpenBuiltByHandIsCanonical()
        {
            var open = new SessionOpenMessage
            {
                Id = 2,
                CharacterId = "c0ffee00-0000-4000-8000-000000000001",
                Backend = WireEnums.Backend.Live,
                Transport = WireEnums.Transport.Livekit,
                Label = "blacksmith",
                EndUserId = "player-42",
                EndUserMetadata = new MsgMap { { "name", "Alice" } },
                ConnectionType = "audio",
                DynamicInfo = new DynamicInfo { Text = "It is raining.", KeepInContext = true },
                SceneDescription = new List<SceneObject> { new SceneObject { Name = "forge", Description = "a hot forge" } },
                NarrativeTemplateKeys = new OrderedMap<string> { { "player_name", "Alice" } },
                ActionConfig = new ActionConfig
                {
                    Actions = new List<string> { "Move To", "Wave" },
                    Objects = new List<SceneObject> { new SceneObject { Name = "cube", Description = "a red cube" } },
                    Characters = new List<CharacterRef> { new CharacterRef { Name = "Guard", Bio = "the town guard" } },
                    CurrentAttentionObject = "cube",
                },
                Debug = false,
                Audio = new AudioFormat { SampleRate = 44100, Channels = 2, FrameMs = 20 },
                Voice = true,
                Lipsync = new LipSync { Provider = "blendshapes", Format = "arkit", Fps = 60 },
            };
            Assert.Bytes(Vector("session_open"), new Codec().EncodeHeader(open), "session_open");
        }

        [Test]
        public static void AudioInBuiltByHandIsCanonical()
        {
            var msg = new AudioInMessage
            {
                Sid = "s-8f3a2c", Seq = 41, SampleRate = 16000, Channels = 1, Samples = 4,
                Payload = Assert.FromHex("0000ff7f0180e803"),
            };
            var parts = new Codec().Encode(msg);
            Assert.Bytes(Vector("audio_in"), parts[0], "audio_in header");
            Assert.Bytes(File.ReadAllBytes(Path.Combine(VectorDir, "audio_in.1.bin")), parts[1], "audio_in pcm");
        }

        [Test]
        public static void SidIsDroppedOnSidlessTypes()
        {
            var ping = new PingMessage { Id = 7, Sid = "s-1" };
            Assert.Bytes(Vector("ping"), new Codec().EncodeHeader(ping), "ping without sid");
        }

        [Test]
        public static void EncoderRefusesWhatTheDaemonWouldRefuse()
        {
            var codec = new Codec();
            Assert.Throws("missing_field", () => codec.EncodeHeader(new TextMessage { Id = 3, Sid = "s" }), "text without text");
            Assert.Throws("missing_field", () => codec.EncodeHeader(new TextMessage { Sid = "s", Text = "x" }), "request without id");
            Assert.Throws("missing_field", () => codec.EncodeHeader(new TextMessage { Id = 3, Text = "x" }), "text without sid");
            Assert.Throws("invalid_field", () => codec.EncodeHeader(new SessionOpenMessage { Id = 1, CharacterId = "c", Backend = "grpc" }), "bad enum");
            Assert.Throws("invalid_field", () => codec.Encode(new AudioInMessage
            {
                Sid = "s", Seq = 1, SampleRate = 16000, Channels = 1, Samples = 4, Payload = new byte[6],
            }), "frame size");
            Assert.Throws("bad_message", () => codec.Encode(new AudioInMessage
            {
                Sid = "s", Seq = 1, SampleRate = 16000, Channels = 1, Samples = 4,
            }), "missing frame");
        }

        [Test]
        public static void ExtraFieldsAreIgnored()
        {
            var header = (MsgMap)MsgPackReader.Decode(Vector("bot_text"));
            header["future_field"] = new MsgMap { { "x", 1L } };
            header["another"] = new List<object> { 1L, "two", 3.5 };
            var w = new MsgPackWriter();
            w.WriteAny(header);
            var codec = new Codec();
            var msg = (BotTextMessage)codec.Decode(new List<byte[]> { w.ToArray() });
            Assert.Equal("Sure,", msg.Text, "text");
            Assert.Equal(3L, msg.Turn, "turn");
            Assert.Bytes(Vector("bot_text"), codec.EncodeHeader(msg), "re-encoded without the extras");
        }

        [Test]
        public static void UnknownEventIsSurfacedGenerically()
        {
            var header = new MsgMap
            {
                { "v", 1L }, { "type", "hologram" }, { "sid", "s-1" }, { "ts", 5L }, { "shape", "cube" },
            };
            var w = new MsgPackWriter();
            w.WriteAny(header);
            var parts = new List<byte[]> { w.ToArray(), new byte[] { 1, 2 } };
            var codec = new Codec();
            Assert.Throws("unknown_type", () => codec.Decode(parts), "strict");
            var msg = codec.Decode(parts, allowUnknownTypes: true) as UnknownMessage;
            Assert.True(msg != null, "UnknownMessage");
            Assert.Equal("hologram", msg.Type, "type");
            Assert.Equal("s-1", msg.Sid, "sid");
            Assert.Equal("cube", (string)msg.Header["shape"], "field");
            Assert.Equal(1, msg.Frames.Count, "frames kept");
            Assert.Bytes(parts[0], codec.EncodeHeader(msg), "generic re-encode");
        }

        [Test]
        public static void IntegersUseTheSmallestForm()
        {
            var cases = new Dictionary<long, string>
            {
                { 0, "00" }, { 127, "7f" }, { 128, "cc80" }, { 255, "ccff" }, { 256, "cd0100" }, { 65535, "cdffff" },
                { 65536, "ce00010000" }, { 4294967295L, "ceffffffff" }, { 4294967296L, "cf0000000100000000" },
                { -1, "ff" }, { -32, "e0" }, { -33, "d0df" }, { -128, "d080" }, { -129, "d1ff7f" },
                { -32768, "d18000" }, { -32769, "d2ffff7fff" }, { -2147483649L, "d3ffffffff7fffffff" },
            };
            foreach (var kv in cases)
            {
                var w = new MsgPackWriter();
                w.WriteInt(kv.Key);
                Assert.Equal(kv.Value, Assert.Hex(w.ToArray()), "int " + kv.Key);
                Assert.Equal((object)kv.Key, MsgPackReader.Decode(w.ToArray()), "decode " + kv.Key);
            }
        }

        [Test]
        public static void StringsUseTheSmallestHeader()
        {
            var cases = new[] { 0, 31, 32, 255, 256, 65535, 65536 };
            var prefixes = new[] { "a0", "bf", "d920", "d9ff", "da0100", "daffff", "db00010000" };
            for (int i = 0; i < cases.Length; i++)
            {
                var s = new string('x', cases[i]);
                var w = new MsgPackWriter();
                w.WriteString(s);
                var hex = Assert.Hex(w.ToArray());
                Assert.True(hex.StartsWith(prefixes[i], StringComparison.Ordinal), "str " + cases[i] + " header " + hex.Substring(0, Math.Min(12, hex.Length)));
                Assert.Equal(s, (string)MsgPackReader.Decode(w.ToArray()), "decode str " + cases[i]);
            }
            var big = new MsgPackWriter();
            big.WriteMapHeader(16);
            Assert.Equal("de0010", Assert.Hex(big.ToArray()), "map16 header");
        }

        [Test]
        public static void BeginEndMapShrinksTheHeader()
        {
            foreach (int n in new[] { 0, 15, 16, 70000 })
            {
                var a = new MsgPackWriter();
                int mark = a.BeginMap();
                for (int i = 0; i < n; i++) { a.WriteString("k"); a.WriteInt(i); }
                a.EndMap(mark, n);
                var b = new MsgPackWriter();
                b.WriteMapHeader(n);
                for (int i = 0; i < n; i++) { b.WriteString("k"); b.WriteInt(i); }
                Assert.Bytes(b.ToArray(), a.ToArray(), "map of " + n);
            }
        }

        [Test]
        public static void IntegerFieldsRejectFloatsAndBools()
        {
            var codec = new Codec();
            foreach (object bad in new object[] { 3.0, true, "3" })
            {
                var w = new MsgPackWriter();
                w.WriteAny(new MsgMap { { "v", 1L }, { "type", "bot_text" }, { "sid", "s" }, { "turn", bad }, { "text", "x" } });
                Assert.Throws("invalid_field", () => codec.Decode(new List<byte[]> { w.ToArray() }), "turn=" + bad);
            }
            var ok = new MsgPackWriter();
            ok.WriteAny(new MsgMap { { "v", 1L }, { "type", "visemes" }, { "sid", "s" }, { "turn", 1L }, { "offset", 0L }, { "weights", new List<object> { 1L, 0.5 } } });
            var vis = (VisemesMessage)codec.Decode(new List<byte[]> { ok.ToArray() });
            Assert.Equal(1.0, vis.Weights[0], "int accepted as float");
        }

        [Test]
        public static void NilMeansAbsent()
        {
            var w = new MsgPackWriter();
            w.WriteAny(new MsgMap { { "v", 1L }, { "type", "turn_completed" }, { "sid", "s" }, { "turn", 2L }, { "interrupted", false }, { "aborted", null } });
            var codec = new Codec();
            var tc = (TurnCompletedMessage)codec.Decode(new List<byte[]> { w.ToArray() });
            Assert.True(!tc.Aborted.HasValue, "aborted absent");
            var w2 = new MsgPackWriter();
            w2.WriteAny(new MsgMap { { "v", 1L }, { "type", "bot_text" }, { "sid", "s" }, { "turn", 2L }, { "text", null } });
            Assert.Throws("missing_field", () => codec.Decode(new List<byte[]> { w2.ToArray() }), "nil required");
        }

        [Test]
        public static void ClientsMayAcceptNewEnumValuesFromTheDaemonOnly()
        {
            var w = new MsgPackWriter();
            w.WriteAny(new MsgMap { { "v", 1L }, { "type", "session_closed" }, { "sid", "s" }, { "reason", "migrated" } });
            var closed = new List<byte[]> { w.ToArray() };
            Assert.Throws("invalid_field", () => new Codec().Decode(closed), "strict by default");
            var lenient = new Codec { LenientDaemonEnums = true };
            Assert.Equal("migrated", ((SessionClosedMessage)lenient.Decode(closed)).Reason, "lenient for daemon messages");
            var bad = new List<byte[]> { File.ReadAllBytes(Path.Combine(VectorDir, "invalid", "bad_enum.msgpack")) };
            Assert.Throws("invalid_field", () => lenient.Decode(bad), "client messages stay strict");
        }

        [Test]
        public static void OversizedMessagesAreRefused()
        {
            var codec = new Codec { MaxMessageBytes = 64 };
            var parts = new List<byte[]> { Vector("audio_out"), new byte[64] };
            Assert.Throws("message_too_large", () => codec.Decode(parts), "too large");
        }

        /// <summary>
        /// Truncations and byte mutations of every vector: the decoder may accept or refuse, but only with
        /// a ProtocolException; anything else (IndexOutOfRange, OutOfMemory, ...) is a crash.
        /// </summary>
        [Test]
        public static void MalformedInputNeverCrashes()
        {
            var rng = new Random(1234);
            var codec = new Codec();
            int refused = 0, accepted = 0;
            foreach (var file in Directory.GetFiles(VectorDir, "*.msgpack"))
            {
                var data = File.ReadAllBytes(file);
                var frame = new byte[8];
                for (int cut = 0; cut < data.Length; cut++)
                {
                    var t = new byte[cut];
                    Buffer.BlockCopy(data, 0, t, 0, cut);
                    Probe(codec, new List<byte[]> { t }, ref refused, ref accepted);
                }
                for (int k = 0; k < 200; k++)
                {
                    var m = (byte[])data.Clone();
                    int flips = 1 + rng.Next(3);
                    for (int f = 0; f < flips; f++) m[rng.Next(m.Length)] = (byte)rng.Next(256);
                    var parts = new List<byte[]> { m };
                    if (rng.Next(2) == 0) parts.Add(frame);
                    Probe(codec, parts, ref refused, ref accepted);
                }
            }
            var hostile = new[]
            {
                "dfffffffff", "ddffffffff", "dbffffffff", "c6ffffffff", "81a176dc7fff", "c1", "",
                "82a17601a4747970659191919191919191919191919191919191919191919191919191919191919191919191",
            };
            foreach (var hex in hostile) Probe(codec, new List<byte[]> { Assert.FromHex(hex) }, ref refused, ref accepted);
            Assert.True(refused > 1000, "mutations refused: " + refused);
        }

        private static void Probe(Codec codec, List<byte[]> parts, ref int refused, ref int accepted)
        {
            try
            {
                codec.Decode(parts, allowUnknownTypes: true);
                accepted++;
            }
            catch (ProtocolException e)
            {
                if (!ErrorCodes.IsKnown(e.Code)) throw new AssertionException("unknown code " + e.Code);
                refused++;
            }
            catch (Exception e)
            {
                throw new AssertionException("input " + Assert.Hex(parts[0]) + " crashed the decoder: " + e);
            }
        }
    }
}
