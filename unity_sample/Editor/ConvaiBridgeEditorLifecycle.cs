using UnityEditor;

namespace ConvaiBridge.Unity.Editor
{
    /// <summary>
    /// Stops every bridge client before scripts reload and when play mode ends, so no network thread
    /// survives into a reloaded domain or an edit-mode editor (the classic ZeroMQ-in-Unity freeze).
    /// OnDisable already does it; this covers objects that never got OnDisable.
    /// </summary>
    [InitializeOnLoad]
    internal static class ConvaiBridgeEditorLifecycle
    {
        static ConvaiBridgeEditorLifecycle()
        {
            AssemblyReloadEvents.beforeAssemblyReload += ConvaiBridgeClient.StopAll;
            EditorApplication.playModeStateChanged += state =>
            {
                if (state == PlayModeStateChange.ExitingPlayMode) ConvaiBridgeClient.StopAll();
            };
            EditorApplication.quitting += ConvaiBridgeClient.StopAll;
        }
    }
}
