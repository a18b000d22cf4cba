using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using ConvaiBridge.Protocol;
using ConvaiBridge.Transport;

namespace ConvaiBridge.Client
{
    public enum ConnectionState
    {
        Stopped,
        /// <summary>Connecting or handshaking (also while reconnecting after a loss).</summary>
        Connecting,
        Ready,
        /// <summary>Refused for good (version mismatch, wrong token, no libzmq); see LastError.</summary>
        Failed,
    }

    /// <summary>
    /// The connection to the convai-bridge daemon: one DEALER socket carrying any number of NPC sessions.
    ///
    /// A network thread owns the socket: it handshakes (hello → welcome), answers and sends heartbeats,
    /// matches replies to requests, routes events to sessions, feeds audio and lip sync straight into
    /// each session's buffers, and reconnects when the daemon goes quiet or restarts (a new instance id
    /// means the sessions are reopened with their character_session_id). Everything meant for game code
    /// is posted to a queue that Poll() runs on the caller's thread, one try/catch per message.
    /// </summary>
    public sealed class BridgeClient : IDisposable
    {
        public const string Version = "0.1.0";

        private sealed class Pending
        {
            public long Id;
            public string Type;
            public NpcSession Session;
            public Action<Message> Callback;
            public TaskCompletionSource<Message> Tcs;
            public Action<Message> OnNetworkThread;
            public long Deadline;
        }

        private sealed class Outgoing
        {
            public Message Message;
            public NpcSession Session;
            public Pending Pending;
        }

        private readonly BridgeClientOptions _options;
        private readonly MainThreadQueue _main = new MainThreadQueue();
        private readonly ConcurrentQueue<Outgoing> _outgoing = new ConcurrentQueue<Outgoing>();
        private readonly ConcurrentQueue<Action> _networkActions = new ConcurrentQueue<Action>();
        private readonly Dictionary<long, Pending> _pending = new Dictionary<long, Pending>();
        private readonly ConcurrentDictionary<string, NpcSession> _bySid = new ConcurrentDictionary<string, NpcSession>();
        private readonly List<NpcSession> _sessions = new List<NpcSession>();
        private readonly Codec _codec = new Codec { LenientDaemonEnums = true };
        private readonly List<byte[]> _rx = new List<byte[]>();
        private readonly List<byte[]> _tx = new List<byte[]>();

        private Thread _thread;
        private volatile bool _stop;
        private volatile ConnectionState _state = ConnectionState.Stopped;
        private IBridgeTransport _transport;
        private bool _socketOpen;
        private long _nextId;
        private long _helloId = -1;
        private long _nextConnectAt;
        private long _handshakeDeadline;
        private long _lastSend, _lastRecv, _lastTimerScan, _lastFileCheck;
        private int _backoffMs;
        private int _unauthorizedStreak;
        private int _heartbeatMs, _clientTimeoutMs;
        private string _endpoint, _token;

        public BridgeClient(BridgeClientOptions options)
        {
            if (options == null) throw new ArgumentNullException("options");
            _options = options;
            _heartbeatMs = options.HeartbeatMs;
            _clientTimeoutMs = options.ClientTimeoutMs;
            _backoffMs = options.ReconnectMinDelayMs;
            _main.ItemFailed += e =>
            {
                // The full exception goes to CallbackException (Unity: Debug.LogException); one line here.
                Log("a handler threw " + e.GetType().Name + ": " + e.Message);
                var h = CallbackException;
                if (h != null) h(e);
            };
        }

        // -- public state ------------------------------------------------------------------------

        public ConnectionState State { get { return _state; } }
        /// <summary>The last welcome (limits, capabilities, instance id); null before the first.</summary>
        public WelcomeMessage Welcome { get; private set; }
        public string InstanceId { get { var w = Welcome; return w == null ? null : w.InstanceId; } }
        public string Endpoint { get { return _endpoint; } }
        public string TransportName { get; private set; }
        /// <summary>The error that put the client in Failed (or the last connection-level error).</summary>
        public ErrorMessage LastError { get; private set; }
        /// <summary>Welcomes received (1 after the first connect; more after reconnects).</summary>
        public int ConnectCount { get; private set; }
        /// <summary>Messages from the daemon that failed to decode (reported, never fatal).</summary>
        public int MalformedCount { get; private set; }
        /// <summary>Heartbeats: pings the daemon sent us (each answered with a pong) and pings we sent.</summary>
        public int PingsReceived { get; private set; }
        public int PingsSent { get; private set; }
        /// <summary>Work waiting for Poll().</summary>
        public int QueuedCallbacks { get { return _main.Count; } }

        public IList<NpcSession> Sessions
        {
            get { lock (_sessions) return _sessions.ToArray(); }
        }

        // -- events (raised from Poll) -----------------------------------------------------------

        /// <summary>Handshake done. The bool is true when the daemon restarted since the previous welcome.</summary>
        public event Action<WelcomeMessage, bool> Connected;
        /// <summary>The connection was lost; the client is reconnecting (the string says why).</summary>
        public event Action<string> Disconnected;
        /// <summary>Connection-level errors: handshake refusals, errors without a session, local failures.</summary>
        public event Action<ErrorMessage> Error;
        /// <summary>A daemon message that could not be decoded (the code says why); it was skipped.</summary>
        public event Action<ProtocolException> MalformedMessage;
        /// <summary>Events whose sid belongs to no current session (e.g. late events of a closed session).</summary>
        public event Action<Message> UnroutedMessage;
        /// <summary>A game handler threw while Poll() ran it; the other handlers still ran.</summary>
        public event Action<Exception> CallbackException;

        // -- lifecycle -----------------------------------------------------------------------------

        /// <summary>Start the network thread; it connects and keeps reconnecting until Stop().</summary>
        public void Start()
        {
            if (_thread != null) throw new InvalidOperationException("already started");
            _stop = false;
            _state = ConnectionState.Connecting;
            _thread = new Thread(Run) { IsBackground = true, Name = "convai-bridge network" };
            _thread.Start();
        }

        /// <summary>
        /// Stop: close open sessions politely (bounded by GracefulCloseMs), close the socket with linger 0,
        /// and join the network thread for at most joinTimeoutMs. Never blocks longer than that, so it is
        /// safe from OnDisable / play-mode exit / domain reload. Returns false if the thread did not exit.
        /// </summary>
        public bool Stop(int joinTimeoutMs = 1000)
        {
            var t = _thread;
            if (t == null) return true;
            _stop = true;
            bool joined = t.Join(Math.Max(0, joinTimeoutMs));
            if (joined) _thread = null;
            else Log("network thread did not stop within " + joinTimeoutMs + " ms; abandoned (background thread)");
            _state = ConnectionState.Stopped;
            return joined;
        }

        public void Dispose() { Stop(); }

        /// <summary>Run queued events and callbacks on this thread (call from Update). Returns how many ran.</summary>
        public int Poll(int maxItems = int.MaxValue) { return _main.Drain(maxItems); }

        // -- sessions and requests ---------------------------------------------------------------

        /// <summary>
        /// Open a conversation. Returns at once; the session is opened when connected (session_opened →
        /// Opened event) and reopened after reconnects. The request object becomes the session's template.
        /// </summary>
        public NpcSession OpenSession(SessionOpenMessage request)
        {
            if (request == null) throw new ArgumentNullException("request");
            if (string.IsNullOrEmpty(request.CharacterId)) throw new ArgumentException("character_id is required");
            var session = new NpcSession(this, request);
            lock (_sessions) _sessions.Add(session);
            _networkActions.Enqueue(() => { if (_state == ConnectionState.Ready) SendOpen(session); });
            return session;
        }

        /// <summary>A request not tied to a session (most are; see NpcSession).</summary>
        public void Request(Message request, Action<Message> onReply = null) { Submit(request, null, onReply, null); }

        public Task<Message> RequestAsync(Message request)
        {
            var tcs = new TaskCompletionSource<Message>();
            Submit(request, null, null, tcs);
            return tcs.Task;
        }

        internal void Submit(Message message, NpcSession session, Action<Message> callback, TaskCompletionSource<Message> tcs)
        {
            if (message == null) throw new ArgumentNullException("message");
            Pending pending = null;
            if (message.Kind == MessageKind.Request)
                pending = new Pending { Type = message.Type, Session = session, Callback = callback, Tcs = tcs };
            if (_thread == null || _stop)
            {
                if (pending != null) Complete(pending, LocalError(ErrorCodes.NotReady, "the client is not started", true));
                return;
            }
            _outgoing.Enqueue(new Outgoing { Message = message, Session = session, Pending = pending });
        }

        internal void CloseSession(NpcSession session, Action<Message> callback)
        {
            _networkActions.Enqueue(() =>
            {
                string sid = session.Sid;
                if (_state != ConnectionState.Ready || sid == null)
                {
                    FinishClose(session);
                    if (callback != null) _main.Post(() => callback(LocalError("closed", "closed locally (not connected)", false)));
                    return;
                }
                var p = new Pending
                {
                    Type = SessionCloseMessage.TypeName, Session = session, Callback = callback,
                    OnNetworkThread = reply => FinishClose(session),
                };
                SendRequest(new SessionCloseMessage { Sid = sid }, p);
            });
        }

        private void FinishClose(NpcSession session)
        {
            session.State = SessionState.Closed;
            NpcSession removed;
            string sid = session.Sid;
            if (sid != null) _bySid.TryRemove(sid, out removed);
            lock (_sessions) _sessions.Remove(session);
        }

        // -- network thread ----------------------------------------------------------------------

        private static long Now() { return Stopwatch.GetTimestamp() * 1000 / Stopwatch.Frequency; }

        private void Log(string text)
        {
            var log = _options.Log;
            if (log == null) return;
            try { log("[convai-bridge] " + text); }
            catch (Exception) { /* logging must never take the network thread down */ }
        }

        private void Run()
        {
            try
            {
                var factory = _options.TransportFactory ?? (() => new LibZmqTransport());
                _transport = factory();
                TransportName = _transport.Name;
            }
            catch (Exception e)
            {
                FailHard(LocalError("transport_unavailable", "cannot create the ZeroMQ transport: " + e.Message, false));
                return;
            }
            try
            {
                _nextConnectAt = Now();
                while (!_stop)
                {
                    try { Step(); }
                    catch (Exception e) { Log("network loop error (continuing): " + e); Thread.Sleep(10); }
                }
                GracefulClose();
            }
            finally
            {
                try { _transport.Close(); _transport.Dispose(); }
                catch (Exception e) { Log("transport dispose: " + e.Message); }
                FailAllPending("closed", "the client stopped");
                _socketOpen = false;
            }
        }

        private void Step()
        {
            long now = Now();
            if (_state == ConnectionState.Connecting && !_socketOpen && now >= _nextConnectAt) Connect(now);

            Action action;
            while (_networkActions.TryDequeue(out action)) action();
            FlushOutgoing();

            int received = 0;
            if (_socketOpen)
            {
                while (received < 256 && _transport.TryReceive(_rx, received == 0 ? _options.PollIntervalMs : 0))
                {
                    received++;
                    _lastRecv = Now();
                    HandleIncoming(_rx);
                }
            }
            else
            {
                Thread.Sleep(_options.PollIntervalMs > 0 ? _options.PollIntervalMs : 1);
            }
            Timers(Now());
        }

        private void Connect(long now)
        {
            if (_options.ConnectionFile != null)
            {
                ConnectionInfo info;
                string error;
                if (!ConnectionInfo.TryLoad(_options.ConnectionFile, out info, out error))
                {
                    Log("cannot read " + _options.ConnectionFile + " (" + error + "); retrying");
                    Backoff(now);
                    return;
                }
                _endpoint = info.Endpoint;
                _token = info.Token;
            }
            else
            {
                _endpoint = _options.Endpoint;
                _token = _options.Token ?? "";
            }
            try
            {
                _transport.Open(_endpoint);
            }
            catch (Exception e)
            {
                Log("connect " + _endpoint + " failed: " + e.Message);
                Backoff(now);
                return;
            }
            _socketOpen = true;
            _lastRecv = now;
            _handshakeDeadline = now + _options.HandshakeTimeoutMs;
            _helloId = NextId();
            Log("connecting to " + _endpoint + " (" + _transport.Name + ")");
            SendRaw(new HelloMessage
            {
                Id = _helloId, Protocol = Message.ProtocolVersion, Token = _token,
                Client = _options.ClientName, ClientVersion = _options.ClientVersion, Engine = _options.Engine,
            });
        }

        private void Backoff(long now)
        {
            _nextConnectAt = now + _backoffMs;
            _backoffMs = Math.Min(_options.ReconnectMaxDelayMs, Math.Max(_options.ReconnectMinDelayMs, _backoffMs * 2));
        }

        /// <summary>Drop the socket and every in-flight request, then connect again after a backoff.</summary>
        private void Reconnect(string reason)
        {
            bool wasReady = _state == ConnectionState.Ready;
            Log("reconnecting: " + reason);
            _transport.Close();
            _socketOpen = false;
            _helloId = -1;
            if (_state != ConnectionState.Failed) _state = ConnectionState.Connecting;
            FailAllPending("connection_lost", "connection lost: " + reason);
            foreach (var s in Sessions)
            {
                if (!s.WantsOpen) continue;
                s.State = SessionState.Connecting;
                if (s.Sid != null) { NpcSession removed; _bySid.TryRemove(s.Sid, out removed); }
                s.Sid = null;
            }
            // Requests queued for the old connection are stale: answer them now.
            Outgoing o;
            while (_outgoing.TryDequeue(out o))
                if (o.Pending != null) Complete(o.Pending, LocalError("connection_lost", "connection lost: " + reason, true));
            Backoff(Now());
            if (wasReady) _main.Post(() => { var h = Disconnected; if (h != null) h(reason); });
        }

        private void FailHard(ErrorMessage error)
        {
            LastError = error;
            Log("failed: " + error.Code + ": " + error.Message);
            _state = ConnectionState.Failed;
            if (_transport != null) _transport.Close();
            _socketOpen = false;
            FailAllPending(error.Code, error.Message);
            _main.Post(() => { var h = Error; if (h != null) h(error); });
        }

        private long NextId()
        {
            _nextId = (_nextId % 0xFFFFFFFFL) + 1; // uint32, never 0
            return _nextId;
        }

        private bool SendRaw(Message m)
        {
            try
            {
                _codec.Encode(m, _tx);
            }
            catch (ProtocolException e)
            {
                Log("cannot encode " + m.Type + ": " + e.Message);
                return false;
            }
            if (!_transport.TrySend(_tx)) return false;
            _lastSend = Now();
            return true;
        }

        private void SendRequest(Message m, Pending p)
        {
            p.Id = NextId();
            m.Id = p.Id;
            p.Deadline = Now() + _options.RequestTimeoutMs;
            try
            {
                _codec.Encode(m, _tx);
            }
            catch (ProtocolException e)
            {
                Complete(p, LocalError(e.Code, e.Message, false));
                return;
            }
            _pending[p.Id] = p;
            if (!_transport.TrySend(_tx))
            {
                _pending.Remove(p.Id);
                Complete(p, LocalError(ErrorCodes.Busy, "the send queue is full", true));
                return;
            }
            _lastSend = Now();
        }

        private void FlushOutgoing()
        {
            Outgoing o;
            int budget = 512;
            while (budget-- > 0 && _outgoing.TryDequeue(out o))
            {
                if (_state != ConnectionState.Ready)
                {
                    if (o.Pending != null) Complete(o.Pending, LocalError(ErrorCodes.NotReady, "not connected to the daemon", true));
                    continue;
                }
                if (o.Session != null)
                {
                    string sid = o.Session.Sid;
                    if (sid == null || !o.Session.WantsOpen)
                    {
                        if (o.Pending != null)
                            Complete(o.Pending, LocalError(ErrorCodes.SessionNotReady, "session " + o.Session.Label + " is " + o.Session.State, true));
                        continue;
                    }
                    o.Message.Sid = sid;
                }
                if (o.Pending != null) SendRequest(o.Message, o.Pending);
                else SendRaw(o.Message);
            }
        }

        private void SendOpen(NpcSession session)
        {
            // Only from Connecting: a welcome and a queued OpenSession action must not open it twice.
            if (session.State != SessionState.Connecting) return;
            var request = session.Template;
            request.CharacterSessionId = session.CharacterSessionId;
            session.State = SessionState.Opening;
            var p = new Pending
            {
                Type = SessionOpenMessage.TypeName, Session = session,
                OnNetworkThread = reply =>
                {
                    var ack = reply as AckMessage;
                    if (ack != null && ack.Sid != null)
                    {
                        session.ResetForNewSid(ack.Sid);
                        _bySid[ack.Sid] = session;
                        if (session.State == SessionState.Closing)
                            CloseSession(session, null); // closed while opening: close the daemon side too
                        return;
                    }
                    var err = reply as ErrorMessage;
                    if (err != null && err.Code != "connection_lost" && err.Code != ErrorCodes.NotReady)
                    {
                        FinishClose(session);
                        _main.Post(() => session.RaiseError(err));
                    }
                },
            };
            SendRequest(request, p);
        }

        private void HandleIncoming(List<byte[]> parts)
        {
            Message m;
            try
            {
                m = _codec.Decode(parts, allowUnknownTypes: true);
            }
            catch (ProtocolException e)
            {
                MalformedCount++;
                Log("skipped a malformed message: " + e.Code + ": " + e.Message);
                _main.Post(() => { var h = MalformedMessage; if (h != null) h(e); });
                return;
            }
            switch (m.Type)
            {
                case PingMessage.TypeName:
                    PingsReceived++;
                    SendRaw(new PongMessage { Id = m.Id });
                    return;
                case PongMessage.TypeName:
                    return;
                case WelcomeMessage.TypeName:
                    if (m.Id == _helloId) OnWelcome((WelcomeMessage)m);
                    return;
                case AckMessage.TypeName:
                case ErrorMessage.TypeName:
                    if (m.Id.HasValue) { OnReply(m); return; }
                    break;
            }
            Route(m);
        }

        private void OnWelcome(WelcomeMessage w)
        {
            int major;
            string proto = w.Protocol ?? "";
            int dot = proto.IndexOf('.');
            if (!int.TryParse(dot < 0 ? proto : proto.Substring(0, dot), out major) || major != Message.ProtocolMajor)
            {
                FailHard(LocalError(ErrorCodes.VersionMismatch, "daemon speaks protocol " + proto + ", this client " + Message.ProtocolVersion, false));
                return;
            }
            bool restarted = Welcome != null && Welcome.InstanceId != w.InstanceId;
            Welcome = w;
            ConnectCount++;
            _state = ConnectionState.Ready;
            _backoffMs = _options.ReconnectMinDelayMs;
            _unauthorizedStreak = 0;
            if (w.Limits != null)
            {
                if (w.Limits.HeartbeatMs > 0) _heartbeatMs = (int)w.Limits.HeartbeatMs;
                if (w.Limits.ClientTimeoutMs > 0) _clientTimeoutMs = (int)w.Limits.ClientTimeoutMs;
                if (w.Limits.MaxMessageBytes > 0) _codec.MaxMessageBytes = w.Limits.MaxMessageBytes;
            }
            Log("connected to daemon " + w.DaemonVersion + " instance " + w.InstanceId + (restarted ? " (restarted)" : ""));
            _main.Post(() => { var h = Connected; if (h != null) h(w, restarted); });
            foreach (var s in Sessions) if (s.WantsOpen) SendOpen(s);
        }

        private void OnReply(Message m)
        {
            long id = m.Id.Value;
            var err = m as ErrorMessage;
            if (id == _helloId && err != null)
            {
                OnHandshakeError(err);
                return;
            }
            Pending p;
            if (_pending.TryGetValue(id, out p))
            {
                _pending.Remove(id);
                var ack = m as AckMessage;
                if (ack != null && ack.Turn.HasValue && p.Session != null) p.Session.NoteTurn(ack.Turn.Value);
                Complete(p, m);
            }
            else
            {
                Log("reply " + m + " matches no pending request (late after a timeout?)");
            }
            if (err != null && err.Code == ErrorCodes.NotReady && _state == ConnectionState.Ready)
                Reconnect("the daemon does not know this connection (restarted?)");
        }

        private void OnHandshakeError(ErrorMessage err)
        {
            LastError = err;
            if (err.Code == ErrorCodes.Unauthorized && _options.ConnectionFile != null && ++_unauthorizedStreak < 5)
            {
                // The daemon may have restarted with a new token; the file is re-read on the next attempt.
                Reconnect("unauthorized (re-reading the connection file)");
                return;
            }
            if (err.Fatal || err.Code == ErrorCodes.Unauthorized || err.Code == ErrorCodes.VersionMismatch)
            {
                FailHard(err);
                return;
            }
            Reconnect("handshake refused: " + err.Code);
        }

        private void Route(Message m)
        {
            string sid = m.Sid;
            NpcSession session;
            if (sid != null && _bySid.TryGetValue(sid, out session))
            {
                session.HandleOnNetworkThread(m, _options.AudioBufferMs);
                if (m.Type == SessionClosedMessage.TypeName)
                {
                    if (session.State == SessionState.Closed) FinishClose(session);
                    else
                    {
                        NpcSession removed;
                        _bySid.TryRemove(sid, out removed);
                        session.Sid = null;
                        if (_state == ConnectionState.Ready && ((SessionClosedMessage)m).Reason == WireEnums.CloseReason.ClientGone)
                            SendOpen(session);
                    }
                }
                _main.Post(() => session.Dispatch(m));
                return;
            }
            var err = m as ErrorMessage;
            if (err != null && sid == null)
            {
                LastError = err;
                _main.Post(() => { var h = Error; if (h != null) h(err); });
                if (err.Fatal) Reconnect("connection-level fatal error " + err.Code);
                return;
            }
            _main.Post(() => { var h = UnroutedMessage; if (h != null) h(m); });
        }

        private void Timers(long now)
        {
            if (_socketOpen && _state == ConnectionState.Connecting && now > _handshakeDeadline)
            {
                Reconnect("no welcome within " + _options.HandshakeTimeoutMs + " ms");
                return;
            }
            if (_state == ConnectionState.Ready)
            {
                long silent = now - _lastRecv;
                if (silent >= _clientTimeoutMs)
                {
                    Reconnect("no message from the daemon for " + silent + " ms");
                    return;
                }
                if (now - _lastSend >= _heartbeatMs && SendRaw(new PingMessage { Id = NextId() })) PingsSent++;
                if (_options.ConnectionFile != null && silent > _heartbeatMs * 3 / 2 && now - _lastFileCheck > 500)
                {
                    // A quiet daemon may have been replaced: the connection file names the live instance.
                    _lastFileCheck = now;
                    ConnectionInfo info;
                    string error;
                    if (ConnectionInfo.TryLoad(_options.ConnectionFile, out info, out error) && info.InstanceId != null
                        && Welcome != null && info.InstanceId != Welcome.InstanceId)
                    {
                        Reconnect("the connection file names a new daemon instance " + info.InstanceId);
                        return;
                    }
                }
            }
            if (now - _lastTimerScan >= 100)
            {
                _lastTimerScan = now;
                List<long> expired = null;
                foreach (var kv in _pending)
                    if (kv.Value.Deadline <= now) (expired ?? (expired = new List<long>())).Add(kv.Key);
                if (expired != null)
                {
                    foreach (long id in expired)
                    {
                        var p = _pending[id];
                        _pending.Remove(id);
                        Complete(p, LocalError("timeout", p.Type + " got no reply within " + _options.RequestTimeoutMs + " ms", true));
                    }
                }
            }
        }

        private void GracefulClose()
        {
            if (_state != ConnectionState.Ready || !_socketOpen) return;
            var closing = new List<long>();
            foreach (var s in Sessions)
            {
                string sid = s.Sid;
                if (sid == null || !s.WantsOpen) continue;
                s.State = SessionState.Closing;
                var p = new Pending { Type = SessionCloseMessage.TypeName, Session = s };
                SendRequest(new SessionCloseMessage { Sid = sid }, p);
                if (_pending.ContainsKey(p.Id)) closing.Add(p.Id);
            }
            long deadline = Now() + _options.GracefulCloseMs;
            while (closing.Exists(id => _pending.ContainsKey(id)) && Now() < deadline)
            {
                if (_transport.TryReceive(_rx, _options.PollIntervalMs)) HandleIncoming(_rx);
            }
            foreach (var s in Sessions) FinishClose(s);
        }

        private void Complete(Pending p, Message reply)
        {
            if (p.OnNetworkThread != null)
            {
                try { p.OnNetworkThread(reply); }
                catch (Exception e) { Log("internal reply handler: " + e); }
            }
            if (p.Callback == null && p.Tcs == null) return;
            _main.Post(() =>
            {
                if (p.Tcs != null) p.Tcs.TrySetResult(reply);
                if (p.Callback != null) p.Callback(reply);
            });
        }

        private void FailAllPending(string code, string text)
        {
            if (_pending.Count == 0) return;
            var all = new List<Pending>(_pending.Values);
            _pending.Clear();
            foreach (var p in all) Complete(p, LocalError(code, text, code != "closed"));
        }

        /// <summary>
        /// An error produced by this client rather than the daemon. Besides protocol codes it uses
        /// "timeout", "connection_lost", "closed" and "transport_unavailable".
        /// </summary>
        public static ErrorMessage LocalError(string code, string text, bool retryable)
        {
            return new ErrorMessage { Code = code, Message = text, Retryable = retryable, Fatal = false };
        }
    }
}
