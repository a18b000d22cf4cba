using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using ConvaiBridge.Audio;
using ConvaiBridge.Protocol;

namespace ConvaiBridge.Client
{
    public enum SessionState
    {
        /// <summary>Waiting for the connection (first open, or after a reconnect) to send session_open.</summary>
        Connecting,
        /// <summary>session_open sent; the ack gives the sid, session_opened says the backend is ready.</summary>
        Opening,
        Open,
        Closing,
        Closed,
    }

    /// <summary>
    /// One NPC conversation on a BridgeClient. Survives daemon restarts: after a reconnect it is opened
    /// again with the character_session_id the daemon gave it, so the character keeps its memory.
    ///
    /// Threads: events fire on the thread that calls BridgeClient.Poll() (the main thread). Requests may
    /// be made from any thread. Audio and lip-sync data go straight from the network thread into
    /// Audio / LipSync, which the audio thread and the main thread read.
    /// </summary>
    public sealed class NpcSession
    {
        private readonly BridgeClient _client;
        private readonly SessionOpenMessage _template;
        private volatile SessionState _state = SessionState.Connecting;
        private volatile string _sid;
        private volatile AudioRingBuffer _audio;
        private long _lastTurn;
        private long _dropThroughTurn;
        private long _audioInSeq;
        private long _lastAudioOutSeq = -1;

        /// <summary>The client's name for this NPC (session_open.label).</summary>
        public readonly string Label;
        public readonly string CharacterId;
        public readonly LipSyncTrack LipSync = new LipSyncTrack();

        internal NpcSession(BridgeClient client, SessionOpenMessage template)
        {
            _client = client;
            _template = template;
            Label = template.Label;
            CharacterId = template.CharacterId;
            CharacterSessionId = template.CharacterSessionId;
        }

        // -- state (written by the network thread) ----------------------------------------------

        public SessionState State { get { return _state; } internal set { _state = value; } }
        /// <summary>The daemon's session id; changes when the session is reopened after a reconnect.</summary>
        public string Sid { get { return _sid; } internal set { _sid = value; } }
        /// <summary>Convai's conversation id; kept across reconnects to resume the conversation.</summary>
        public string CharacterSessionId { get; internal set; }
        public string Backend { get; internal set; }
        public AudioFormat AudioFormat { get; internal set; }
        public List<string> Capabilities { get; internal set; }
        /// <summary>True when the last session_opened resumed an earlier conversation.</summary>
        public bool Resumed { get; internal set; }
        /// <summary>How many times session_opened arrived (1 + reopenings).</summary>
        public int OpenedCount { get; internal set; }
        /// <summary>Bot audio waiting to be played; null until session_opened gives the format.</summary>
        public AudioRingBuffer Audio { get { return _audio; } }
        /// <summary>Highest turn id seen (acks, turn_started, audio).</summary>
        public long LastTurn { get { return Interlocked.Read(ref _lastTurn); } }
        private long _audioOutFrames, _audioOutSamples, _audioOutDropped, _audioOutSeqGaps;
        /// <summary>audio_out frames and samples (per channel) received into Audio.</summary>
        public long AudioOutFrames { get { return Interlocked.Read(ref _audioOutFrames); } }
        public long AudioOutSamples { get { return Interlocked.Read(ref _audioOutSamples); } }
        /// <summary>Samples of late audio of interrupted turns that were ignored.</summary>
        public long AudioOutDropped { get { return Interlocked.Read(ref _audioOutDropped); } }
        /// <summary>Jumps in audio_out seq (frames lost between daemon and client).</summary>
        public long AudioOutSeqGaps { get { return Interlocked.Read(ref _audioOutSeqGaps); } }

        internal SessionOpenMessage Template { get { return _template; } }
        internal bool WantsOpen { get { return _state != SessionState.Closing && _state != SessionState.Closed; } }

        // -- events (main thread) ----------------------------------------------------------------

        /// <summary>Every message for this session, typed (UnknownMessage for newer event types), before the typed event.</summary>
        public event Action<Message> MessageReceived;
        public event Action<SessionOpenedMessage> Opened;
        public event Action<SessionStateMessage> StateChanged;
        public event Action<SessionClosedMessage> Closed;
        public event Action<TurnStartedMessage> TurnStarted;
        public event Action<UserTranscriptMessage> UserTranscript;
        public event Action<BotTextMessage> BotText;
        public event Action<BotReplyMessage> BotReply;
        public event Action<BotStartedSpeakingMessage> BotStartedSpeaking;
        public event Action<BotStoppedSpeakingMessage> BotStoppedSpeaking;
        public event Action<AudioOutMessage> AudioOut;
        public event Action<ActionsMessage> Actions;
        public event Action<EmotionMessage> Emotion;
        public event Action<VisemesMessage> Visemes;
        public event Action<BlendshapesMessage> Blendshapes;
        public event Action<LipsyncCancelMessage> LipsyncCancel;
        public event Action<NarrativeMessage> Narrative;
        public event Action<ModerationMessage> Moderation;
        public event Action<NoResponseMessage> NoResponse;
        public event Action<TurnCompletedMessage> TurnCompleted;
        public event Action<IdleWarningMessage> IdleWarning;
        public event Action<MetricsMessage> Metrics;
        public event Action<ServerEventMessage> ServerEvent;
        /// <summary>An event type this client does not know (a newer daemon); never an error.</summary>
        public event Action<UnknownMessage> UnknownEvent;
        /// <summary>Asynchronous errors of this session (backend failures, audio overflow) and failed opens.</summary>
        public event Action<ErrorMessage> Error;

        // -- requests --------------------------------------------------------------------------

        /// <summary>Send any session request; onReply gets the AckMessage or ErrorMessage on the main thread.</summary>
        public void Request(Message request, Action<Message> onReply = null)
        {
            _client.Submit(request, this, onReply, null);
        }

        public Task<Message> RequestAsync(Message request)
        {
            var tcs = new TaskCompletionSource<Message>();
            _client.Submit(request, this, null, tcs);
            return tcs.Task;
        }

        public void SendText(string text, Action<Message> onReply = null)
        {
            Request(new TextMessage { Text = text }, onReply);
        }

        public Task<Message> SendTextAsync(string text) { return RequestAsync(new TextMessage { Text = text }); }

        /// <summary>
        /// Stream microphone audio (int16 interleaved). Any rate 8–192 kHz, mono or stereo. No reply;
        /// errors (e.g. audio_overflow) arrive on Error. Safe from the microphone thread.
        /// </summary>
        public void SendAudio(short[] samples, int offset, int frames, int sampleRate, int channels)
        {
            if (frames <= 0) return;
            var pcm = new byte[frames * channels * 2];
            Buffer.BlockCopy(samples, offset * 2, pcm, 0, pcm.Length);
            if (!BitConverter.IsLittleEndian) SwapPairs(pcm);
            SendPcm(pcm, frames, sampleRate, channels);
        }

        /// <summary>Stream microphone audio given as floats in [-1, 1] (Unity's AudioClip.GetData).</summary>
        public void SendAudio(float[] samples, int offset, int frames, int sampleRate, int channels)
        {
            if (frames <= 0) return;
            int n = frames * channels;
            var pcm = new byte[n * 2];
            for (int i = 0; i < n; i++)
            {
                float f = samples[offset + i];
                int v = (int)Math.Round(f * 32767f);
                if (v > short.MaxValue) v = short.MaxValue;
                else if (v < short.MinValue) v = short.MinValue;
                pcm[2 * i] = (byte)v;
                pcm[2 * i + 1] = (byte)(v >> 8);
            }
            SendPcm(pcm, frames, sampleRate, channels);
        }

        private void SendPcm(byte[] pcm, int frames, int sampleRate, int channels)
        {
            var msg = new AudioInMessage
            {
                Seq = Interlocked.Increment(ref _audioInSeq) - 1,
                SampleRate = sampleRate,
                Channels = channels,
                Samples = frames,
                Payload = pcm,
            };
            _client.Submit(msg, this, null, null);
        }

        private static void SwapPairs(byte[] b)
        {
            for (int i = 0; i + 1 < b.Length; i += 2) { byte t = b[i]; b[i] = b[i + 1]; b[i + 1] = t; }
        }

        /// <summary>Push-to-talk released: the daemon answers the audio sent since the last one. Ack carries the turn.</summary>
        public void EndOfUtterance(Action<Message> onReply = null) { Request(new EndOfUtteranceMessage(), onReply); }

        public void Trigger(string name, string message = null, Action<Message> onReply = null)
        {
            Request(new TriggerMessage { Name = name, Message = message }, onReply);
        }

        public void UpdateContext(string text, string mode = null, string runLlm = null, Action<Message> onReply = null)
        {
            Request(new ContextUpdateMessage { Text = text, Mode = mode, RunLlm = runLlm }, onReply);
        }

        public void UpdateDynamicInfo(string text, Action<Message> onReply = null)
        {
            Request(new DynamicInfoMessage { Info = new DynamicInfo { Text = text } }, onReply);
        }

        public void UpdateScene(List<SceneObject> scene, Action<Message> onReply = null)
        {
            Request(new SceneUpdateMessage { Scene = scene }, onReply);
        }

        public void SetTemplateKeys(MsgPack.OrderedMap<string> keys, Action<Message> onReply = null)
        {
            Request(new TemplateKeysMessage { Keys = keys }, onReply);
        }

        public void SetTts(bool enabled, Action<Message> onReply = null) { Request(new TtsToggleMessage { Enabled = enabled }, onReply); }

        public void SetMicMuted(bool muted, Action<Message> onReply = null) { Request(new SttToggleMessage { Muted = muted }, onReply); }

        /// <summary>
        /// Stop the bot now: queued audio and lip sync of the current turn are dropped locally at once
        /// (no wait for the daemon), late audio of that turn is ignored, and the daemon is told.
        /// </summary>
        public void Interrupt(Action<Message> onReply = null)
        {
            long turn = LastTurn;
            DropThroughTurn(turn);
            Request(new InterruptMessage(), onReply);
        }

        /// <summary>Close the conversation; it will not be reopened on reconnect.</summary>
        public void Close(Action<Message> onReply = null)
        {
            if (_state == SessionState.Closed) return;
            _state = SessionState.Closing;
            _client.CloseSession(this, onReply);
        }

        /// <summary>The lip-sync weights at the audio playback clock (false when nothing to show).</summary>
        public bool SampleLipSync(float[] dest, int latencyFrames = 0, bool interpolate = true)
        {
            var audio = _audio;
            if (audio == null) { Array.Clear(dest, 0, dest.Length); return false; }
            var pos = audio.GetPlaybackPosition(latencyFrames);
            if (!pos.Playing) { Array.Clear(dest, 0, dest.Length); return false; }
            return LipSync.Sample(pos.Turn, pos.Offset, dest, interpolate);
        }

        // -- network thread ----------------------------------------------------------------------

        internal static void Max(ref long field, long value)
        {
            long seen = Interlocked.Read(ref field);
            while (value > seen)
            {
                long prev = Interlocked.CompareExchange(ref field, value, seen);
                if (prev == seen) return;
                seen = prev;
            }
        }

        internal void NoteTurn(long turn) { Max(ref _lastTurn, turn); }

        private void DropThroughTurn(long turn)
        {
            Max(ref _dropThroughTurn, turn);
            var audio = _audio;
            if (audio != null) audio.ClearThroughTurn(turn);
            LipSync.DropThroughTurn(turn);
        }

        /// <summary>A new sid: turn ids restart, so forget the old turn bookkeeping and stale audio.</summary>
        internal void ResetForNewSid(string sid)
        {
            Sid = sid;
            Interlocked.Exchange(ref _lastTurn, 0);
            Interlocked.Exchange(ref _dropThroughTurn, 0);
            _lastAudioOutSeq = -1;
            var audio = _audio;
            if (audio != null) audio.Clear();
            LipSync.Clear();
        }

        internal void HandleOnNetworkThread(Message m, int bufferMs)
        {
            switch (m.Type)
            {
                case SessionOpenedMessage.TypeName:
                {
                    var o = (SessionOpenedMessage)m;
                    if (o.CharacterSessionId != null) CharacterSessionId = o.CharacterSessionId;
                    Backend = o.Backend;
                    Capabilities = o.Capabilities;
                    Resumed = o.Resumed;
                    AudioFormat = o.Audio;
                    OpenedCount++;
                    var current = _audio;
                    if (current == null || current.SampleRate != o.Audio.SampleRate || current.Channels != o.Audio.Channels)
                        _audio = new AudioRingBuffer((int)o.Audio.SampleRate, (int)o.Audio.Channels, bufferMs);
                    _state = SessionState.Open;
                    break;
                }
                case SessionStateMessage.TypeName:
                {
                    // interaction / stream backends learn the conversation id on the first turn.
                    var st = (SessionStateMessage)m;
                    if (st.CharacterSessionId != null) CharacterSessionId = st.CharacterSessionId;
                    break;
                }
                case TurnStartedMessage.TypeName:
                    NoteTurn(((TurnStartedMessage)m).Turn);
                    break;
                case AudioOutMessage.TypeName:
                {
                    var a = (AudioOutMessage)m;
                    if (_lastAudioOutSeq >= 0 && a.Seq != _lastAudioOutSeq + 1) Interlocked.Increment(ref _audioOutSeqGaps);
                    _lastAudioOutSeq = a.Seq;
                    NoteTurn(a.Turn);
                    if (a.Turn <= Interlocked.Read(ref _dropThroughTurn)) { Interlocked.Add(ref _audioOutDropped, a.Samples); break; }
                    var audio = _audio;
                    if (audio == null || audio.SampleRate != a.SampleRate || audio.Channels != a.Channels)
                        _audio = audio = new AudioRingBuffer((int)a.SampleRate, (int)a.Channels, bufferMs);
                    audio.WritePcm16(a.Payload, 0, (int)a.Samples, a.Turn, a.Offset);
                    Interlocked.Increment(ref _audioOutFrames);
                    Interlocked.Add(ref _audioOutSamples, a.Samples);
                    break;
                }
                case VisemesMessage.TypeName:
                {
                    var v = (VisemesMessage)m;
                    if (v.Turn > Interlocked.Read(ref _dropThroughTurn)) LipSync.AddVisemes(v.Turn, v.Offset, v.Weights);
                    break;
                }
                case BlendshapesMessage.TypeName:
                {
                    var b = (BlendshapesMessage)m;
                    int rate = AudioFormat != null ? (int)AudioFormat.SampleRate : 48000;
                    if (b.Turn > Interlocked.Read(ref _dropThroughTurn))
                        LipSync.AddBlendshapes(b.Turn, b.Offset, (int)b.Fps, (int)b.Width, (int)b.Count, b.Payload, rate, b.Format);
                    break;
                }
                case LipsyncCancelMessage.TypeName:
                {
                    var c = (LipsyncCancelMessage)m;
                    LipSync.Cancel(c.Turn, c.ValidThrough);
                    break;
                }
                case TurnCompletedMessage.TypeName:
                {
                    var t = (TurnCompletedMessage)m;
                    if (t.Interrupted) DropThroughTurn(t.Turn);
                    break;
                }
                case SessionClosedMessage.TypeName:
                {
                    // A daemon shutting down, or one that took us for gone, is not the end of the
                    // conversation: keep the session so the next connection reopens (resumes) it.
                    string reason = ((SessionClosedMessage)m).Reason;
                    bool reopen = _state != SessionState.Closing
                                  && (reason == WireEnums.CloseReason.Shutdown || reason == WireEnums.CloseReason.ClientGone);
                    _state = reopen ? SessionState.Connecting : SessionState.Closed;
                    break;
                }
            }
        }

        internal void Dispatch(Message m)
        {
            var all = MessageReceived;
            if (all != null) all(m);
            switch (m.Type)
            {
                case SessionOpenedMessage.TypeName: Raise(Opened, (SessionOpenedMessage)m); break;
                case SessionStateMessage.TypeName: Raise(StateChanged, (SessionStateMessage)m); break;
                case SessionClosedMessage.TypeName: Raise(Closed, (SessionClosedMessage)m); break;
                case TurnStartedMessage.TypeName: Raise(TurnStarted, (TurnStartedMessage)m); break;
                case UserTranscriptMessage.TypeName: Raise(UserTranscript, (UserTranscriptMessage)m); break;
                case BotTextMessage.TypeName: Raise(BotText, (BotTextMessage)m); break;
                case BotReplyMessage.TypeName: Raise(BotReply, (BotReplyMessage)m); break;
                case BotStartedSpeakingMessage.TypeName: Raise(BotStartedSpeaking, (BotStartedSpeakingMessage)m); break;
                case BotStoppedSpeakingMessage.TypeName: Raise(BotStoppedSpeaking, (BotStoppedSpeakingMessage)m); break;
                case AudioOutMessage.TypeName: Raise(AudioOut, (AudioOutMessage)m); break;
                case ActionsMessage.TypeName: Raise(Actions, (ActionsMessage)m); break;
                case EmotionMessage.TypeName: Raise(Emotion, (EmotionMessage)m); break;
                case VisemesMessage.TypeName: Raise(Visemes, (VisemesMessage)m); break;
                case BlendshapesMessage.TypeName: Raise(Blendshapes, (BlendshapesMessage)m); break;
                case LipsyncCancelMessage.TypeName: Raise(LipsyncCancel, (LipsyncCancelMessage)m); break;
                case NarrativeMessage.TypeName: Raise(Narrative, (NarrativeMessage)m); break;
                case ModerationMessage.TypeName: Raise(Moderation, (ModerationMessage)m); break;
                case NoResponseMessage.TypeName: Raise(NoResponse, (NoResponseMessage)m); break;
                case TurnCompletedMessage.TypeName: Raise(TurnCompleted, (TurnCompletedMessage)m); break;
                case IdleWarningMessage.TypeName: Raise(IdleWarning, (IdleWarningMessage)m); break;
                case MetricsMessage.TypeName: Raise(Metrics, (MetricsMessage)m); break;
                case ServerEventMessage.TypeName: Raise(ServerEvent, (ServerEventMessage)m); break;
                case ErrorMessage.TypeName: Raise(Error, (ErrorMessage)m); break;
                default:
                    var unknown = m as UnknownMessage;
                    if (unknown != null) Raise(UnknownEvent, unknown);
                    break;
            }
        }

        internal void RaiseError(ErrorMessage error) { Raise(Error, error); }

        private static void Raise<T>(Action<T> handler, T value)
        {
            if (handler != null) handler(value);
        }

        public override string ToString()
        {
            return "NpcSession(" + (Label ?? CharacterId) + ", " + _state + (_sid != null ? ", " + _sid : "") + ")";
        }
    }
}
