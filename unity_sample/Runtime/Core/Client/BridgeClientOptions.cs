using System;
using ConvaiBridge.Transport;

namespace ConvaiBridge.Client
{
    /// <summary>Settings of a BridgeClient. Defaults suit a game on the daemon's machine.</summary>
    public sealed class BridgeClientOptions
    {
        /// <summary>
        /// The daemon's connection.json. When set, endpoint and token are read from it on every
        /// (re)connect, because a restarted daemon writes a new token. Null: use Endpoint and Token.
        /// </summary>
        public string ConnectionFile;
        public string Endpoint = ConnectionInfo.DefaultEndpoint;
        public string Token = "";

        public string ClientName = "convai-bridge-cs";
        public string ClientVersion = BridgeClient.Version;
        /// <summary>Informative, e.g. "unity".</summary>
        public string Engine = "csharp";

        /// <summary>Creates the transport on the network thread; default: native libzmq.</summary>
        public Func<IBridgeTransport> TransportFactory;

        /// <summary>Longest wait of the network thread for incoming data; also the worst added send latency.</summary>
        public int PollIntervalMs = 2;
        public int HandshakeTimeoutMs = 3000;
        public int RequestTimeoutMs = 15000;
        public int ReconnectMinDelayMs = 100;
        public int ReconnectMaxDelayMs = 2000;
        /// <summary>Used until welcome.limits says otherwise.</summary>
        public int HeartbeatMs = 2000;
        public int ClientTimeoutMs = 10000;
        /// <summary>On Stop(), how long to wait for session_close acks before closing the socket.</summary>
        public int GracefulCloseMs = 200;
        /// <summary>Capacity of each NPC's playback ring buffer.</summary>
        public int AudioBufferMs = 2000;

        /// <summary>Diagnostics; called from the network thread (Unity's Debug.Log is thread-safe).</summary>
        public Action<string> Log;
    }
}
