using System;
using System.Collections;
using System.Collections.Generic;
using System.Text;

namespace ConvaiBridge.MsgPack
{
    /// <summary>
    /// Canonical msgpack writer: smallest integer form, float64, smallest str header, bin for bytes.
    /// Hand-written (no reflection) so it behaves the same under IL2CPP as under Mono.
    /// A writer is reused: Reset() keeps the buffer.
    /// </summary>
    public sealed class MsgPackWriter
    {
        private static readonly UTF8Encoding Utf8 = new UTF8Encoding(false, false);
        private byte[] _buf;
        private int _len;

        public MsgPackWriter(int capacity = 256) { _buf = new byte[Math.Max(16, capacity)]; }

        public int Length { get { return _len; } }
        public byte[] Buffer { get { return _buf; } }
        public void Reset() { _len = 0; }

        public byte[] ToArray()
        {
            var copy = new byte[_len];
            System.Buffer.BlockCopy(_buf, 0, copy, 0, _len);
            return copy;
        }

        private void Ensure(int extra)
        {
            int need = _len + extra;
            if (need <= _buf.Length) return;
            int size = _buf.Length * 2;
            while (size < need) size *= 2;
            Array.Resize(ref _buf, size);
        }

        private void Byte(byte b) { Ensure(1); _buf[_len++] = b; }

        private void BigEndian(byte prefix, ulong value, int bytes)
        {
            Ensure(1 + bytes);
            _buf[_len++] = prefix;
            for (int i = bytes - 1; i >= 0; i--) _buf[_len++] = (byte)(value >> (8 * i));
        }

        public void WriteNil() { Byte(0xc0); }
        public void WriteBool(bool value) { Byte(value ? (byte)0xc3 : (byte)0xc2); }

        public void WriteInt(long value)
        {
            if (value >= 0) { WriteUInt((ulong)value); return; }
            if (value >= -32) Byte((byte)(sbyte)value);
            else if (value >= sbyte.MinValue) BigEndian(0xd0, (ulong)value, 1);
            else if (value >= short.MinValue) BigEndian(0xd1, (ulong)value, 2);
            else if (value >= int.MinValue) BigEndian(0xd2, (ulong)value, 4);
            else BigEndian(0xd3, (ulong)value, 8);
        }

        public void WriteUInt(ulong value)
        {
            if (value <= 0x7f) Byte((byte)value);
            else if (value <= byte.MaxValue) BigEndian(0xcc, value, 1);
            else if (value <= ushort.MaxValue) BigEndian(0xcd, value, 2);
            else if (value <= uint.MaxValue) BigEndian(0xce, value, 4);
            else BigEndian(0xcf, value, 8);
        }

        public void WriteDouble(double value)
        {
            BigEndian(0xcb, (ulong)BitConverter.DoubleToInt64Bits(value), 8);
        }

        public void WriteString(string value)
        {
            if (value == null) { WriteNil(); return; }
            int n = Utf8.GetByteCount(value);
            if (n <= 31) Byte((byte)(0xa0 | n));
            else if (n <= byte.MaxValue) BigEndian(0xd9, (ulong)n, 1);
            else if (n <= ushort.MaxValue) BigEndian(0xda, (ulong)n, 2);
            else BigEndian(0xdb, (ulong)n, 4);
            Ensure(n);
            _len += Utf8.GetBytes(value, 0, value.Length, _buf, _len);
        }

        public void WriteBinary(byte[] value)
        {
            if (value == null) { WriteNil(); return; }
            int n = value.Length;
            if (n <= byte.MaxValue) BigEndian(0xc4, (ulong)n, 1);
            else if (n <= ushort.MaxValue) BigEndian(0xc5, (ulong)n, 2);
            else BigEndian(0xc6, (ulong)n, 4);
            Ensure(n);
            System.Buffer.BlockCopy(value, 0, _buf, _len, n);
            _len += n;
        }

        public void WriteArrayHeader(int count)
        {
            if (count <= 15) Byte((byte)(0x90 | count));
            else if (count <= ushort.MaxValue) BigEndian(0xdc, (ulong)count, 2);
            else BigEndian(0xdd, (ulong)count, 4);
        }

        public void WriteMapHeader(int count)
        {
            if (count <= 15) Byte((byte)(0x80 | count));
            else if (count <= ushort.MaxValue) BigEndian(0xde, (ulong)count, 2);
            else BigEndian(0xdf, (ulong)count, 4);
        }

        /// <summary>
        /// Start a map whose size is not known yet: reserves the largest header; EndMap shrinks it to the
        /// smallest form, so the bytes stay canonical.
        /// </summary>
        public int BeginMap()
        {
            Ensure(5);
            int mark = _len;
            _len += 5;
            return mark;
        }

        public void EndMap(int mark, int count)
        {
            int headerLen = count <= 15 ? 1 : count <= ushort.MaxValue ? 3 : 5;
            int bodyStart = mark + 5;
            int bodyLen = _len - bodyStart;
            if (headerLen != 5) System.Buffer.BlockCopy(_buf, bodyStart, _buf, mark + headerLen, bodyLen);
            _len = mark;
            WriteMapHeader(count);
            _len = mark + headerLen + bodyLen;
        }

        /// <summary>
        /// Write a free-form value (the decoded value model): null, bool, integers, float/double, string,
        /// byte[], IList, MsgMap / OrderedMap&lt;string&gt; / IDictionary&lt;string, *&gt;.
        /// </summary>
        public void WriteAny(object value, int depth = 0)
        {
            if (depth > MsgPackReader.MaxDepth) throw new MsgPackException("value nests too deeply");
            if (value == null) { WriteNil(); return; }
            if (value is bool) { WriteBool((bool)value); return; }
            if (value is string) { WriteString((string)value); return; }
            if (value is long) { WriteInt((long)value); return; }
            if (value is int) { WriteInt((int)value); return; }
            if (value is ulong) { WriteUInt((ulong)value); return; }
            if (value is uint) { WriteUInt((uint)value); return; }
            if (value is short) { WriteInt((short)value); return; }
            if (value is ushort) { WriteUInt((ushort)value); return; }
            if (value is byte) { WriteUInt((byte)value); return; }
            if (value is sbyte) { WriteInt((sbyte)value); return; }
            if (value is double) { WriteDouble((double)value); return; }
            if (value is float) { WriteDouble((float)value); return; }
            if (value is byte[]) { WriteBinary((byte[])value); return; }
            var map = value as MsgMap;
            if (map != null)
            {
                WriteMapHeader(map.Count);
                for (int i = 0; i < map.Count; i++) { WriteString(map[i].Key); WriteAny(map[i].Value, depth + 1); }
                return;
            }
            var smap = value as OrderedMap<string>;
            if (smap != null)
            {
                WriteMapHeader(smap.Count);
                for (int i = 0; i < smap.Count; i++) { WriteString(smap[i].Key); WriteString(smap[i].Value); }
                return;
            }
            var dict = value as IDictionary;
            if (dict != null)
            {
                WriteMapHeader(dict.Count);
                foreach (DictionaryEntry e in dict)
                {
                    var key = e.Key as string;
                    if (key == null) throw new MsgPackException("map keys must be strings");
                    WriteString(key);
                    WriteAny(e.Value, depth + 1);
                }
                return;
            }
            var list = value as IList;
            if (list != null)
            {
                WriteArrayHeader(list.Count);
                for (int i = 0; i < list.Count; i++) WriteAny(list[i], depth + 1);
                return;
            }
            throw new MsgPackException("cannot encode a value of type " + value.GetType().Name);
        }

        /// <summary>Append bytes that are already msgpack.</summary>
        public void WriteRaw(byte[] data, int offset, int count)
        {
            Ensure(count);
            System.Buffer.BlockCopy(data, offset, _buf, _len, count);
            _len += count;
        }
    }

    public sealed class MsgPackException : Exception
    {
        public MsgPackException(string message) : base(message) { }
    }
}
