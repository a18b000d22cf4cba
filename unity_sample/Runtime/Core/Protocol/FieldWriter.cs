using System.Collections;
using System.Collections.Generic;
using ConvaiBridge.MsgPack;

namespace ConvaiBridge.Protocol
{
    /// <summary>
    /// Writes typed fields as key/value pairs and validates them the way the daemon will (required,
    /// enum values), so a bad request fails at the call site instead of coming back as an error.
    /// Absent optional fields are omitted, never nil (canonical encoding).
    /// </summary>
    internal sealed class FieldWriter
    {
        private readonly MsgPackWriter _w;
        private readonly string _context;
        private readonly string _path;
        private int _count;

        public FieldWriter(MsgPackWriter writer, string context, string path = "")
        {
            _w = writer;
            _context = context;
            _path = path;
        }

        public int Count { get { return _count; } }

        private ProtocolException Fail(string code, string name, string text)
        {
            return new ProtocolException(code, _context + ": '" + _path + name + "' " + text);
        }

        private bool Begin(string name, bool present, bool required)
        {
            if (!present)
            {
                if (required) throw Fail("missing_field", name, "is required");
                return false;
            }
            _w.WriteString(name);
            _count++;
            return true;
        }

        public void Str(string name, string value, bool required, string[] allowed)
        {
            if (!Begin(name, value != null, required)) return;
            if (allowed != null && System.Array.IndexOf(allowed, value) < 0)
                throw Fail("invalid_field", name, "must be one of " + string.Join(", ", allowed));
            _w.WriteString(value);
        }

        public void Int(string name, long value) { Begin(name, true, true); _w.WriteInt(value); }

        public void Int(string name, long? value, bool required)
        {
            if (!Begin(name, value != null, required)) return;
            _w.WriteInt(value.Value);
        }

        public void Bool(string name, bool value) { Begin(name, true, true); _w.WriteBool(value); }

        public void Bool(string name, bool? value, bool required)
        {
            if (!Begin(name, value != null, required)) return;
            _w.WriteBool(value.Value);
        }

        public void Float(string name, double value) { Begin(name, true, true); _w.WriteDouble(value); }

        public void Float(string name, double? value, bool required)
        {
            if (!Begin(name, value != null, required)) return;
            _w.WriteDouble(value.Value);
        }

        public void FloatList(string name, IList<double> values, bool required)
        {
            if (!Begin(name, values != null, required)) return;
            _w.WriteArrayHeader(values.Count);
            for (int i = 0; i < values.Count; i++) _w.WriteDouble(values[i]);
        }

        public void IntList(string name, IList<long> values, bool required)
        {
            if (!Begin(name, values != null, required)) return;
            _w.WriteArrayHeader(values.Count);
            for (int i = 0; i < values.Count; i++) _w.WriteInt(values[i]);
        }

        public void StrList(string name, IList<string> values, bool required)
        {
            if (!Begin(name, values != null, required)) return;
            _w.WriteArrayHeader(values.Count);
            for (int i = 0; i < values.Count; i++)
            {
                if (values[i] == null) throw Fail("invalid_field", name + "[" + i + "]", "must be a string");
                _w.WriteString(values[i]);
            }
        }

        public void Struct(string name, WireStruct value, bool required)
        {
            if (!Begin(name, value != null, required)) return;
            WriteStruct(name, value);
        }

        public void StructList<T>(string name, IList<T> values, bool required) where T : WireStruct
        {
            if (!Begin(name, values != null, required)) return;
            _w.WriteArrayHeader(values.Count);
            for (int i = 0; i < values.Count; i++)
            {
                if (values[i] == null) throw Fail("invalid_field", name + "[" + i + "]", "must be a map");
                WriteStruct(name + "[" + i + "]", values[i]);
            }
        }

        private void WriteStruct(string name, WireStruct value)
        {
            int mark = _w.BeginMap();
            var inner = new FieldWriter(_w, _context, _path + name + ".");
            int n = value.WriteFields(inner);
            _w.EndMap(mark, n);
        }

        public void Map(string name, MsgMap value, bool required)
        {
            if (!Begin(name, value != null, required)) return;
            WriteAnyChecked(name, value);
        }

        public void StrMap(string name, OrderedMap<string> value, bool required)
        {
            if (!Begin(name, value != null, required)) return;
            _w.WriteMapHeader(value.Count);
            for (int i = 0; i < value.Count; i++)
            {
                if (value[i].Value == null) throw Fail("invalid_field", name, "must map strings to strings");
                _w.WriteString(value[i].Key);
                _w.WriteString(value[i].Value);
            }
        }

        public void Any(string name, object value, bool required)
        {
            if (!Begin(name, value != null, required)) return;
            WriteAnyChecked(name, value);
        }

        /// <summary>Write an unknown message's field as-is (generic pass-through).</summary>
        public void AnyValue(string name, object value)
        {
            _w.WriteString(name);
            _count++;
            WriteAnyChecked(name, value);
        }

        private void WriteAnyChecked(string name, object value)
        {
            try { _w.WriteAny(value); }
            catch (MsgPackException e) { throw Fail("invalid_field", name, e.Message); }
        }
    }
}
