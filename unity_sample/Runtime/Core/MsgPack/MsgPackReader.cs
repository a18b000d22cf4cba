using System;
using System.Collections.Generic;
using System.Text;

namespace ConvaiBridge.MsgPack
{
    /// <summary>
    /// Decodes msgpack into the plain value model (see MsgMap). Every length is checked against the bytes
    /// left, so truncated or hostile input throws MsgPackException instead of allocating or crashing.
    /// </summary>
    public static class MsgPackReader
    {
        /// <summary>Hard nesting limit of the parser (the codec applies the protocol's own, smaller one).</summary>
        public const int MaxDepth = 64;

        private static readonly UTF8Encoding StrictUtf8 = new UTF8Encoding(false, true);

        /// <summary>Decode exactly one value filling the whole buffer (trailing bytes are an error).</summary>
        public static object Decode(byte[] data)
        {
            if (data == null) throw new MsgPackException("no data");
            return Decode(data, 0, data.Length);
        }

        public static object Decode(byte[] data, int offset, int count)
        {
            if (data == null) throw new MsgPackException("no data");
            if (offset < 0 || count < 0 || offset + count > data.Length) throw new ArgumentOutOfRangeException("count");
            int pos = offset;
            int end = offset + count;
            object value = ReadValue(data, ref pos, end, 0);
            if (pos != end) throw new MsgPackException("extra bytes after the value");
            return value;
        }

        private static void Need(int pos, int end, long n)
        {
            if (n < 0 || end - pos < n) throw new MsgPackException("truncated");
        }

        private static ulong ReadBig(byte[] d, ref int pos, int end, int bytes)
        {
            Need(pos, end, bytes);
            ulong v = 0;
            for (int i = 0; i < bytes; i++) v = (v << 8) | d[pos++];
            return v;
        }

        private static object ReadValue(byte[] d, ref int pos, int end, int depth)
        {
            if (depth > MaxDepth) throw new MsgPackException("nesting too deep");
            Need(pos, end, 1);
            byte b = d[pos++];
            if (b <= 0x7f) return (long)b;
            if (b >= 0xe0) return (long)(sbyte)b;
            if ((b & 0xf0) == 0x80) return ReadMap(d, ref pos, end, b & 0x0f, depth);
            if ((b & 0xf0) == 0x90) return ReadArray(d, ref pos, end, b & 0x0f, depth);
            if ((b & 0xe0) == 0xa0) return ReadStr(d, ref pos, end, b & 0x1f);
            switch (b)
            {
                case 0xc0: return null;
                case 0xc2: return false;
                case 0xc3: return true;
                case 0xc4: return ReadBin(d, ref pos, end, (long)ReadBig(d, ref pos, end, 1));
                case 0xc5: return ReadBin(d, ref pos, end, (long)ReadBig(d, ref pos, end, 2));
                case 0xc6: return ReadBin(d, ref pos, end, (long)ReadBig(d, ref pos, end, 4));
                case 0xc7: return ReadExt(d, ref pos, end, (long)ReadBig(d, ref pos, end, 1));
                case 0xc8: return ReadExt(d, ref pos, end, (long)ReadBig(d, ref pos, end, 2));
                case 0xc9: return ReadExt(d, ref pos, end, (long)ReadBig(d, ref pos, end, 4));
                case 0xca:
                {
                    uint bits = (uint)ReadBig(d, ref pos, end, 4);
                    return (double)BitConverter.ToSingle(BitConverter.GetBytes(bits), 0);
                }
                case 0xcb: return BitConverter.Int64BitsToDouble((long)ReadBig(d, ref pos, end, 8));
                case 0xcc: return (long)ReadBig(d, ref pos, end, 1);
                case 0xcd: return (long)ReadBig(d, ref pos, end, 2);
                case 0xce: return (long)ReadBig(d, ref pos, end, 4);
                case 0xcf:
                {
                    ulong u = ReadBig(d, ref pos, end, 8);
                    if (u <= long.MaxValue) return (long)u;
                    return u;
                }
                case 0xd0: return (long)(sbyte)ReadBig(d, ref pos, end, 1);
                case 0xd1: return (long)(short)ReadBig(d, ref pos, end, 2);
                case 0xd2: return (long)(int)ReadBig(d, ref pos, end, 4);
                case 0xd3: return (long)ReadBig(d, ref pos, end, 8);
                case 0xd4: return ReadExt(d, ref pos, end, 1);
                case 0xd5: return ReadExt(d, ref pos, end, 2);
                case 0xd6: return ReadExt(d, ref pos, end, 4);
                case 0xd7: return ReadExt(d, ref pos, end, 8);
                case 0xd8: return ReadExt(d, ref pos, end, 16);
                case 0xd9: return ReadStr(d, ref pos, end, (long)ReadBig(d, ref pos, end, 1));
                case 0xda: return ReadStr(d, ref pos, end, (long)ReadBig(d, ref pos, end, 2));
                case 0xdb: return ReadStr(d, ref pos, end, (long)ReadBig(d, ref pos, end, 4));
                case 0xdc: return ReadArray(d, ref pos, end, (long)ReadBig(d, ref pos, end, 2), depth);
                case 0xdd: return ReadArray(d, ref pos, end, (long)ReadBig(d, ref pos, end, 4), depth);
                case 0xde: return ReadMap(d, ref pos, end, (long)ReadBig(d, ref pos, end, 2), depth);
                case 0xdf: return ReadMap(d, ref pos, end, (long)ReadBig(d, ref pos, end, 4), depth);
                default: throw new MsgPackException("invalid msgpack byte 0x" + b.ToString("x2"));
            }
        }

        private static string ReadStr(byte[] d, ref int pos, int end, long n)
        {
            Need(pos, end, n);
            string s;
            try { s = StrictUtf8.GetString(d, pos, (int)n); }
            catch (ArgumentException) { throw new MsgPackException("string is not valid UTF-8"); }
            pos += (int)n;
            return s;
        }

        private static byte[] ReadBin(byte[] d, ref int pos, int end, long n)
        {
            Need(pos, end, n);
            var b = new byte[n];
            Buffer.BlockCopy(d, pos, b, 0, (int)n);
            pos += (int)n;
            return b;
        }

        private static MsgPackExt ReadExt(byte[] d, ref int pos, int end, long n)
        {
            Need(pos, end, 1);
            sbyte type = (sbyte)d[pos++];
            return new MsgPackExt(type, ReadBin(d, ref pos, end, n));
        }

        private static List<object> ReadArray(byte[] d, ref int pos, int end, long n, int depth)
        {
            Need(pos, end, n); // every element takes at least one byte
            var list = new List<object>((int)n);
            for (long i = 0; i < n; i++) list.Add(ReadValue(d, ref pos, end, depth + 1));
            return list;
        }

        private static MsgMap ReadMap(byte[] d, ref int pos, int end, long n, int depth)
        {
            Need(pos, end, n * 2);
            var map = new MsgMap((int)n);
            for (long i = 0; i < n; i++)
            {
                object key = ReadValue(d, ref pos, end, depth + 1);
                var skey = key as string;
                if (skey == null) throw new MsgPackException("map keys must be strings");
                map[skey] = ReadValue(d, ref pos, end, depth + 1);
            }
            return map;
        }
    }
}
