// A stand-in for the UnityEngine members this package uses, written for CI (Unity cannot run here).
// Signatures follow Unity's public scripting reference, and the parts the package depends on behave:
// GameObjects run the MonoBehaviour lifecycle (Awake/OnEnable/Start/Update/LateUpdate/OnDisable, in
// DefaultExecutionOrder), an audio engine thread pulls each playing AudioSource's clip through its
// OnAudioFilterRead filters in DSP-sized blocks on a real-time clock, device changes stop every source
// and raise OnAudioConfigurationChanged, the Microphone records into a looping clip that wraps, and
// SkinnedMeshRenderer keeps blendshape weights. Test hooks live in the UnityStub namespace.
// Compiled with UNITY_WEBGL it leaves out what WebGL lacks (Microphone), as Unity's WebGL target does.
#pragma warning disable 0067, 0649, 1591
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Reflection;
using System.Threading;

namespace UnityEngine
{
    public class Object
    {
        internal bool Destroyed;
        public string name { get; set; }

        public static T FindObjectOfType<T>() where T : Object { return UnityStub.Player.Find<T>(); }
        public static T FindFirstObjectByType<T>() where T : Object { return UnityStub.Player.Find<T>(); }
        public static void Destroy(Object o) { UnityStub.Player.Destroy(o); }

        public static implicit operator bool(Object o) { return !ReferenceEquals(o, null) && !o.Destroyed; }
        public static bool operator ==(Object a, Object b)
        {
            bool an = ReferenceEquals(a, null) || a.Destroyed, bn = ReferenceEquals(b, null) || b.Destroyed;
            if (an || bn) return an && bn;
            return ReferenceEquals(a, b);
        }
        public static bool operator !=(Object a, Object b) { return !(a == b); }
        public override bool Equals(object o) { return this == (o as Object); }
        public override int GetHashCode() { return base.GetHashCode(); }
    }

    public class ScriptableObject : Object { }

    public class Component : Object
    {
        internal GameObject Owner;
        public GameObject gameObject { get { return Owner; } }
        public Transform transform { get { return Owner != null ? Owner.transform : null; } }
        public T GetComponent<T>() { return Owner.GetComponent<T>(); }
        public T GetComponentInParent<T>() { return Owner.GetComponentInParent<T>(); }
        public T GetComponentInChildren<T>() { return Owner.GetComponentInChildren<T>(); }
    }

    public class Behaviour : Component
    {
        private bool _enabled = true;
        public bool enabled
        {
            get { return _enabled; }
            set
            {
                if (_enabled == value) return;
                bool was = isActiveAndEnabled;
                _enabled = value;
                UnityStub.Player.ActivityChanged(this, was);
            }
        }
        public bool isActiveAndEnabled { get { return _enabled && Owner != null && Owner.activeInHierarchy && !Destroyed; } }
    }

    public class MonoBehaviour : Behaviour { }

    public sealed class GameObject : Object
    {
        internal readonly List<Component> Components = new List<Component>();
        private bool _active = true;
        private readonly Transform _transform;

        public GameObject(string name)
        {
            this.name = name;
            _transform = new Transform();
            _transform.Owner = this;
            Components.Add(_transform);
            UnityStub.Player.Register(this);
        }

        public Transform transform { get { return _transform; } }
        public bool activeSelf { get { return _active; } }
        public bool activeInHierarchy
        {
            get { return _active && !Destroyed && (_transform.parent == null || _transform.parent.gameObject.activeInHierarchy); }
        }

        public void SetActive(bool value)
        {
            if (_active == value) return;
            var was = UnityStub.Player.Behaviours(this).Select(b => b.isActiveAndEnabled).ToList();
            _active = value;
            var all = UnityStub.Player.Behaviours(this).ToList();
            for (int i = 0; i < all.Count; i++) UnityStub.Player.ActivityChanged(all[i], was[i]);
        }

        public T AddComponent<T>() where T : Component { return (T)AddComponent(typeof(T)); }

        public Component AddComponent(Type type)
        {
            foreach (RequireComponent r in type.GetCustomAttributes(typeof(RequireComponent), true))
                if (GetComponentOfType(r.Type) == null) AddComponent(r.Type);
            var c = (Component)Activator.CreateInstance(type, true);
            c.Owner = this;
            c.name = name;
            Components.Add(c);
            UnityStub.Player.Added(c);
            return c;
        }

        internal Component GetComponentOfType(Type t)
        {
            foreach (var c in Components) if (t.IsInstanceOfType(c) && !c.Destroyed) return c;
            return null;
        }

        public T GetComponent<T>() { return (T)(object)GetComponentOfType(typeof(T)); }

        public T GetComponentInParent<T>()
        {
            for (var t = _transform; t != null; t = t.parent)
            {
                var c = t.gameObject.GetComponentOfType(typeof(T));
                if (c != null) return (T)(object)c;
            }
            return default(T);
        }

        public T GetComponentInChildren<T>()
        {
            var c = GetComponentOfType(typeof(T));
            if (c != null) return (T)(object)c;
            foreach (var child in _transform.Children)
            {
                var found = child.gameObject.GetComponentInChildren<T>();
                if (found != null) return found;
            }
            return default(T);
        }

        public static GameObject Find(string name) { return UnityStub.Player.FindGameObject(name); }
    }

    public class Transform : Component
    {
        internal readonly List<Transform> Children = new List<Transform>();
        private Transform _parent;
        public Vector3 position { get; set; }
        public Vector3 forward { get { return new Vector3(0, 0, 1); } }
        public Transform parent { get { return _parent; } set { SetParent(value, true); } }
        public void SetParent(Transform p, bool worldPositionStays)
        {
            if (_parent != null) _parent.Children.Remove(this);
            _parent = p;
            if (p != null) p.Children.Add(this);
        }
        public void LookAt(Vector3 worldPosition) { }
    }

    public struct Vector3
    {
        public float x, y, z;
        public Vector3(float x, float y, float z) { this.x = x; this.y = y; this.z = z; }
        public static Vector3 zero { get { return default(Vector3); } }
        public static Vector3 up { get { return new Vector3(0, 1, 0); } }
        public static Vector3 operator +(Vector3 a, Vector3 b) { return new Vector3(a.x + b.x, a.y + b.y, a.z + b.z); }
        public static Vector3 operator -(Vector3 a, Vector3 b) { return new Vector3(a.x - b.x, a.y - b.y, a.z - b.z); }
        public static Vector3 operator *(Vector3 a, float d) { return new Vector3(a.x * d, a.y * d, a.z * d); }
        public static float Distance(Vector3 a, Vector3 b)
        {
            var d = a - b;
            return (float)Math.Sqrt(d.x * d.x + d.y * d.y + d.z * d.z);
        }
        public static Vector3 MoveTowards(Vector3 current, Vector3 target, float maxDistanceDelta)
        {
            float dist = Distance(current, target);
            if (dist <= maxDistanceDelta || dist == 0) return target;
            return current + (target - current) * (maxDistanceDelta / dist);
        }
    }

    public struct Rect
    {
        public float x, y, width, height;
        public Rect(float x, float y, float width, float height) { this.x = x; this.y = y; this.width = width; this.height = height; }
    }

    public static class Time
    {
        public static float deltaTime { get { return UnityStub.Player.DeltaTime; } }
        public static int frameCount { get { return UnityStub.Player.FrameCount; } }
        public static float realtimeSinceStartup { get { return (float)UnityStub.Player.Clock.Elapsed.TotalSeconds; } }
    }

    public static class Screen { public static int width { get { return 1920; } } public static int height { get { return 1080; } } }

    public static class Mathf
    {
        public static int Clamp(int value, int min, int max) { return value < min ? min : value > max ? max : value; }
        public static float Clamp(float value, float min, float max) { return value < min ? min : value > max ? max : value; }
        public static float Clamp01(float value) { return Clamp(value, 0f, 1f); }
        public static float Lerp(float a, float b, float t) { return a + (b - a) * Clamp01(t); }
        public static float Abs(float f) { return Math.Abs(f); }
    }

    public static class Debug
    {
        public static void Log(object message) { UnityStub.Log.Add("log", message); }
        public static void LogWarning(object message) { UnityStub.Log.Add("warning", message); }
        public static void LogError(object message) { UnityStub.Log.Add("error", message); }
        public static void LogException(Exception exception) { UnityStub.Log.Add("exception", exception); }
    }

    public sealed class AudioClip : Object
    {
        internal float[] Data;
        internal readonly object Lock = new object();
        private int _samples, _channels, _frequency;
        private readonly List<KeyValuePair<int, int>> _reads = new List<KeyValuePair<int, int>>();
        /// <summary>Test hook: every GetData call as (offsetSamples, frames), to check reads against what was recorded.</summary>
        public List<KeyValuePair<int, int>> Reads() { lock (Lock) return new List<KeyValuePair<int, int>>(_reads); }

        public int samples { get { return _samples; } }
        public int frequency { get { return _frequency; } }
        public int channels { get { return _channels; } }
        public float length { get { return (float)_samples / _frequency; } }

        public static AudioClip Create(string name, int lengthSamples, int channels, int frequency, bool stream)
        {
            if (lengthSamples <= 0 || channels <= 0 || frequency <= 0) throw new ArgumentException("AudioClip.Create: bad format");
            return new AudioClip { name = name, _samples = lengthSamples, _channels = channels, _frequency = frequency, Data = new float[lengthSamples * channels] };
        }

        public bool SetData(float[] data, int offsetSamples)
        {
            lock (Lock)
                for (int i = 0; i < data.Length; i++) Data[(offsetSamples * _channels + i) % Data.Length] = data[i];
            return true;
        }

        /// <summary>As Unity: reads past the end wrap around to the start of the clip.</summary>
        public bool GetData(float[] data, int offsetSamples)
        {
            if (offsetSamples < 0 || offsetSamples >= _samples) throw new ArgumentOutOfRangeException("offsetSamples");
            lock (Lock)
            {
                for (int i = 0; i < data.Length; i++) data[i] = Data[(offsetSamples * _channels + i) % Data.Length];
                _reads.Add(new KeyValuePair<int, int>(offsetSamples, data.Length / _channels));
            }
            return true;
        }
    }

    public sealed class AudioSource : Behaviour
    {
        internal volatile bool Playing;
        internal long ClipPosition; // output frames since Play
        public AudioClip clip { get; set; }
        public bool loop { get; set; }
        public bool playOnAwake { get; set; }
        public float volume { get; set; }
        public float spatialBlend { get; set; }
        public bool spatialize { get; set; }
        public bool spatializePostEffects { get; set; }
        public bool isPlaying { get { return Playing; } }
        /// <summary>Test hook: what the engine mixed from this source after its filters, per DSP block.</summary>
        public readonly UnityStub.AudioTap Tap = new UnityStub.AudioTap();

        public AudioSource() { volume = 1f; playOnAwake = true; }
        public void Play() { ClipPosition = 0; Playing = clip != null; UnityStub.AudioEngine.Ensure(); }
        public void Stop() { Playing = false; }
    }

    public struct AudioConfiguration
    {
        public int sampleRate;
        public int dspBufferSize;
    }

    public static class AudioSettings
    {
        public delegate void AudioConfigurationHandler(bool deviceWasChanged);
        public static event AudioConfigurationHandler OnAudioConfigurationChanged;
        public static int outputSampleRate { get { return UnityStub.AudioEngine.Rate; } }
        public static double dspTime { get { return UnityStub.AudioEngine.DspTime; } }
        public static void GetDSPBufferSize(out int bufferLength, out int numBuffers)
        {
            bufferLength = UnityStub.AudioEngine.BufferLength;
            numBuffers = UnityStub.AudioEngine.NumBuffers;
        }
        public static AudioConfiguration GetConfiguration()
        {
            return new AudioConfiguration { sampleRate = UnityStub.AudioEngine.Rate, dspBufferSize = UnityStub.AudioEngine.BufferLength };
        }
        public static bool Reset(AudioConfiguration config)
        {
            UnityStub.AudioEngine.Reconfigure(config.sampleRate, config.dspBufferSize, UnityStub.AudioEngine.NumBuffers, false);
            return true;
        }
        internal static void Raise(bool deviceWasChanged)
        {
            var h = OnAudioConfigurationChanged;
            if (h != null) h(deviceWasChanged);
        }
    }

#if !UNITY_WEBGL
    public static class Microphone
    {
        public static string[] devices { get { return UnityStub.MicrophoneDevice.Present ? new[] { "Stub Microphone" } : new string[0]; } }
        public static AudioClip Start(string deviceName, bool loop, int lengthSec, int frequency)
        {
            return UnityStub.MicrophoneDevice.Start(loop, lengthSec, frequency);
        }
        public static void End(string deviceName) { UnityStub.MicrophoneDevice.End(); }
        public static bool IsRecording(string deviceName) { return UnityStub.MicrophoneDevice.Recording; }
        public static int GetPosition(string deviceName) { return UnityStub.MicrophoneDevice.Position; }
        public static void GetDeviceCaps(string deviceName, out int minFreq, out int maxFreq) { minFreq = 8000; maxFreq = 48000; }
    }
#endif

    public sealed class Mesh : Object
    {
        public readonly List<string> BlendShapeNames = new List<string>();
        public int blendShapeCount { get { return BlendShapeNames.Count; } }
        public int GetBlendShapeIndex(string blendShapeName) { return BlendShapeNames.IndexOf(blendShapeName); }
    }

    public sealed class SkinnedMeshRenderer : Component
    {
        private Mesh _mesh;
        private float[] _weights = new float[0];
        /// <summary>Test hook: how many times each blendshape was written.</summary>
        public int[] Writes = new int[0];
        public Mesh sharedMesh
        {
            get { return _mesh; }
            set { _mesh = value; _weights = new float[value.blendShapeCount]; Writes = new int[value.blendShapeCount]; }
        }
        public void SetBlendShapeWeight(int index, float value) { _weights[index] = value; Writes[index]++; }
        public float GetBlendShapeWeight(int index) { return _weights[index]; }
    }

    public sealed class Animator : Behaviour { public void SetTrigger(string name) { } }

    public enum KeyCode { None, Return, Tab, T, V, Alpha1, Alpha2 }

    public static class Input
    {
        public static bool GetKey(KeyCode key) { return UnityStub.Keys.Held.Contains(key); }
        public static bool GetKeyDown(KeyCode key) { return UnityStub.Keys.Down.Contains(key); }
        public static bool GetKeyUp(KeyCode key) { return UnityStub.Keys.Up.Contains(key); }
    }

    public static class PlayerPrefs
    {
        internal static readonly Dictionary<string, string> Store = new Dictionary<string, string>();
        public static string GetString(string key, string defaultValue) { string v; return Store.TryGetValue(key, out v) ? v : defaultValue; }
        public static void SetString(string key, string value) { Store[key] = value; }
        public static bool HasKey(string key) { return Store.ContainsKey(key); }
        public static void DeleteKey(string key) { Store.Remove(key); }
    }

    public enum EventType { KeyDown, KeyUp, Layout, Repaint }

    public sealed class Event
    {
        public static Event current { get { return null; } }
        public EventType type { get { return EventType.Layout; } }
        public KeyCode keyCode { get { return KeyCode.None; } }
        public void Use() { }
    }

    public static class GUI { public static void FocusControl(string name) { } public static void SetNextControlName(string name) { } }

    public static class GUILayout
    {
        public static void BeginArea(Rect screenRect) { }
        public static void EndArea() { }
        public static void BeginHorizontal() { }
        public static void EndHorizontal() { }
        public static void Label(string text) { }
        public static string TextField(string text) { return text; }
        public static bool Button(string text) { return false; }
        public static bool Toggle(bool value, string text) { return value; }
    }

    [AttributeUsage(AttributeTargets.Field)] public sealed class SerializeField : Attribute { }
    [AttributeUsage(AttributeTargets.Field)] public sealed class HeaderAttribute : Attribute { public HeaderAttribute(string header) { } }
    [AttributeUsage(AttributeTargets.Field)] public sealed class TooltipAttribute : Attribute { public TooltipAttribute(string tooltip) { } }
    [AttributeUsage(AttributeTargets.Field)] public sealed class RangeAttribute : Attribute { public RangeAttribute(float min, float max) { } }
    [AttributeUsage(AttributeTargets.Class, AllowMultiple = true)]
    public sealed class RequireComponent : Attribute { public readonly Type Type; public RequireComponent(Type t) { Type = t; } }
    [AttributeUsage(AttributeTargets.Class)] public sealed class DisallowMultipleComponent : Attribute { }
    [AttributeUsage(AttributeTargets.Class)]
    public sealed class DefaultExecutionOrder : Attribute { public readonly int Order; public DefaultExecutionOrder(int order) { Order = order; } }
    [AttributeUsage(AttributeTargets.Class)] public sealed class AddComponentMenu : Attribute { public AddComponentMenu(string menuName) { } }

    public enum RuntimeInitializeLoadType { AfterSceneLoad, BeforeSceneLoad, AfterAssembliesLoaded, BeforeSplashScreen, SubsystemRegistration }

    [AttributeUsage(AttributeTargets.Method)]
    public sealed class RuntimeInitializeOnLoadMethodAttribute : Attribute
    {
        public readonly RuntimeInitializeLoadType LoadType;
        public RuntimeInitializeOnLoadMethodAttribute(RuntimeInitializeLoadType loadType) { LoadType = loadType; }
    }
}

namespace UnityEngine.Events
{
    public delegate void UnityAction();
    public delegate void UnityAction<T0>(T0 arg0);
    public delegate void UnityAction<T0, T1>(T0 arg0, T1 arg1);

    public class UnityEvent
    {
        private readonly List<UnityAction> _calls = new List<UnityAction>();
        public void AddListener(UnityAction call) { _calls.Add(call); }
        public void RemoveListener(UnityAction call) { _calls.Remove(call); }
        public void Invoke() { foreach (var c in _calls.ToArray()) c(); }
    }

    public abstract class UnityEvent<T0>
    {
        private readonly List<UnityAction<T0>> _calls = new List<UnityAction<T0>>();
        public void AddListener(UnityAction<T0> call) { _calls.Add(call); }
        public void RemoveListener(UnityAction<T0> call) { _calls.Remove(call); }
        public void Invoke(T0 arg0) { foreach (var c in _calls.ToArray()) c(arg0); }
    }

    public abstract class UnityEvent<T0, T1>
    {
        private readonly List<UnityAction<T0, T1>> _calls = new List<UnityAction<T0, T1>>();
        public void AddListener(UnityAction<T0, T1> call) { _calls.Add(call); }
        public void RemoveListener(UnityAction<T0, T1> call) { _calls.Remove(call); }
        public void Invoke(T0 arg0, T1 arg1) { foreach (var c in _calls.ToArray()) c(arg0, arg1); }
    }
}

namespace UnityStub
{
    using UnityEngine;

    /// <summary>Everything Debug.* received; exceptions are what Unity would print in red.</summary>
    public static class Log
    {
        public static readonly List<KeyValuePair<string, string>> Entries = new List<KeyValuePair<string, string>>();
        public static bool Echo = true;

        internal static void Add(string level, object message)
        {
            string text = message == null ? "null" : message.ToString();
            lock (Entries) Entries.Add(new KeyValuePair<string, string>(level, text));
            if (Echo) Console.Error.WriteLine("[unity " + level + "] " + text);
        }

        public static List<string> Of(string level)
        {
            lock (Entries) return Entries.Where(e => e.Key == level).Select(e => e.Value).ToList();
        }
    }

    /// <summary>The player loop: lifecycle messages in Unity's order, one Frame() at a time.</summary>
    public static class Player
    {
        public static readonly Stopwatch Clock = Stopwatch.StartNew();
        public static int FrameCount;
        public static float DeltaTime = 1f / 60;
        private static readonly List<GameObject> Objects = new List<GameObject>();
        private static readonly HashSet<Behaviour> Started = new HashSet<Behaviour>();
        private static readonly HashSet<Behaviour> Awoken = new HashSet<Behaviour>();
        /// <summary>Exceptions thrown by lifecycle messages (Unity logs them and carries on).</summary>
        public static readonly List<Exception> Exceptions = new List<Exception>();

        /// <summary>Runs [RuntimeInitializeOnLoadMethod] methods of the given assemblies, as Unity does at start.</summary>
        public static void Boot(params Assembly[] assemblies)
        {
            foreach (var a in assemblies)
                foreach (var t in a.GetTypes())
                    foreach (var m in t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic))
                        if (m.GetCustomAttributes(typeof(RuntimeInitializeOnLoadMethodAttribute), false).Length > 0) m.Invoke(null, null);
        }

        internal static void Register(GameObject go) { lock (Objects) Objects.Add(go); }

        internal static IEnumerable<Behaviour> Behaviours(GameObject go) { return go.Components.OfType<Behaviour>().Where(b => !b.Destroyed); }

        private static IEnumerable<Behaviour> AllBehaviours()
        {
            List<GameObject> gos;
            lock (Objects) gos = Objects.Where(g => !g.Destroyed).ToList();
            return gos.SelectMany(g => Behaviours(g)).OrderBy(b => Order(b.GetType())).ToList();
        }

        private static int Order(Type t)
        {
            var a = (DefaultExecutionOrder)t.GetCustomAttributes(typeof(DefaultExecutionOrder), true).FirstOrDefault();
            return a != null ? a.Order : 0;
        }

        internal static T Find<T>() where T : Object
        {
            foreach (var b in AllBehaviours()) if (b is T && b.isActiveAndEnabled) return (T)(object)b;
            return null;
        }

        internal static GameObject FindGameObject(string name)
        {
            lock (Objects) return Objects.FirstOrDefault(g => !g.Destroyed && g.activeInHierarchy && g.name == name);
        }

        internal static void Added(Component c)
        {
            var b = c as Behaviour;
            if (b == null || !b.gameObject.activeInHierarchy) return;
            Awake(b);
            if (b.isActiveAndEnabled) Send(b, "OnEnable");
        }

        private static void Awake(Behaviour b)
        {
            if (Awoken.Add(b)) Send(b, "Awake");
        }

        internal static void ActivityChanged(Behaviour b, bool wasActive)
        {
            bool now = b.isActiveAndEnabled;
            if (now == wasActive) return;
            if (now)
            {
                Awake(b);
                Send(b, "OnEnable");
            }
            else Send(b, "OnDisable");
        }

        internal static void Destroy(Object o)
        {
            var go = o as GameObject;
            var comps = go != null ? Behaviours(go).ToList() : new List<Behaviour> { o as Behaviour };
            foreach (var b in comps.Where(x => x != null))
            {
                bool was = b.isActiveAndEnabled;
                b.Destroyed = true;
                if (was) Send(b, "OnDisable");
                if (Awoken.Contains(b)) Send(b, "OnDestroy");
            }
            o.Destroyed = true;
        }

        /// <summary>One frame: Start for new behaviours, Update, (the Animator would evaluate here), LateUpdate.</summary>
        public static void Frame()
        {
            FrameCount++;
            var all = AllBehaviours();
            foreach (var b in all) if (b.isActiveAndEnabled && Started.Add(b)) Send(b, "Start");
            foreach (var b in all) if (b.isActiveAndEnabled) Send(b, "Update");
            foreach (var b in all) if (b.isActiveAndEnabled) Send(b, "LateUpdate");
            Keys.EndFrame();
        }

        /// <summary>Quitting: OnApplicationQuit, then every behaviour is disabled and destroyed.</summary>
        public static void Quit()
        {
            foreach (var b in AllBehaviours()) Send(b, "OnApplicationQuit");
            List<GameObject> gos;
            lock (Objects) gos = Objects.ToList();
            foreach (var g in gos) if (!g.Destroyed) Destroy(g);
            AudioEngine.Shutdown();
        }

        public static void Send(object target, string message, params object[] args)
        {
            var m = target.GetType().GetMethod(message, BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
            if (m == null) return;
            try { m.Invoke(target, args); }
            catch (TargetInvocationException e)
            {
                lock (Exceptions) Exceptions.Add(e.InnerException);
                Debug.LogException(e.InnerException);
            }
        }
    }

    /// <summary>Keyboard state of the legacy Input Manager, set by the test.</summary>
    public static class Keys
    {
        internal static readonly HashSet<KeyCode> Held = new HashSet<KeyCode>(), Down = new HashSet<KeyCode>(), Up = new HashSet<KeyCode>();
        public static void Press(KeyCode k) { if (Held.Add(k)) Down.Add(k); }
        public static void Release(KeyCode k) { if (Held.Remove(k)) Up.Add(k); }
        internal static void EndFrame() { Down.Clear(); Up.Clear(); }
    }

    /// <summary>What one AudioSource produced after its filters, block by block, with the engine's rate.</summary>
    public sealed class AudioTap
    {
        private readonly List<float[]> _blocks = new List<float[]>();
        private readonly List<int> _rates = new List<int>();
        public int Channels = 2;

        internal void Add(float[] block, int rate)
        {
            lock (_blocks) { _blocks.Add((float[])block.Clone()); _rates.Add(rate); }
        }

        public int Blocks { get { lock (_blocks) return _blocks.Count; } }

        /// <summary>Frames above the threshold (any channel) per rate, from block index `from` on.</summary>
        public Dictionary<int, long> VoicedFrames(int from = 0, float threshold = 1e-4f)
        {
            var d = new Dictionary<int, long>();
            lock (_blocks)
                for (int b = from; b < _blocks.Count; b++)
                {
                    var x = _blocks[b];
                    long n = 0;
                    for (int f = 0; f + Channels <= x.Length; f += Channels)
                    {
                        bool voiced = false;
                        for (int c = 0; c < Channels; c++) if (Math.Abs(x[f + c]) > threshold) voiced = true;
                        if (voiced) n++;
                    }
                    long had;
                    d.TryGetValue(_rates[b], out had);
                    d[_rates[b]] = had + n;
                }
            return d;
        }

        public double Rms(int from = 0)
        {
            double sum = 0;
            long n = 0;
            lock (_blocks)
                for (int b = from; b < _blocks.Count; b++) foreach (var v in _blocks[b]) { sum += v * v; n++; }
            return n == 0 ? 0 : Math.Sqrt(sum / n);
        }
    }

    /// <summary>
    /// The audio device: a thread that, every bufferLength frames of real time at Rate, mixes each playing
    /// AudioSource (its clip, looped) through the OnAudioFilterRead of the enabled MonoBehaviours on its
    /// GameObject, with Channels interleaved speaker channels, and records the result in the source's Tap.
    /// </summary>
    public static class AudioEngine
    {
        public static volatile int Rate = 48000;
        public static volatile int BufferLength = 1024;
        public static volatile int NumBuffers = 4;
        public static int Channels = 2;
        private static long _dspFrames;
        private static Thread _thread;
        private static volatile bool _stop;
        private static readonly object Lock = new object();
        /// <summary>Exceptions thrown on the audio thread by filters.</summary>
        public static readonly List<Exception> Exceptions = new List<Exception>();

        public static double DspTime { get { return (double)Interlocked.Read(ref _dspFrames) / Rate; } }

        internal static void Ensure()
        {
            lock (Lock)
            {
                if (_thread != null) return;
                _stop = false;
                _thread = new Thread(Run) { IsBackground = true, Name = "stub DSP" };
                _thread.Start();
            }
        }

        public static void Shutdown()
        {
            Thread t;
            lock (Lock) { t = _thread; _thread = null; _stop = true; }
            if (t != null) t.Join(2000);
        }

        /// <summary>
        /// A new output device (a headset plugged in) or AudioSettings.Reset: as in Unity, the device is
        /// reopened, every AudioSource stops, then OnAudioConfigurationChanged runs on the calling (main) thread.
        /// </summary>
        public static void Reconfigure(int rate, int bufferLength, int numBuffers, bool deviceWasChanged)
        {
            Shutdown();
            foreach (var s in Sources()) s.Playing = false;
            Rate = rate;
            BufferLength = bufferLength;
            NumBuffers = numBuffers;
            Ensure();
            AudioSettings.Raise(deviceWasChanged);
        }

        private static List<AudioSource> Sources()
        {
            var list = new List<AudioSource>();
            foreach (var b in typeof(Player).GetMethod("AllBehaviours", BindingFlags.Static | BindingFlags.NonPublic)
                         .Invoke(null, null) as IEnumerable<Behaviour>)
                if (b is AudioSource) list.Add((AudioSource)b);
            return list;
        }

        private static void Run()
        {
            var clock = Stopwatch.StartNew();
            long framesDone = 0;
            while (!_stop)
            {
                int rate = Rate, n = BufferLength;
                // Real time: the next block is due when the previous one has played.
                double due = (double)framesDone / rate;
                double now = clock.Elapsed.TotalSeconds;
                if (now < due) { Thread.Sleep(Math.Max(1, (int)((due - now) * 1000))); continue; }
                if (now - due > 0.5) framesDone = (long)(now * rate); // a stall: skip ahead as a device would
                List<AudioSource> sources;
                try { sources = Sources(); }
                catch (InvalidOperationException) { continue; } // the scene changed while listing it
                foreach (var s in sources)
                {
                    try { Mix(s, rate, n); }
                    catch (InvalidOperationException) { } // components added while mixing: next block
                }
                framesDone += n;
                Interlocked.Add(ref _dspFrames, n);
            }
        }

        private static void Mix(AudioSource s, int rate, int n)
        {
                {
                    if (!s.Playing || !s.isActiveAndEnabled) return;
                    var block = new float[n * Channels];
                    var clip = s.clip;
                    if (clip != null)
                    {
                        for (int f = 0; f < n; f++)
                        {
                            long src = (s.ClipPosition + f) * clip.frequency / rate;
                            float v = clip.Data[(int)(src % clip.samples) * clip.channels] * s.volume;
                            for (int c = 0; c < Channels; c++) block[f * Channels + c] = v;
                        }
                    }
                    s.ClipPosition += n;
                    foreach (var mb in s.gameObject.Components.OfType<MonoBehaviour>())
                    {
                        if (!mb.isActiveAndEnabled) continue;
                        var m = mb.GetType().GetMethod("OnAudioFilterRead", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
                        if (m == null) continue;
                        try { m.Invoke(mb, new object[] { block, Channels }); }
                        catch (TargetInvocationException e) { lock (Exceptions) Exceptions.Add(e.InnerException); }
                    }
                    s.Tap.Channels = Channels;
                    s.Tap.Add(block, rate);
                }
        }
    }

#if !UNITY_WEBGL
    /// <summary>
    /// The default microphone: records Signal(sampleIndex) in real time into a looping clip (wrapping at
    /// its end), as Unity's Microphone does. Written counts every sample recorded since Start.
    /// </summary>
    public static class MicrophoneDevice
    {
        public static bool Present = true;
        // Voice-like: a 220 Hz tone whose level swings ~10 dB four times a second (syllables). A steady
        // tone is what a server VAD and noise suppression treat as room noise, not as a talking player.
        public static Func<long, int, float> Signal = (i, rate) =>
        {
            double t = (double)i / rate;
            double syllables = 0.3 + 0.7 * (0.5 - 0.5 * Math.Cos(2 * Math.PI * 4 * t));
            return (float)(0.4 * syllables * Math.Sin(2 * Math.PI * 220 * t));
        };
        private static AudioClip _clip;
        private static Thread _thread;
        private static volatile bool _recording;
        private static long _written;

        public static bool Recording { get { return _recording; } }
        public static long Written { get { return Interlocked.Read(ref _written); } }
        public static AudioClip Clip { get { return _clip; } }
        public static int Position { get { var c = _clip; return c == null || !_recording ? 0 : (int)(Written % c.samples); } }

        internal static AudioClip Start(bool loop, int lengthSec, int frequency)
        {
            End();
            _clip = AudioClip.Create("Microphone", lengthSec * frequency, 1, frequency, false);
            Interlocked.Exchange(ref _written, 0);
            _recording = true;
            var clip = _clip;
            _thread = new Thread(() =>
            {
                var clock = Stopwatch.StartNew();
                while (_recording)
                {
                    long due = (long)(clock.Elapsed.TotalSeconds * frequency);
                    long w = Written;
                    if (!loop && w >= clip.samples) break;
                    lock (clip.Lock)
                        for (long i = w; i < due; i++) clip.Data[(int)(i % clip.samples)] = Signal(i, frequency);
                    Interlocked.Exchange(ref _written, Math.Max(w, due));
                    Thread.Sleep(5);
                }
            }) { IsBackground = true, Name = "stub microphone" };
            _thread.Start();
            return _clip;
        }

        internal static void End()
        {
            _recording = false;
            var t = _thread;
            _thread = null;
            if (t != null) t.Join(1000);
        }
    }
#endif
}
