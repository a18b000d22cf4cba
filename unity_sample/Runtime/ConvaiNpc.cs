using System;
using System.Collections.Generic;
using ConvaiBridge.Client;
using ConvaiBridge.Protocol;
using UnityEngine;
using UnityEngine.Events;

namespace ConvaiBridge.Unity
{
    /// <summary>
    /// A talking NPC: opens a conversation with one Convai character through the scene's
    /// ConvaiBridgeClient, plays the bot's voice through this GameObject's AudioSource (streamed into
    /// OnAudioFilterRead from the session's ring buffer, so 3D spatialization still applies), records
    /// push-to-talk speech from the Microphone, and raises UnityEvents for transcripts, replies,
    /// actions, emotions and narrative sections. Lip-sync weights for the current playback position
    /// come from TryGetLipSync (ConvaiLipSync drives blendshapes with them).
    /// </summary>
    [RequireComponent(typeof(AudioSource))]
    [AddComponentMenu("Convai Bridge/Convai NPC")]
    public sealed class ConvaiNpc : MonoBehaviour
    {
        public enum LipSyncMode { None, Visemes, ArkitBlendshapes }

        [Serializable] public sealed class TextEvent : UnityEvent<string> { }
        [Serializable] public sealed class TranscriptEvent : UnityEvent<string, bool> { }
        [Serializable] public sealed class ActionEvent : UnityEvent<string, string> { }
        [Serializable] public sealed class EmotionEvent : UnityEvent<string, int> { }
        [Serializable] public sealed class TurnEvent : UnityEvent<int, bool> { }
        [Serializable] public sealed class ErrorEvent : UnityEvent<string, string> { }

        [Serializable]
        public sealed class SceneEntry
        {
            public string name;
            public string description;
        }

        [Header("Character")]
        [Tooltip("Empty: ConvaiBridgeClient.Instance.")]
        [SerializeField] private ConvaiBridgeClient bridge;
        [SerializeField] private string characterId = "c0ffee00-0000-4000-8000-000000000001";
        [Tooltip("live (voice, lip sync, emotion), interaction (REST) or stream (text only).")]
        [SerializeField] private string backend = WireEnums.Backend.Live;
        [Tooltip("Name in the daemon's logs; empty: the GameObject's name.")]
        [SerializeField] private string label = "";
        [SerializeField] private bool openOnStart = true;
        [Tooltip("Keep the conversation id in PlayerPrefs so the character remembers the player next time.")]
        [SerializeField] private bool rememberConversation = true;

        [Header("Actions the character may choose")]
        [SerializeField] private List<string> actions = new List<string>();
        [SerializeField] private List<SceneEntry> sceneObjects = new List<SceneEntry>();

        [Header("Voice")]
        [SerializeField] private bool voice = true;
        [SerializeField] private LipSyncMode lipSync = LipSyncMode.Visemes;
        [Range(0f, 2f)] [SerializeField] private float volume = 1f;

        // Serialized on every platform (scenes stay portable) though some builds never read them.
#pragma warning disable 0414
        [Header("Push to talk")]
        [Tooltip("Hold to talk (legacy Input Manager only; ignored when it is disabled).")]
        [SerializeField] private KeyCode talkKey = KeyCode.None;
#if CONVAI_INPUT_SYSTEM
        [Tooltip("Hold to talk (Input System package): a button action; pressed starts, released stops.")]
        [SerializeField] private UnityEngine.InputSystem.InputActionReference talkAction;
#endif
        [Tooltip("Empty: the default microphone.")]
        [SerializeField] private string microphoneDevice = "";
        [SerializeField] private int microphoneRate = 16000;
#pragma warning restore 0414
        [Tooltip("Talking over the NPC stops it (barge-in).")]
        [SerializeField] private bool interruptWhenTalking = true;

        [Header("Events")]
        public UnityEvent onOpened = new UnityEvent();
        [Tooltip("What the player said (text, final).")]
        public TranscriptEvent onUserTranscript = new TranscriptEvent();
        [Tooltip("Reply chunks as they stream.")]
        public TextEvent onBotText = new TextEvent();
        [Tooltip("The whole reply of a turn.")]
        public TextEvent onBotReply = new TextEvent();
        [Tooltip("Once per action: name, target (may be empty).")]
        public ActionEvent onAction = new ActionEvent();
        [Tooltip("Emotion name and scale 1..3.")]
        public EmotionEvent onEmotion = new EmotionEvent();
        [Tooltip("Narrative design section id.")]
        public TextEvent onNarrativeSection = new TextEvent();
        public UnityEvent onStartedSpeaking = new UnityEvent();
        public UnityEvent onStoppedSpeaking = new UnityEvent();
        [Tooltip("Turn id, interrupted.")]
        public TurnEvent onTurnCompleted = new TurnEvent();
        [Tooltip("Error code, message.")]
        public ErrorEvent onError = new ErrorEvent();

        private NpcSession _session;
        private AudioSource _source;
        // Read by the audio thread; written on the main thread when the audio configuration changes.
        private volatile int _outputRate;
        private volatile int _dspQueueFrames;
        private volatile float[] _scratch = new float[0];
        private volatile float _volume;
        private AudioClip _mic;
#if !UNITY_WEBGL
        private string _micDevice;
        private int _micPos;
        private float[] _micBlock;
#endif
        private bool _speaking;
        private bool _resumeRetried;
        private bool _started;

        /// <summary>The conversation (null when closed). Subscribe to its C# events for every message type.</summary>
        public NpcSession Session { get { return _session; } }
        public bool IsOpen { get { return _session != null && _session.State == SessionState.Open; } }
        /// <summary>Recording push-to-talk speech.</summary>
        public bool IsTalking { get { return _mic != null; } }
        /// <summary>The bot's voice is playing (or queued).</summary>
        public bool IsSpeaking
        {
            get { return _speaking || (_session != null && _session.Audio != null && _session.Audio.AvailableFrames > 0); }
        }

        /// <summary>"visemes" (15 weights) or "arkit" (61), from the frames received; null before any.</summary>
        public string LipSyncFormat { get { return _session != null ? _session.LipSync.Format : null; } }
        public int LipSyncWidth { get { return _session != null ? _session.LipSync.Width : 0; } }

        private string PrefsKey { get { return "convai-bridge/" + characterId + "/" + Label; } }
        private string Label { get { return string.IsNullOrEmpty(label) ? name : label; } }

        /// <summary>The output device's rate that playback is resampled to (changes with the device).</summary>
        public int OutputSampleRate { get { return _outputRate; } }

        private void Awake()
        {
            _source = GetComponent<AudioSource>();
            ReadAudioSettings();
            _volume = volume;

            // A looping clip of 1.0 carries the voice: OnAudioFilterRead multiplies the bot's voice in.
            var ones = new float[_outputRate / 10];
            for (int i = 0; i < ones.Length; i++) ones[i] = 1f;
            var clip = AudioClip.Create("convai-bridge voice", ones.Length, 1, _outputRate, false);
            clip.SetData(ones, 0);
            _source.clip = clip;
            _source.loop = true;
            _source.playOnAwake = false;
            // With a spatializer plugin (HRTF: Steam Audio, Oculus, Resonance) the spatializer must see the
            // voice, not the constant carrier: run it after this component's filter.
            _source.spatializePostEffects = true;
            if (!ConvaiPlatform.HasStreamedPlayback)
                Debug.LogWarning("[convai-bridge] " + name + ": " + ConvaiPlatform.Limitation);
        }

        /// <summary>The device's rate and DSP queue; the main thread calls it (Awake, configuration changes).</summary>
        private void ReadAudioSettings()
        {
            int rate = AudioSettings.outputSampleRate;
            int bufferLength, numBuffers;
            AudioSettings.GetDSPBufferSize(out bufferLength, out numBuffers);
            // Whatever OnAudioFilterRead fills now is heard after every buffer queued ahead of the device.
            _dspQueueFrames = Math.Max(1, bufferLength) * Math.Max(1, numBuffers);
            // Room for any DSP buffer (frames x speaker channels): the audio thread never allocates.
            int need = Math.Max(16384, bufferLength * 8);
            if (_scratch.Length < need) _scratch = new float[need];
            _outputRate = rate < 8000 ? 48000 : rate;
        }

        /// <summary>
        /// AudioSettings.OnAudioConfigurationChanged: a device change (headset plugged in) or Reset. Unity
        /// stops every AudioSource then; the voice is resampled to the new rate and the carrier restarted.
        /// </summary>
        private void OnAudioConfigurationChanged(bool deviceWasChanged)
        {
            ReadAudioSettings();
            if (_started && isActiveAndEnabled && _source != null && !_source.isPlaying) _source.Play();
        }

        private void OnValidate() { _volume = volume; }

        private void Start()
        {
            _started = true;
            _source.Play();
            if (openOnStart) Open();
        }

        private void OnEnable()
        {
            AudioSettings.OnAudioConfigurationChanged += OnAudioConfigurationChanged;
            if (_started) ReadAudioSettings(); // the device may have changed while disabled
            if (_started && openOnStart && _session == null) Open();
            if (_started && !_source.isPlaying) _source.Play();
        }

        private void OnDisable()
        {
            AudioSettings.OnAudioConfigurationChanged -= OnAudioConfigurationChanged;
            StopTalking(false);
            Close();
            // The carrier is a constant 1.0: left playing with no filter it would be heard as a click/DC.
            if (_source != null) _source.Stop();
        }

        /// <summary>Open the conversation (Start does it when openOnStart is set).</summary>
        public void Open()
        {
            if (_session != null) return;
            var b = bridge != null ? bridge : ConvaiBridgeClient.Instance;
            if (b == null || b.Client == null)
            {
                string why = !ConvaiPlatform.CanReachDaemon ? ConvaiPlatform.Limitation : "no enabled ConvaiBridgeClient in the scene";
                Debug.LogError("[convai-bridge] " + name + ": " + why);
                return;
            }
            string saved = rememberConversation ? PlayerPrefs.GetString(PrefsKey, "") : "";
            var request = new SessionOpenMessage
            {
                CharacterId = characterId,
                Backend = backend,
                Label = Label,
                CharacterSessionId = string.IsNullOrEmpty(saved) ? null : saved,
                Audio = new AudioFormat { SampleRate = _outputRate, Channels = 1, FrameMs = 20 },
                Voice = voice,
            };
            if (lipSync == LipSyncMode.Visemes)
                request.Lipsync = new LipSync { Provider = WireEnums.LipsyncProvider.Visemes };
            else if (lipSync == LipSyncMode.ArkitBlendshapes)
                request.Lipsync = new LipSync { Provider = WireEnums.LipsyncProvider.Blendshapes, Format = WireEnums.BlendshapeFormat.Arkit, Fps = 60 };
            if (actions.Count > 0 || sceneObjects.Count > 0)
            {
                var objects = new List<SceneObject>();
                foreach (var o in sceneObjects)
                    objects.Add(new SceneObject { Name = o.name, Description = string.IsNullOrEmpty(o.description) ? null : o.description });
                request.ActionConfig = new ActionConfig { Actions = new List<string>(actions), Objects = objects };
            }
            _session = b.Client.OpenSession(request);
            Wire(_session, !string.IsNullOrEmpty(saved));
        }

        private void Wire(NpcSession s, bool resuming)
        {
            s.Opened += m => { Remember(s); onOpened.Invoke(); };
            s.StateChanged += m => Remember(s);
            s.UserTranscript += m => onUserTranscript.Invoke(m.Text, m.Final);
            s.BotText += m => onBotText.Invoke(m.Text);
            s.BotReply += m => onBotReply.Invoke(m.Text);
            s.Actions += m => { foreach (var a in m.Actions) onAction.Invoke(a.Name, a.Target ?? ""); };
            s.Emotion += m => onEmotion.Invoke(m.Name, (int)m.Scale);
            s.Narrative += m => onNarrativeSection.Invoke(m.SectionId);
            s.BotStartedSpeaking += m => { _speaking = true; onStartedSpeaking.Invoke(); };
            s.BotStoppedSpeaking += m => { _speaking = false; onStoppedSpeaking.Invoke(); };
            s.TurnCompleted += m =>
            {
                if (m.Interrupted) _speaking = false;
                onTurnCompleted.Invoke((int)m.Turn, m.Interrupted);
            };
            s.Closed += m => { if (s.State == SessionState.Closed && _session == s) _session = null; };
            s.Error += e =>
            {
                onError.Invoke(e.Code, e.Message);
                // A remembered conversation Convai no longer has: forget it and start a new one, once.
                if (resuming && !_resumeRetried && e.Code == ErrorCodes.ConvaiNotFound && s.State == SessionState.Closed)
                {
                    _resumeRetried = true;
                    PlayerPrefs.DeleteKey(PrefsKey);
                    if (_session == s) _session = null;
                    Open();
                }
            };
        }

        private void Remember(NpcSession s)
        {
            if (!rememberConversation || string.IsNullOrEmpty(s.CharacterSessionId)) return;
            if (PlayerPrefs.GetString(PrefsKey, "") == s.CharacterSessionId) return;
            PlayerPrefs.SetString(PrefsKey, s.CharacterSessionId);
        }

        /// <summary>Close the conversation (OnDisable does it). The character keeps the memory if remembered.</summary>
        public void Close()
        {
            if (_session == null) return;
            _session.Close();
            _session = null;
        }

        /// <summary>Forget the remembered conversation: the next Open starts a fresh one.</summary>
        public void ForgetConversation() { PlayerPrefs.DeleteKey(PrefsKey); }

        public void SendText(string text)
        {
            if (_session == null || string.IsNullOrEmpty(text)) return;
            if (interruptWhenTalking && IsSpeaking) Interrupt();
            _session.SendText(text, ReportFailure);
        }

        public void Trigger(string triggerName, string message = null)
        {
            if (_session != null) _session.Trigger(triggerName, message, ReportFailure);
        }

        public void UpdateContext(string text, string mode = WireEnums.ContextMode.Append)
        {
            if (_session != null) _session.UpdateContext(text, mode, null, ReportFailure);
        }

        /// <summary>Stop the NPC mid-sentence: local audio and lip sync stop at once.</summary>
        public void Interrupt()
        {
            if (_session == null) return;
            _speaking = false;
            _session.Interrupt(ReportFailure);
        }

        private void ReportFailure(Message reply)
        {
            var e = reply as ErrorMessage;
            if (e != null) onError.Invoke(e.Code, e.Message);
        }

        // -- push to talk ------------------------------------------------------------------------

        public void StartTalking()
        {
#if UNITY_WEBGL
            onError.Invoke(UnsupportedPlatform, "push-to-talk: " + ConvaiPlatform.Limitation);
#else
            if (_mic != null || _session == null) return;
            if (Microphone.devices.Length == 0)
            {
                onError.Invoke("no_microphone", "no microphone found");
                return;
            }
            if (interruptWhenTalking && IsSpeaking) Interrupt();
            _micDevice = string.IsNullOrEmpty(microphoneDevice) ? null : microphoneDevice;
            int min, max, rate = microphoneRate;
            Microphone.GetDeviceCaps(_micDevice, out min, out max);
            if (min != 0 || max != 0) rate = Mathf.Clamp(rate, min, max);
            _mic = Microphone.Start(_micDevice, true, 1, rate);
            if (_mic == null)
            {
                onError.Invoke("no_microphone", "Microphone.Start failed (permission?)");
                return;
            }
            _micPos = 0;
            _micBlock = new float[_mic.frequency / 50 * _mic.channels]; // 20 ms blocks
#endif
        }

        /// <summary>onError code when a feature does not exist on this platform (see ConvaiPlatform).</summary>
        public const string UnsupportedPlatform = "unsupported_platform";

        /// <summary>Release push-to-talk: send the rest of the speech and end the utterance.</summary>
        public void StopTalking() { StopTalking(true); }

        private void StopTalking(bool endUtterance)
        {
            if (_mic == null) return;
#if !UNITY_WEBGL
            if (_session != null) PumpMicrophone(true);
            Microphone.End(_micDevice);
#endif
            _mic = null;
            if (endUtterance && _session != null) _session.EndOfUtterance(ReportFailure);
        }

        private void PumpMicrophone(bool flush)
        {
#if !UNITY_WEBGL
            int length = _mic.samples;
            int pos = Microphone.GetPosition(_micDevice);
            int available = (pos - _micPos + length) % length;
            int block = _micBlock.Length / _mic.channels;
            while (available >= block)
            {
                _mic.GetData(_micBlock, _micPos); // wraps around the looping clip's end
                _session.SendAudio(_micBlock, 0, block, _mic.frequency, _mic.channels);
                _micPos = (_micPos + block) % length;
                available -= block;
            }
            if (flush && available > 0)
            {
                var tail = new float[available * _mic.channels];
                _mic.GetData(tail, _micPos);
                _session.SendAudio(tail, 0, available, _mic.frequency, _mic.channels);
                _micPos = (_micPos + available) % length;
            }
#endif
        }

        private void Update()
        {
#if ENABLE_LEGACY_INPUT_MANAGER
            if (talkKey != KeyCode.None)
            {
                if (Input.GetKeyDown(talkKey)) StartTalking();
                if (Input.GetKeyUp(talkKey)) StopTalking();
            }
#endif
#if CONVAI_INPUT_SYSTEM
            var action = talkAction != null ? talkAction.action : null;
            if (action != null)
            {
                if (!action.enabled) action.Enable();
                if (action.WasPressedThisFrame()) StartTalking();
                if (action.WasReleasedThisFrame()) StopTalking();
            }
#endif
            if (_mic != null && _session != null) PumpMicrophone(false);
        }

        // -- playback (audio thread) ---------------------------------------------------------------

        private void OnAudioFilterRead(float[] data, int channels)
        {
            var session = _session;
            var ring = session != null ? session.Audio : null;
            var scratch = _scratch;
            if (ring == null || data.Length > scratch.Length)
            {
                Array.Clear(data, 0, data.Length);
                return;
            }
            // The session's rate was the device's at open; a new device (or a resumed session) may differ.
            ring.Read(scratch, 0, data.Length / channels, channels, _volume, _outputRate);
            for (int i = 0; i < data.Length; i++) data[i] *= scratch[i];
        }

        /// <summary>
        /// How far behind the last pulled block the speaker is, in frames of the session's audio (what lip-sync
        /// offsets count): the whole DSP queue (buffer length x number of buffers) at the device's rate.
        /// </summary>
        public int LipSyncLatencyFrames
        {
            get { var s = _session; var ring = s != null ? s.Audio : null; return ring != null ? LatencyFrames(ring.SampleRate) : 0; }
        }

        private int LatencyFrames(int sessionRate)
        {
            return (int)((long)_dspQueueFrames * sessionRate / Math.Max(1, _outputRate));
        }

        /// <summary>
        /// Lip-sync weights at the sample being heard now (15 visemes or 61 ARKit values, see
        /// LipSyncFormat). False (weights zeroed) when the NPC is silent.
        /// </summary>
        public bool TryGetLipSync(float[] weights)
        {
            var s = _session;
            var ring = s != null ? s.Audio : null;
            if (ring == null)
            {
                Array.Clear(weights, 0, weights.Length);
                return false;
            }
            return s.SampleLipSync(weights, LatencyFrames(ring.SampleRate));
        }
    }
}
