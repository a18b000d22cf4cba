using System;
using System.Collections.Generic;
using System.IO;
using ConvaiBridge.MsgPack;
using ConvaiBridge.Protocol;

namespace ConvaiBridge.Tests
{
    /// <summary>The golden vectors in protocol/vectors: decode, re-encode byte for byte, reject invalid input.</summary>
    public static class VectorTests
    {
        public static void Register(TestRunner runner, string dir)
        {
            var index = (MsgMap)Json.Parse(File.ReadAllText(Path.Combine(dir, "index.json")));
            var messages = (MsgMap)index["messages"];
            runner.Add("vectors.index_covers_every_type", () =>
            {
                foreach (var type in MessageRegistry.AllTypes)
                    Assert.True(messages.ContainsKey(type), "index.json lacks " + type);
                Assert.Equal(MessageRegistry.AllTypes.Length, messages.Count, "vector count");
            });
            foreach (var kv in messages)
            {
                string name = kv.Key;
                int partCount = (int)(long)kv.Value;
                runner.Add("vectors.roundtrip." + name, () => RoundTrip(dir, name, partCount));
                runner.Add("vectors.json_twin." + name, () => JsonTwin(dir, name, partCount));
            }

            var expected = (MsgMap)Json.Parse(File.ReadAllText(Path.Combine(dir, "invalid", "expected.json")));
            foreach (var kv in expected)
            {
                string name = kv.Key;
                var spec = (MsgMap)kv.Value;
                string code = (string)spec["code"];
                int frames = (int)(long)spec["frames"];
                runner.Add("vectors.invalid." + name, () =>
                {
                    var parts = LoadParts(Path.Combine(dir, "invalid"), name, frames);
                    Assert.Throws(code, () => new Codec().Decode(parts), name);
                    Assert.Throws(code, () => new Codec().Decode(parts, allowUnknownTypes: name != "unknown_type"), name + " (lenient)");
                });
            }
        }

        public static List<byte[]> LoadParts(string dir, string name, int partCount)
        {
            var parts = new List<byte[]> { File.ReadAllBytes(Path.Combine(dir, name + ".msgpack")) };
            for (int i = 1; i < partCount; i++) parts.Add(File.ReadAllBytes(Path.Combine(dir, name + "." + i + ".bin")));
            return parts;
        }

        private static void RoundTrip(string dir, string name, int partCount)
        {
            var parts = LoadParts(dir, name, partCount);
            var codec = new Codec();
            Message msg = codec.Decode(parts);
            Assert.Equal(name, msg.Type, "type");
            Assert.Equal(Pascal(name) + "Message", msg.GetType().Name, "typed class");
            var again = codec.Encode(msg);
            Assert.Equal(parts.Count, again.Count, "part count");
            for (int i = 0; i < parts.Count; i++) Assert.Bytes(parts[i], again[i], name + " part " + i);
        }

        /// <summary>
        /// The readable twin, parsed as JSON and written with the generic writer, must give the same bytes:
        /// checks the writer and the typed decoder independently of the msgpack file.
        /// </summary>
        private static void JsonTwin(string dir, string name, int partCount)
        {
            var twin = (MsgMap)Json.Parse(File.ReadAllText(Path.Combine(dir, name + ".json")));
            var w = new MsgPackWriter();
            w.WriteAny(twin["header"]);
            var parts = LoadParts(dir, name, partCount);
            Assert.Bytes(parts[0], w.ToArray(), name + " header from JSON");
            var hexFrames = (List<object>)twin["frames"];
            Assert.Equal(partCount - 1, hexFrames.Count, "frame count");
            for (int i = 0; i < hexFrames.Count; i++)
                Assert.Bytes(parts[i + 1], Assert.FromHex((string)hexFrames[i]), name + " frame " + (i + 1));
        }

        private static string Pascal(string snake)
        {
            var sb = new System.Text.StringBuilder();
            foreach (var p in snake.Split('_')) sb.Append(char.ToUpperInvariant(p[0])).Append(p.Substring(1));
            return sb.ToString();
        }
    }
}
