using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using System.Text;
using ConvaiBridge.Protocol;

namespace ConvaiBridge.Tests
{
    /// <summary>Marks a static test method; the runner finds them by reflection (tests only, not the package).</summary>
    [AttributeUsage(AttributeTargets.Method)]
    public sealed class TestAttribute : Attribute { }

    public sealed class AssertionException : Exception
    {
        public AssertionException(string message) : base(message) { }
    }

    public static class Assert
    {
        public static void True(bool condition, string what)
        {
            if (!condition) throw new AssertionException(what);
        }

        public static void Equal<T>(T expected, T actual, string what)
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
                throw new AssertionException(what + ": expected <" + expected + "> got <" + actual + ">");
        }

        public static void Near(double expected, double actual, double tolerance, string what)
        {
            if (Math.Abs(expected - actual) > tolerance)
                throw new AssertionException(what + ": expected " + expected + " ± " + tolerance + ", got " + actual);
        }

        public static void Bytes(byte[] expected, byte[] actual, string what)
        {
            if (expected.Length == actual.Length && expected.SequenceEqual(actual)) return;
            throw new AssertionException(what + ": bytes differ\n  expected " + Hex(expected) + "\n  actual   " + Hex(actual));
        }

        public static ProtocolException Throws(string code, Action action, string what)
        {
            try
            {
                action();
            }
            catch (ProtocolException e)
            {
                if (e.Code != code) throw new AssertionException(what + ": expected code " + code + ", got " + e.Code + " (" + e.Message + ")");
                return e;
            }
            throw new AssertionException(what + ": expected ProtocolException " + code + ", nothing thrown");
        }

        public static string Hex(byte[] data)
        {
            var sb = new StringBuilder(data.Length * 2);
            foreach (byte b in data) sb.Append(b.ToString("x2"));
            return sb.ToString();
        }

        public static byte[] FromHex(string hex)
        {
            var data = new byte[hex.Length / 2];
            for (int i = 0; i < data.Length; i++) data[i] = Convert.ToByte(hex.Substring(2 * i, 2), 16);
            return data;
        }
    }

    /// <summary>Runs [Test] methods and tests added at run time; prints one line per test.</summary>
    public sealed class TestRunner
    {
        public int Passed;
        public int Failed;
        private readonly List<KeyValuePair<string, Action>> _tests = new List<KeyValuePair<string, Action>>();

        public void Add(string name, Action test) { _tests.Add(new KeyValuePair<string, Action>(name, test)); }

        public void AddAll(Type type)
        {
            foreach (var m in type.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic))
            {
                if (m.GetCustomAttributes(typeof(TestAttribute), false).Length == 0) continue;
                var method = m;
                Add(type.Name + "." + m.Name, () => method.Invoke(null, null));
            }
        }

        public void Run()
        {
            foreach (var t in _tests)
            {
                try
                {
                    t.Value();
                    Passed++;
                    Console.WriteLine("ok    " + t.Key);
                }
                catch (Exception e)
                {
                    if (e is TargetInvocationException && e.InnerException != null) e = e.InnerException;
                    Failed++;
                    Console.WriteLine("FAIL  " + t.Key + ": " + (e is AssertionException ? e.Message : e.ToString()));
                }
            }
        }
    }
}
