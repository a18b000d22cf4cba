using System;
using System.Collections.Generic;
using ConvaiBridge.Client;
using ConvaiBridge.Protocol;
using ConvaiBridge.Transport;
using UnityEngine;
using UnityEngine.Events;

namespace ConvaiBridge.Unity
{
    /// <summary>
    /// The scene's connection to the convai-bridge daemon (one per scene; NPCs find it through
    /// Instance). Starts the network thread in OnEnable, runs queued callbacks in Update, and stops
    /// in OnDisable with a bounded join, so leaving play mode, reloading scripts or quitting never
    /// waits on the network.
    /// </summary>
    [DefaultExecutionOrder(-100)]
    [DisallowMultipleComponent]
    [AddComponentMenu("Convai Bridge/Convai Bridge Client")]
    public sealed class ConvaiBridgeClient : MonoBehaviour
    {
        public enum TransportKind
        {
            /// <summary>NetMQ when compiled with CONVAI_NETMQ, else the native libzmq plugin.</summary>
            Auto,
            LibZmq,
            NetMQ,
        }

        [Serializable] public sealed class ConnectedEvent : UnityEvent<bool> { }
        [Serializable] public sealed class MessageEvent : UnityEvent<string> { }

        [Tooltip("Path of the daemon's connection.json; empty = the shared default: $CONVAI_BRIDGE_CONNECTION_FILE, "
                 + "else $XDG_CONFIG_HOME/convai-bridge/, else %APPDATA%\\convai-bridge\\ (Windows) or ~/.config/convai-bridge/.")]
        [SerializeField] private string connectionFile = "";
        [Tooltip("Use this endpoint and token instead of the connection file (e.g. a daemon on another port).")]
        [SerializeField] private bool overrideEndpoint;
        [SerializeField] private string endpoint = ConnectionInfo.DefaultEndpoint;
        [SerializeField] private string token = "";
        [SerializeField] private TransportKind transport = TransportKind.Auto;
        [Tooltip("Upper bound of queued network callbacks run per frame.")]
        [SerializeField] private int maxCallbacksPerFrame = 1000;
        [SerializeField] private bool verboseLog;

        [Tooltip("Connected (true when the daemon restarted since the previous connection; sessions are reopened).")]
        public ConnectedEvent onConnected = new ConnectedEvent();
        public MessageEvent onDisconnected = new MessageEvent();
        [Tooltip("Connection-level errors: wrong token, version mismatch, libzmq missing.")]
        public MessageEvent onError = new MessageEvent();

        private static readonly List<BridgeClient> Running = new List<BridgeClient>();
        private static ConvaiBridgeClient _instance;
        private BridgeClient _client;

        /// <summary>The active client of the scene (the first enabled one).</summary>
        public static ConvaiBridgeClient Instance
        {
            get
            {
#if UNITY_2023_1_OR_NEWER
                if (_instance == null) _instance = FindFirstObjectByType<ConvaiBridgeClient>();
#else
                if (_instance == null) _instance = FindObjectOfType<ConvaiBridgeClient>();
#endif
                return _instance;
            }
        }

        /// <summary>The engine-free client; null while disabled.</summary>
        public BridgeClient Client { get { return _client; } }
        public ConnectionState State { get { return _client != null ? _client.State : ConnectionState.Stopped; } }

        private void OnEnable()
        {
            string limitation = ConvaiPlatform.Limitation;
            if (limitation != null && (!ConvaiPlatform.CanReachDaemon || !ConvaiPlatform.IsDesktop))
            {
                Debug.LogError("[convai-bridge] " + limitation);
                onError.Invoke(ConvaiNpc.UnsupportedPlatform + ": " + limitation);
            }
            else if (limitation != null) Debug.LogWarning("[convai-bridge] " + limitation); // e.g. Editor, WebGL target
            if (!ConvaiPlatform.CanReachDaemon) return; // no client: NPCs report it when they try to open
            if (_instance == null) _instance = this;
            var options = new BridgeClientOptions
            {
                ConnectionFile = overrideEndpoint ? null
                    : string.IsNullOrEmpty(connectionFile) ? ConnectionInfo.DefaultPath() : connectionFile,
                Endpoint = endpoint,
                Token = token,
                Engine = "unity",
                ClientName = "convai-bridge-unity",
                TransportFactory = CreateTransport,
            };
            if (verboseLog) options.Log = Debug.Log; // Debug.Log is safe from the network thread
            else options.Log = s => { if (s.Contains("failed") || s.Contains("reconnecting")) Debug.LogWarning(s); };
            _client = new BridgeClient(options);
            _client.Connected += (welcome, restarted) => onConnected.Invoke(restarted);
            _client.Disconnected += reason => onDisconnected.Invoke(reason);
            _client.Error += e =>
            {
                Debug.LogError("[convai-bridge] " + e.Code + ": " + e.Message);
                onError.Invoke(e.Code + ": " + e.Message);
            };
            _client.CallbackException += Debug.LogException;
            _client.MalformedMessage += e => Debug.LogWarning("[convai-bridge] skipped a malformed message: " + e);
            lock (Running) Running.Add(_client);
            _client.Start();
        }

        private IBridgeTransport CreateTransport()
        {
#if CONVAI_NETMQ
            if (transport != TransportKind.LibZmq) return new NetMqTransport();
#else
            if (transport == TransportKind.NetMQ)
                throw new NotSupportedException("NetMQ transport selected but CONVAI_NETMQ is not defined (see README)");
#endif
            return new LibZmqTransport();
        }

        private void Update()
        {
            if (_client != null) _client.Poll(maxCallbacksPerFrame);
        }

        private void OnDisable()
        {
            StopClient(_client);
            _client = null;
            if (_instance == this) _instance = null;
        }

        private static void StopClient(BridgeClient client)
        {
            if (client == null) return;
            client.Stop(500);
            lock (Running) Running.Remove(client);
        }

        /// <summary>
        /// Stop every running client now (bounded). The editor calls it before an assembly reload and when
        /// leaving play mode, so no network thread outlives the code it runs.
        /// </summary>
        public static void StopAll()
        {
            BridgeClient[] all;
            lock (Running) all = Running.ToArray();
            foreach (var c in all) StopClient(c);
        }

        /// <summary>With "Enter Play Mode Options" (no domain reload) statics survive: reset them.</summary>
        [RuntimeInitializeOnLoadMethod(RuntimeInitializeLoadType.SubsystemRegistration)]
        private static void ResetStatics()
        {
            StopAll();
            _instance = null;
        }

        private void OnApplicationQuit() { StopAll(); }
    }
}
