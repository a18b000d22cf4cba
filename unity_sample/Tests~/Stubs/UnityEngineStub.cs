// A compile-time stand-in for the few UnityEngine / UnityEditor members this package uses, written for
// CI (Unity cannot run here). Signatures follow Unity's public scripting reference; bodies do nothing.
// It proves the Unity layer type-checks against that API surface, not that it runs in Unity.
#pragma warning disable 0067, 0649, 1591
using System;

namespace UnityEngine
{
    public class Object
    {
        public string name { get; set; }
        public static T FindObjectOfType<T>() where T : Object { return null; }
        public static T FindFirstObjectByType<T>() where T : Object { return null; }
        public static implicit operator bool(Object o) { return !ReferenceEquals(o, null); }
    }

    public class Component : Object
    {
        public GameObject gameObject { get { return null; } }
        public Transform transform { get { return null; } }
        public T GetComponent<T>() { return default(T); }
        public T GetComponentInParent<T>() { return default(T); }
        public T GetComponentInChildren<T>() { return default(T); }
    }

    public class Behaviour : Component { public bool enabled { get; set; } }
    public class MonoBehaviour : Behaviour { }

    public sealed class GameObject : Object
    {
        public Transform transform { get { return null; } }
        public static GameObject Find(string name) { return null; }
        public T GetComponent<T>() { return default(T); }
    }

    public class Transform : Component
    {
        public Vector3 position { get; set; }
        public Vector3 forward { get { return default(Vector3); } }
        public Transform parent { get; set; }
        public void SetParent(Transform p, bool worldPositionStays) { }
        public void LookAt(Vector3 worldPosition) { }
    }

    public struct Vector3
    {
        public float x, y, z;
        public Vector3(float x, float y, float z) { this.x = x; this.y = y; this.z = z; }
        public static Vector3 zero { get { return default(Vector3); } }
        public static Vector3 up { get { return new Vector3(0, 1, 0); } }
        public static Vector3 operator +(Vector3 a, Vector3 b) { return default(Vector3); }
        public static Vector3 operator -(Vector3 a, Vector3 b) { return default(Vector3); }
        public static Vector3 operator *(Vector3 a, float d) { return default(Vector3); }
        public static float Distance(Vector3 a, Vector3 b) { return 0; }
        public static Vector3 MoveTowards(Vector3 current, Vector3 target, float maxDistanceDelta) { return target; }
    }

    public struct Rect
    {
        public Rect(float x, float y, float width, float height) { }
    }

    public static class Time { public static float deltaTime { get { return 0; } } }
    public static class Screen { public static int width { get { return 0; } } public static int height { get { return 0; } } }

    public static class Mathf
    {
        public static int Clamp(int value, int min, int max) { return value; }
        public static float Clamp01(float value) { return value; }
        public static float Lerp(float a, float b, float t) { return a; }
    }

    public static class Debug
    {
        public static void Log(object message) { }
        public static void LogWarning(object message) { }
        public static void LogError(object message) { }
        public static void LogException(Exception exception) { }
    }

    public sealed class AudioClip : Object
    {
        public int samples { get { return 0; } }
        public int frequency { get { return 0; } }
        public int channels { get { return 0; } }
        public static AudioClip Create(string name, int lengthSamples, int channels, int frequency, bool stream) { return null; }
        public bool SetData(float[] data, int offsetSamples) { return true; }
        public bool GetData(float[] data, int offsetSamples) { return true; }
    }

    public sealed class AudioSource : Behaviour
    {
        public AudioClip clip { get; set; }
        public bool loop { get; set; }
        public bool playOnAwake { get; set; }
        public bool isPlaying { get { return false; } }
        public void Play() { }
    }

    public static class AudioSettings
    {
        public static int outputSampleRate { get { return 48000; } }
        public static void GetDSPBufferSize(out int bufferLength, out int numBuffers) { bufferLength = 1024; numBuffers = 4; }
    }

    public static class Microphone
    {
        public static string[] devices { get { return new string[0]; } }
        public static AudioClip Start(string deviceName, bool loop, int lengthSec, int frequency) { return null; }
        public static void End(string deviceName) { }
        public static int GetPosition(string deviceName) { return 0; }
        public static void GetDeviceCaps(string deviceName, out int minFreq, out int maxFreq) { minFreq = 0; maxFreq = 0; }
    }

    public sealed class Mesh : Object { public int GetBlendShapeIndex(string blendShapeName) { return -1; } }

    public sealed class SkinnedMeshRenderer : Component
    {
        public Mesh sharedMesh { get; set; }
        public void SetBlendShapeWeight(int index, float value) { }
    }

    public sealed class Animator : Behaviour { public void SetTrigger(string name) { } }

    public enum KeyCode { None, Return, Tab, T, V, Alpha1, Alpha2 }

    public static class Input
    {
        public static bool GetKey(KeyCode key) { return false; }
        public static bool GetKeyDown(KeyCode key) { return false; }
        public static bool GetKeyUp(KeyCode key) { return false; }
    }

    public static class PlayerPrefs
    {
        public static string GetString(string key, string defaultValue) { return defaultValue; }
        public static void SetString(string key, string value) { }
        public static void DeleteKey(string key) { }
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
    [AttributeUsage(AttributeTargets.Class)] public sealed class RequireComponent : Attribute { public RequireComponent(Type t) { } }
    [AttributeUsage(AttributeTargets.Class)] public sealed class DisallowMultipleComponent : Attribute { }
    [AttributeUsage(AttributeTargets.Class)] public sealed class DefaultExecutionOrder : Attribute { public DefaultExecutionOrder(int order) { } }
    [AttributeUsage(AttributeTargets.Class)] public sealed class AddComponentMenu : Attribute { public AddComponentMenu(string menuName) { } }

    public enum RuntimeInitializeLoadType { AfterSceneLoad, BeforeSceneLoad, AfterAssembliesLoaded, BeforeSplashScreen, SubsystemRegistration }

    [AttributeUsage(AttributeTargets.Method)]
    public sealed class RuntimeInitializeOnLoadMethodAttribute : Attribute
    {
        public RuntimeInitializeOnLoadMethodAttribute(RuntimeInitializeLoadType loadType) { }
    }
}

namespace UnityEngine.Events
{
    public delegate void UnityAction();
    public delegate void UnityAction<T0>(T0 arg0);
    public delegate void UnityAction<T0, T1>(T0 arg0, T1 arg1);

    public class UnityEvent
    {
        public void AddListener(UnityAction call) { }
        public void Invoke() { }
    }

    public abstract class UnityEvent<T0>
    {
        public void AddListener(UnityAction<T0> call) { }
        public void Invoke(T0 arg0) { }
    }

    public abstract class UnityEvent<T0, T1>
    {
        public void AddListener(UnityAction<T0, T1> call) { }
        public void Invoke(T0 arg0, T1 arg1) { }
    }
}
