// Compile-time stand-in for the UnityEditor members the package's Editor folder uses (see UnityEngineStub.cs).
#pragma warning disable 0067, 1591
using System;

namespace UnityEditor
{
    [AttributeUsage(AttributeTargets.Class)] public sealed class InitializeOnLoadAttribute : Attribute { }

    [AttributeUsage(AttributeTargets.Class)]
    public sealed class CustomEditor : Attribute { public CustomEditor(Type inspectedType) { } }

    public enum PlayModeStateChange { EnteredEditMode, ExitingEditMode, EnteredPlayMode, ExitingPlayMode }

    public static class AssemblyReloadEvents
    {
        public delegate void AssemblyReloadCallback();
        public static event AssemblyReloadCallback beforeAssemblyReload;
    }

    public static class EditorApplication
    {
        public static event Action<PlayModeStateChange> playModeStateChanged;
        public static event Action quitting;
    }

    public class Editor : UnityEngine.Object
    {
        public UnityEngine.Object target { get { return null; } }
        public virtual void OnInspectorGUI() { }
        public bool DrawDefaultInspector() { return true; }
        public void Repaint() { }
    }

    public enum MessageType { None, Info, Warning, Error }

    public static class EditorGUILayout
    {
        public static void Space() { }
        public static void LabelField(string label, string label2) { }
        public static void HelpBox(string message, MessageType type) { }
    }
}
