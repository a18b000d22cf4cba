using System.Collections.Generic;
using ConvaiBridge.Unity;
using UnityEngine;

namespace ConvaiBridge.Samples
{
    /// <summary>
    /// A minimal on-screen chat for the Talking NPCs scene: pick an NPC (1 / 2), type and press Enter,
    /// or hold V to talk into the microphone. Shows what each NPC says and does.
    /// </summary>
    public sealed class TalkingNpcsDemo : MonoBehaviour
    {
        [SerializeField] private ConvaiNpc[] npcs = new ConvaiNpc[0];
        [SerializeField] private KeyCode pushToTalk = KeyCode.V;
        [SerializeField] private int logLines = 14;

        private readonly List<string> _log = new List<string>();
        private int _selected;
        private string _input = "";

        private void Start()
        {
            foreach (var npc in npcs)
            {
                var n = npc;
                n.onOpened.AddListener(() => Add(n.name + " is listening"));
                n.onUserTranscript.AddListener((text, final) => { if (final) Add("You → " + n.name + ": " + text); });
                n.onBotReply.AddListener(text => Add(n.name + ": " + text));
                n.onAction.AddListener((action, target) => Add(n.name + " does: " + action + (target.Length > 0 ? " " + target : "")));
                n.onEmotion.AddListener((emotion, scale) => Add(n.name + " feels " + emotion + " (" + scale + ")"));
                n.onNarrativeSection.AddListener(section => Add(n.name + " → section " + section));
                n.onError.AddListener((code, message) => Add(n.name + " error " + code + ": " + message));
            }
        }

        private void Add(string line)
        {
            _log.Add(line);
            if (_log.Count > logLines) _log.RemoveAt(0);
        }

        private void Update()
        {
            if (npcs.Length == 0) return;
#if ENABLE_LEGACY_INPUT_MANAGER
            if (Input.GetKeyDown(KeyCode.Alpha1)) _selected = 0;
            if (Input.GetKeyDown(KeyCode.Alpha2) && npcs.Length > 1) _selected = 1;
            if (Input.GetKeyDown(pushToTalk)) npcs[_selected].StartTalking();
            if (Input.GetKeyUp(pushToTalk)) npcs[_selected].StopTalking();
#endif
        }

        private void OnGUI()
        {
            if (npcs.Length == 0) return;
            var bridge = ConvaiBridgeClient.Instance;
            GUILayout.BeginArea(new Rect(10, 10, Screen.width / 2, Screen.height - 20));
            GUILayout.Label("Daemon: " + (bridge != null ? bridge.State.ToString() : "no ConvaiBridgeClient in the scene"));
            GUILayout.BeginHorizontal();
            for (int i = 0; i < npcs.Length; i++)
            {
                string state = npcs[i].IsTalking ? " (listening)" : npcs[i].IsSpeaking ? " (speaking)" : npcs[i].IsOpen ? "" : " (connecting)";
                if (GUILayout.Toggle(_selected == i, (i + 1) + ": " + npcs[i].name + state)) _selected = i;
            }
            GUILayout.EndHorizontal();
            foreach (var line in _log) GUILayout.Label(line);
            var e = Event.current;
            bool enter = e != null && e.type == EventType.KeyDown && e.keyCode == KeyCode.Return;
            GUILayout.BeginHorizontal();
            _input = GUILayout.TextField(_input);
            if ((GUILayout.Button("Send") || enter) && _input.Trim().Length > 0)
            {
                npcs[_selected].SendText(_input.Trim());
                Add("You → " + npcs[_selected].name + ": " + _input.Trim());
                _input = "";
            }
            GUILayout.EndHorizontal();
            GUILayout.Label("1/2 pick an NPC · Enter sends · hold " + pushToTalk + " to talk");
            GUILayout.EndArea();
        }
    }
}
