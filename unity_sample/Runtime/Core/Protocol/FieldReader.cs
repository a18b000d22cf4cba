using System;
using System.Collections.Generic;
using ConvaiBridge.MsgPack;

namespace ConvaiBridge.Protocol
{
    /// <summary>
    /// Reads typed fields out of a decoded map with the daemon's rules: nil means absent, a missing
    /// required field is missing_field, a wrong type or enum value is invalid_field, unknown keys are
    /// ignored (a minor version may add optional fields).
    /// </summary>
    internal sealed class FieldReader
    {
        /// <summary>Protocol nesting limit for structs, lists and free-form values (as the daemon's codec).</summary>
        public const int MaxDepth = 16;

        private readonly MsgMap _map;
        private readonly string _context;
        private readonly string _path;
        private readonly long? _id;
        private readonly string _sid;
        private readonly int _depth;
        private readonly bool _lenientEnums;

        public FieldReader(MsgMap map, string context, long? id, string sid, string path = "", int depth = 0,
                           bool lenientEnums = false)
        {
            _lenientEnums = lenientEnums;
            _map = map;
            _context = context;
            _id = id;
            _sid = sid;
            _path = path;
            _depth = depth;
        }

        private ProtocolException Fail(string code, string name, string text)
        {
            return new ProtocolException(code, _context + ": '" + _path + name + "' " + text, _id, _sid);
        }

        private object Get(string name, bool required)
        {
            object v = _map.Get(name);
            if (v == null && required) throw Fail("missing_field", name, "is required");
            return v;
        }

        public string Str(string name, bool required, string[] allowed)
        {
            object v = Get(name, required);
            if (v == null) return null;
            return CheckStr(name, v, allowed);
        }

        private string CheckStr(string name, object v, string[] allowed)
        {
            var s = v as string;
            if (s == null) throw Fail("invalid_field", name, "must be a string");
            if (allowed != null && !_lenientEnums && Array.IndexOf(allowed, s) < 0)
                throw Fail("invalid_field", name, "must be one of " + string.Join(", ", allowed));
            return s;
        }

        public long Int(string name) { return CheckInt(name, Get(name, true)); }

        public long? OptInt(string name)
        {
            object v = Get(name, false);
            if (v == null) return null;
            return CheckInt(name, v);
        }

        private long CheckInt(string name, object v)
        {
            if (v is long) return (long)v;
            if (v is ulong) throw Fail("invalid_field", name, "is out of range");
            throw Fail("invalid_field", name, "must be an integer");
        }

        public bool Bool(string name) { return CheckBool(name, Get(name, true)); }

        public bool? OptBool(string name)
        {
            object v = Get(name, false);
            if (v == null) return null;
            return CheckBool(name, v);
        }

        private bool CheckBool(string name, object v)
        {
            if (v is bool) return (bool)v;
            throw Fail("invalid_field", name, "must be a boolean");
        }

        public double Float(string name) { return CheckFloat(name, Get(name, true)); }

        public double? OptFloat(string name)
        {
            object v = Get(name, false);
            if (v == null) return null;
            return CheckFloat(name, v);
        }

        private double CheckFloat(string name, object v)
        {
            if (v is double) return (double)v;
            if (v is long) return (long)v;
            if (v is ulong) return (ulong)v;
            throw Fail("invalid_field", name, "must be a number");
        }

        private List<object> List(string name, bool required)
        {
            object v = Get(name, required);
            if (v == null) return null;
            var list = v as List<object>;
            if (list == null) throw Fail("invalid_field", name, "must be an array");
            if (_depth + 1 > MaxDepth) throw Fail("invalid_field", name, "nests too deeply");
            return list;
        }

        public double[] FloatList(string name, bool required)
        {
            var list = List(name, required);
            if (list == null) return null;
            var result = new double[list.Count];
            for (int i = 0; i < list.Count; i++)
            {
                if (list[i] == null) throw Fail("invalid_field", name + "[" + i + "]", "must be a number");
                result[i] = CheckFloat(name + "[" + i + "]", list[i]);
            }
            return result;
        }

        public long[] IntList(string name, bool required)
        {
            var list = List(name, required);
            if (list == null) return null;
            var result = new long[list.Count];
            for (int i = 0; i < list.Count; i++) result[i] = CheckInt(name + "[" + i + "]", list[i]);
            return result;
        }

        public List<string> StrList(string name, bool required)
        {
            var list = List(name, required);
            if (list == null) return null;
            var result = new List<string>(list.Count);
            for (int i = 0; i < list.Count; i++) result.Add(CheckStr(name + "[" + i + "]", list[i], null));
            return result;
        }

        public T Struct<T>(string name, bool required, Func<T> create) where T : WireStruct
        {
            object v = Get(name, required);
            if (v == null) return null;
            return ReadStruct(name, v, create, _depth);
        }

        public List<T> StructList<T>(string name, bool required, Func<T> create) where T : WireStruct
        {
            var list = List(name, required);
            if (list == null) return null;
            var result = new List<T>(list.Count);
            for (int i = 0; i < list.Count; i++) result.Add(ReadStruct(name + "[" + i + "]", list[i], create, _depth + 1));
            return result;
        }

        private T ReadStruct<T>(string name, object v, Func<T> create, int depth) where T : WireStruct
        {
            var map = v as MsgMap;
            if (map == null) throw Fail("invalid_field", name, "must be a map");
            if (depth + 1 > MaxDepth) throw Fail("invalid_field", name, "nests too deeply");
            T s = create();
            s.ReadFields(new FieldReader(map, _context, _id, _sid, _path + name + ".", depth + 1, _lenientEnums));
            return s;
        }

        public MsgMap Map(string name, bool required)
        {
            object v = Get(name, required);
            if (v == null) return null;
            var map = v as MsgMap;
            if (map == null) throw Fail("invalid_field", name, "must be a map with string keys");
            CheckAny(name, map, _depth);
            return map;
        }

        public OrderedMap<string> StrMap(string name, bool required)
        {
            object v = Get(name, required);
            if (v == null) return null;
            var map = v as MsgMap;
            if (map == null) throw Fail("invalid_field", name, "must be a map of strings to strings");
            var result = new OrderedMap<string>(map.Count);
            for (int i = 0; i < map.Count; i++)
            {
                var s = map[i].Value as string;
                if (s == null) throw Fail("invalid_field", name, "must be a map of strings to strings");
                result.Add(map[i].Key, s);
            }
            return result;
        }

        public object Any(string name, bool required)
        {
            object v = Get(name, required);
            if (v == null) return null;
            CheckAny(name, v, _depth);
            return v;
        }

        private void CheckAny(string name, object v, int depth)
        {
            if (depth > MaxDepth) throw Fail("invalid_field", name, "nests too deeply");
            var map = v as MsgMap;
            if (map != null)
            {
                for (int i = 0; i < map.Count; i++) CheckAny(name, map[i].Value, depth + 1);
                return;
            }
            var list = v as List<object>;
            if (list != null)
            {
                for (int i = 0; i < list.Count; i++) CheckAny(name, list[i], depth + 1);
                return;
            }
            if (v is MsgPackExt) throw Fail("invalid_field", name, "holds an unsupported value");
        }
    }
}
