using System.Collections.Generic;
using ConvaiBridge.MsgPack;

namespace ConvaiBridge.Protocol
{
    /// <summary>
    /// Encodes messages canonically (envelope v, type, id, sid, ts, then fields in schema order;
    /// optional fields omitted) and decodes multipart messages with the daemon's validation rules and
    /// error codes. One instance per thread: it reuses a write buffer.
    /// </summary>
    public sealed class Codec
    {
        /// <summary>Largest accepted message (header + frames); the daemon's limit comes in welcome.limits.</summary>
        public long MaxMessageBytes = 1 << 20;

        /// <summary>
        /// Accept enum values this version does not know in messages the daemon sends (a newer daemon's
        /// session_state or close reason), instead of dropping the whole event. Messages a client sends
        /// are always checked. The daemon side of the protocol is strict; clients set this.
        /// </summary>
        public bool LenientDaemonEnums;

        private readonly MsgPackWriter _writer = new MsgPackWriter(1024);

        // -- encoding ------------------------------------------------------------------------------

        /// <summary>Encode the header frame (frame 0) after validating fields and frames.</summary>
        public byte[] EncodeHeader(Message message)
        {
            _writer.Reset();
            WriteHeader(message, _writer);
            CheckFrames(message, message.GetFrames(), message.Id, message.Sid);
            return _writer.ToArray();
        }

        /// <summary>Encode to the multipart form: header then the message's binary frames.</summary>
        public List<byte[]> Encode(Message message)
        {
            var parts = new List<byte[]>(2);
            Encode(message, parts);
            return parts;
        }

        public void Encode(Message message, List<byte[]> parts)
        {
            parts.Clear();
            parts.Add(EncodeHeader(message));
            var frames = message.GetFrames();
            for (int i = 0; i < frames.Count; i++) parts.Add(frames[i]);
        }

        private static void WriteHeader(Message m, MsgPackWriter w)
        {
            if (m == null) throw new ProtocolException("bad_message", "no message");
            string type = m.Type;
            if ((m.Kind == MessageKind.Request || m.Kind == MessageKind.Reply) && !m.Id.HasValue)
                throw new ProtocolException("missing_field", type + ": 'id' is required", null, m.Sid);
            bool writeSid = m.Sid != null && m.SidRule != SidRule.None;
            if (m.SidRule == SidRule.Required && m.Sid == null)
                throw new ProtocolException("missing_field", type + ": 'sid' is required", m.Id);
            int mark = w.BeginMap();
            int n = 2;
            w.WriteString("v");
            w.WriteInt(Message.ProtocolMajor);
            w.WriteString("type");
            w.WriteString(type);
            if (m.Id.HasValue) { w.WriteString("id"); w.WriteInt(m.Id.Value); n++; }
            if (writeSid) { w.WriteString("sid"); w.WriteString(m.Sid); n++; }
            if (m.Ts.HasValue) { w.WriteString("ts"); w.WriteInt(m.Ts.Value); n++; }
            n += m.WriteFields(new FieldWriter(w, type));
            w.EndMap(mark, n);
        }

        // -- decoding ------------------------------------------------------------------------------

        /// <summary>
        /// Decode and validate a multipart message. Throws ProtocolException with the code the daemon
        /// would use. With allowUnknownTypes, a valid envelope of an unknown type becomes an
        /// UnknownMessage instead of an unknown_type error (clients must tolerate newer events).
        /// </summary>
        public Message Decode(IList<byte[]> parts, bool allowUnknownTypes = false)
        {
            if (parts == null || parts.Count == 0 || parts[0] == null)
                throw new ProtocolException("bad_message", "empty message");
            long total = 0;
            for (int i = 0; i < parts.Count; i++) total += parts[i] == null ? 0 : parts[i].Length;
            if (total > MaxMessageBytes)
                throw new ProtocolException("message_too_large",
                    "message of " + total + " bytes exceeds " + MaxMessageBytes);

            object decoded;
            try { decoded = MsgPackReader.Decode(parts[0]); }
            catch (MsgPackException e) { throw new ProtocolException("bad_message", "header is not valid msgpack: " + e.Message); }
            var header = decoded as MsgMap;
            if (header == null) throw new ProtocolException("bad_message", "header must be a msgpack map");

            object rawId = header.Get("id");
            long? reqId = rawId is long ? (long?)(long)rawId : null;
            string sid = header.Get("sid") as string;

            object version = header.Get("v");
            if (!(version is long) && !(version is ulong))
                throw new ProtocolException("missing_field", "envelope field 'v' (protocol major) is required", reqId, sid);
            if (!(version is long) || (long)version != Message.ProtocolMajor)
                throw new ProtocolException("version_mismatch",
                    "message is protocol v" + version + ", this side speaks v" + Message.ProtocolMajor, reqId, sid);
            var type = header.Get("type") as string;
            if (type == null) throw new ProtocolException("missing_field", "envelope field 'type' is required", reqId, sid);

            Message message = MessageRegistry.Create(type);
            if (message == null)
            {
                if (!allowUnknownTypes)
                    throw new ProtocolException("unknown_type", "unknown message type '" + type + "'", reqId, sid);
                var frames = new List<byte[]>();
                for (int i = 1; i < parts.Count; i++) frames.Add(parts[i]);
                message = new UnknownMessage(type, header, frames);
                ReadEnvelope(message, header, type, reqId, sid);
                return message;
            }

            ReadEnvelope(message, header, type, reqId, sid);
            if ((message.Kind == MessageKind.Request || message.Kind == MessageKind.Reply) && !message.Id.HasValue)
                throw new ProtocolException("missing_field", type + ": 'id' is required", null, sid);
            if (message.SidRule == SidRule.Required && message.Sid == null)
                throw new ProtocolException("missing_field", type + ": 'sid' is required", reqId);
            if (message.SidRule == SidRule.None) message.Sid = null;

            bool lenient = LenientDaemonEnums && message.Direction != Direction.Client;
            message.ReadFields(new FieldReader(header, type, reqId, sid, "", 0, lenient));

            int frameCount = parts.Count - 1;
            var kinds = message.FrameKinds;
            if (frameCount != kinds.Length)
                throw new ProtocolException("bad_message",
                    type + ": expected " + kinds.Length + " binary frame(s), got " + frameCount, reqId, sid);
            for (int i = 0; i < frameCount; i++) message.SetFrame(i, parts[i + 1]);
            CheckFrames(message, message.GetFrames(), reqId, sid);
            return message;
        }

        private static void ReadEnvelope(Message m, MsgMap header, string type, long? reqId, string sid)
        {
            object id = header.Get("id");
            if (id != null && !(id is long))
                throw new ProtocolException("invalid_field", type + ": 'id' must be an integer", null, sid);
            m.Id = reqId;
            object s = header.Get("sid");
            if (s != null && !(s is string))
                throw new ProtocolException("invalid_field", type + ": 'sid' must be a string", reqId);
            m.Sid = sid;
            object ts = header.Get("ts");
            if (ts != null && !(ts is long))
                throw new ProtocolException("invalid_field", type + ": 'ts' must be an integer", reqId, sid);
            m.Ts = ts == null ? (long?)null : (long)ts;
        }

        private static void CheckFrames(Message m, IList<byte[]> frames, long? reqId, string sid)
        {
            var kinds = m.FrameKinds;
            if (m is UnknownMessage) return;
            for (int i = 0; i < kinds.Length; i++)
            {
                var data = i < frames.Count ? frames[i] : null;
                if (data == null)
                    throw new ProtocolException("bad_message", m.Type + ": binary frame " + (i + 1) + " is missing", reqId, sid);
                long expected = m.ExpectedFrameBytes(i);
                if (data.Length != expected)
                    throw new ProtocolException("invalid_field",
                        m.Type + ": binary frame has " + data.Length + " bytes, header declares " + expected, reqId, sid);
            }
        }
    }
}
