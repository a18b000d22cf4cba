using System;
using System.Collections;
using System.Collections.Generic;

namespace ConvaiBridge.MsgPack
{
    /// <summary>
    /// A string-keyed map that keeps insertion order. Free-form protocol maps (<c>map</c>, <c>any</c>)
    /// must be re-encoded in the order they arrived, which Dictionary does not promise.
    /// Maps on the wire are small, so lookups are a linear scan.
    /// </summary>
    public class OrderedMap<TValue> : IEnumerable<KeyValuePair<string, TValue>>
    {
        private readonly List<KeyValuePair<string, TValue>> _items;

        public OrderedMap() { _items = new List<KeyValuePair<string, TValue>>(); }
        public OrderedMap(int capacity) { _items = new List<KeyValuePair<string, TValue>>(capacity); }

        public int Count { get { return _items.Count; } }

        public KeyValuePair<string, TValue> this[int index] { get { return _items[index]; } }

        /// <summary>Get or set by key; setting an existing key keeps its position (as Python dicts do).</summary>
        public TValue this[string key]
        {
            get
            {
                TValue value;
                if (!TryGetValue(key, out value)) throw new KeyNotFoundException(key);
                return value;
            }
            set
            {
                int i = IndexOf(key);
                if (i >= 0) _items[i] = new KeyValuePair<string, TValue>(key, value);
                else _items.Add(new KeyValuePair<string, TValue>(key, value));
            }
        }

        /// <summary>Collection-initializer friendly; a duplicate key replaces the earlier value in place.</summary>
        public void Add(string key, TValue value)
        {
            if (key == null) throw new ArgumentNullException("key");
            this[key] = value;
        }

        public bool ContainsKey(string key) { return IndexOf(key) >= 0; }

        public bool TryGetValue(string key, out TValue value)
        {
            int i = IndexOf(key);
            if (i < 0) { value = default(TValue); return false; }
            value = _items[i].Value;
            return true;
        }

        public bool Remove(string key)
        {
            int i = IndexOf(key);
            if (i < 0) return false;
            _items.RemoveAt(i);
            return true;
        }

        public IEnumerable<string> Keys
        {
            get { for (int i = 0; i < _items.Count; i++) yield return _items[i].Key; }
        }

        private int IndexOf(string key)
        {
            for (int i = 0; i < _items.Count; i++)
                if (string.Equals(_items[i].Key, key, StringComparison.Ordinal)) return i;
            return -1;
        }

        public List<KeyValuePair<string, TValue>>.Enumerator GetEnumerator() { return _items.GetEnumerator(); }
        IEnumerator<KeyValuePair<string, TValue>> IEnumerable<KeyValuePair<string, TValue>>.GetEnumerator() { return _items.GetEnumerator(); }
        IEnumerator IEnumerable.GetEnumerator() { return _items.GetEnumerator(); }
    }

    /// <summary>
    /// A decoded msgpack map. Values are: null, bool, long (ulong above long.MaxValue), double, string,
    /// byte[], List&lt;object&gt;, MsgMap, or MsgPackExt.
    /// </summary>
    public sealed class MsgMap : OrderedMap<object>
    {
        public MsgMap() { }
        public MsgMap(int capacity) : base(capacity) { }

        /// <summary>The value for key, or null when absent (nil and absent mean the same on this protocol).</summary>
        public object Get(string key)
        {
            object value;
            return TryGetValue(key, out value) ? value : null;
        }
    }

    /// <summary>A msgpack extension value, kept so a decoder can reject it with a clear code.</summary>
    public sealed class MsgPackExt
    {
        public readonly sbyte TypeCode;
        public readonly byte[] Data;
        public MsgPackExt(sbyte typeCode, byte[] data) { TypeCode = typeCode; Data = data; }
    }
}
