using System.Collections.Generic;
using ConvaiBridge.MsgPack;

namespace ConvaiBridge.Protocol
{
    public enum MessageKind { Request, Reply, Event, Stream }

    public enum Direction { Client, Daemon, Both }

    /// <summary>Whether a message type carries the envelope's sid: never, maybe, or always.</summary>
    public enum SidRule { None, Optional, Required }

    /// <summary>
    /// A protocol message: the envelope (v, type, id, sid, ts) plus typed fields, and its binary frames.
    /// Concrete types are generated from protocol/schema.json (Messages.g.cs); their field order is the
    /// canonical encoding order.
    /// </summary>
    public abstract class Message
    {
        /// <summary>The protocol major version this code speaks (envelope "v").</summary>
        public const int ProtocolMajor = 1;
        public const string ProtocolVersion = "1.1";

        /// <summary>Request id (uint32), set by the client on requests and echoed on replies.</summary>
        public long? Id;
        public string Sid;
        /// <summary>Microseconds since the Unix epoch; on daemon events, when the daemon got the upstream data.</summary>
        public long? Ts;

        public abstract string Type { get; }
        public abstract MessageKind Kind { get; }
        public abstract Direction Direction { get; }
        public abstract SidRule SidRule { get; }

        /// <summary>The turn an event belongs to (null for messages without one): drop late data of old turns by it.</summary>
        public virtual long? EventTurn { get { return null; } }

        /// <summary>Kinds of binary frames this type carries after the header ("pcm_s16le", "f32le").</summary>
        public virtual string[] FrameKinds { get { return NoFrames; } }

        /// <summary>The binary frames (frame 1..n of the multipart message).</summary>
        public virtual IList<byte[]> GetFrames() { return NoFrameData; }
        public virtual void SetFrame(int index, byte[] data) { }

        /// <summary>Write the message's fields (not the envelope) in schema order; returns how many.</summary>
        internal abstract int WriteFields(FieldWriter w);
        internal abstract void ReadFields(FieldReader r);

        /// <summary>The expected byte size of frame i, from the header (for validation).</summary>
        internal virtual long ExpectedFrameBytes(int index) { return -1; }

        protected static readonly string[] NoFrames = new string[0];
        private static readonly byte[][] NoFrameData = new byte[0][];

        public override string ToString()
        {
            return Type + (Id.HasValue ? " id=" + Id.Value : "") + (Sid != null ? " sid=" + Sid : "");
        }
    }

    /// <summary>A schema struct (AudioFormat, Limits, ...): a msgpack map with fields in schema order.</summary>
    public abstract class WireStruct
    {
        internal abstract int WriteFields(FieldWriter w);
        internal abstract void ReadFields(FieldReader r);
    }

    /// <summary>
    /// A message of a type this client does not know (a newer daemon's event). Surfaced as-is so an
    /// application can log or handle it; never an error.
    /// </summary>
    public sealed class UnknownMessage : Message
    {
        private readonly string _type;
        public readonly MsgMap Header;
        public readonly List<byte[]> Frames;

        public UnknownMessage(string type, MsgMap header, List<byte[]> frames)
        {
            _type = type;
            Header = header;
            Frames = frames ?? new List<byte[]>();
        }

        public override string Type { get { return _type; } }
        public override MessageKind Kind { get { return MessageKind.Event; } }
        public override Direction Direction { get { return Direction.Daemon; } }
        public override SidRule SidRule { get { return SidRule.Optional; } }
        public override IList<byte[]> GetFrames() { return Frames; }

        internal override int WriteFields(FieldWriter w)
        {
            int n = 0;
            foreach (var kv in Header)
            {
                if (kv.Key == "v" || kv.Key == "type" || kv.Key == "id" || kv.Key == "sid" || kv.Key == "ts") continue;
                w.AnyValue(kv.Key, kv.Value);
                n++;
            }
            return n;
        }

        internal override void ReadFields(FieldReader r) { }
    }
}
