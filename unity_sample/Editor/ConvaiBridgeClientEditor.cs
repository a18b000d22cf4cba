using ConvaiBridge.Client;
using UnityEditor;

namespace ConvaiBridge.Unity.Editor
{
    /// <summary>Shows the live connection and its sessions in the inspector during play mode.</summary>
    [CustomEditor(typeof(ConvaiBridgeClient))]
    internal sealed class ConvaiBridgeClientEditor : UnityEditor.Editor
    {
        public override void OnInspectorGUI()
        {
            DrawDefaultInspector();
            var client = ((ConvaiBridgeClient)target).Client;
            if (client == null) return;
            EditorGUILayout.Space();
            EditorGUILayout.LabelField("Connection", client.State + (client.Endpoint != null ? " " + client.Endpoint : ""));
            if (client.Welcome != null)
                EditorGUILayout.LabelField("Daemon", client.Welcome.DaemonVersion + " instance " + client.InstanceId);
            if (client.LastError != null)
                EditorGUILayout.HelpBox(client.LastError.Code + ": " + client.LastError.Message, MessageType.Warning);
            foreach (var s in client.Sessions)
            {
                string audio = s.Audio != null ? s.Audio.AvailableFrames * 1000 / s.Audio.SampleRate + " ms queued" : "no audio yet";
                EditorGUILayout.LabelField(s.Label ?? s.CharacterId, s.State + ", turn " + s.LastTurn + ", " + audio);
            }
            Repaint();
        }
    }
}
